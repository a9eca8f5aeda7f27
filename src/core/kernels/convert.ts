/**
 * Dtype conversion on the host (assembly/convert.ts): which converter brings each dtype to f32 or
 * f64 for the numeric kernels, and toF32 / fromF32 over whole arrays.
 *
 * - stats, histogram, compare: F32, F16, BF16, I8, U8, I16, U16, BOOL are widened to f32 (exactly);
 *   F64, I32, U32, I64, U64 to f64 (exact for |x| < 2^53, else rounded to nearest even).
 * - LSH: every dtype is converted to f32 (F64 and wide ints rounded to nearest even).
 * - F8_E4M3 / F8_E5M2 are not supported by the numeric kernels (ArgumentError).
 */
import { ArgumentError } from '../errors.ts';
import { type DType, DTYPES, isDType } from '../dtypes.ts';
import { type KernelMemory, align64, bytesOf } from './memory.ts';

export type NumKind = 'f32' | 'f64';
/** The converters of assembly/convert.ts, each (src, dst, n). */
export type ConvName =
  | 'f16_to_f32' | 'bf16_to_f32' | 'i8_to_f32' | 'u8_to_f32' | 'i16_to_f32' | 'u16_to_f32' | 'f64_to_f32'
  | 'i32_to_f32' | 'u32_to_f32' | 'i64_to_f32' | 'u64_to_f32'
  | 'i32_to_f64' | 'u32_to_f64' | 'i64_to_f64' | 'u64_to_f64'
  | 'f32_to_f16' | 'f32_to_bf16' | 'f32_to_f64';
type ConvTable = Partial<Record<DType, ConvName | null>>;

const NARROW_CONV: ConvTable = {
  F32: null, F16: 'f16_to_f32', BF16: 'bf16_to_f32', I8: 'i8_to_f32', U8: 'u8_to_f32', BOOL: 'u8_to_f32',
  I16: 'i16_to_f32', U16: 'u16_to_f32',
};
const WIDE_CONV: ConvTable = {
  F64: null, I32: 'i32_to_f64', U32: 'u32_to_f64', I64: 'i64_to_f64', U64: 'u64_to_f64',
};
export const F32_CONV: ConvTable = {
  ...NARROW_CONV, F64: 'f64_to_f32', I32: 'i32_to_f32', U32: 'u32_to_f32', I64: 'i64_to_f32', U64: 'u64_to_f32',
};
const FROM_F32: ConvTable = { F32: null, F16: 'f32_to_f16', BF16: 'f32_to_bf16', F64: 'f32_to_f64' };

export function checkDType(d: unknown, table: ConvTable, what: string): DType {
  if (!isDType(d)) throw new ArgumentError(`${what}: unknown dtype ${String(d)}`, { dtype: d });
  if (!(d in table)) throw new ArgumentError(`${what}: dtype ${d} is not supported by the numeric kernels`, { dtype: d });
  return d;
}

/** How a dtype reaches a stats/compare/histogram kernel: converted to f32 or to f64. */
export function numericPath(d: DType, what: string): { kind: NumKind; conv: ConvName | null } {
  checkDType(d, { ...NARROW_CONV, ...WIDE_CONV }, what);
  return d in NARROW_CONV ? { kind: 'f32', conv: NARROW_CONV[d]! } : { kind: 'f64', conv: WIDE_CONV[d]! };
}

/** The elements of `bytes` as f32 (into `out` when given, which must have the element count). */
export function toF32(mem: KernelMemory, dtype: DType, bytes: Uint8Array, out?: Float32Array): Float32Array {
  const d = checkDType(dtype, F32_CONV, 'toF32');
  const esize = DTYPES[d].size;
  if (bytes.length % esize) throw new ArgumentError(`toF32: ${bytes.length} bytes is not a whole number of ${d} elements`);
  const n = bytes.length / esize;
  out ??= new Float32Array(n);
  if (out.length !== n) throw new ArgumentError(`toF32: out has length ${out.length}, expected ${n}`);
  const conv = F32_CONV[d];
  if (!conv) {
    bytesOf(out).set(bytes);
    return out;
  }
  const f = mem.x[conv];
  const piece = mem.pieceElems(esize + 4);
  const IN = mem.SCRATCH, OUT = align64(IN + piece * esize);
  mem.reach(OUT + piece * 4);
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.u8.set(bytes.subarray(off * esize, (off + m) * esize), IN);
    f(IN, OUT, m);
    out.set(mem.f32.subarray(OUT >> 2, (OUT >> 2) + m), off);
  }
  return out;
}

/** `values` encoded as `dtype` bytes (into `out` when given, which must have the byte length). */
export function fromF32(mem: KernelMemory, dtype: DType, values: Float32Array, out?: Uint8Array): Uint8Array {
  const d = checkDType(dtype, FROM_F32, 'fromF32');
  const esize = DTYPES[d].size;
  const n = values.length;
  out ??= new Uint8Array(n * esize);
  if (out.length !== n * esize) throw new ArgumentError(`fromF32: out has ${out.length} bytes, expected ${n * esize}`);
  const conv = FROM_F32[d];
  if (!conv) {
    out.set(bytesOf(values));
    return out;
  }
  const f = mem.x[conv];
  const piece = mem.pieceElems(esize + 4);
  const IN = mem.SCRATCH, OUT = align64(IN + piece * 4);
  mem.reach(OUT + piece * esize);
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.f32.set(values.subarray(off, off + m), IN >> 2);
    f(IN, OUT, m);
    out.set(mem.u8.subarray(OUT, OUT + m * esize), off * esize);
  }
  return out;
}
