/**
 * Writing GGUF: the header for tensors laid out in a given order (encodeGgufHeader) and whole
 * version-3 files (writeGguf).
 */
import { ArgumentError } from '../../core/errors.ts';
import type { ByteSink } from '../../core/io.ts';
import type { TensorToWrite } from '../types.ts';
import { GGML_OF_DTYPE, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUFValueType, alignUp, ggmlByteLength, type GGUFArray, type GGUFKeyValue, type GGUFValue } from './header.ts';

export interface GGUFTensorSpec {
  name: string;
  /** ggml order (dims[0] fastest); use the reverse of a C-order shape. */
  dims: number[];
  ggmlType: number;
}

class Out {
  parts: number[] = [];
  u8(v: number) { this.parts.push(v & 0xff); }
  u32(v: number) { for (let k = 0; k < 4; k++) this.parts.push(Math.floor(v / 256 ** k) & 0xff); }
  u64(v: number | bigint) { let b = BigInt.asUintN(64, BigInt(v)); for (let k = 0; k < 8; k++) { this.parts.push(Number(b & 0xffn)); b >>= 8n; } }
  bytes(b: Uint8Array) { for (const x of b) this.parts.push(x); }
  str(s: string) { const b = new TextEncoder().encode(s); this.u64(b.length); this.bytes(b); }
  value(type: number, v: GGUFValue) {
    const dv = new DataView(new ArrayBuffer(8));
    switch (type) {
      case 0: case 7: this.u8(Number(v)); break;
      case 1: this.u8(Number(v) & 0xff); break;
      case 2: case 3: dv.setUint16(0, Number(v) & 0xffff, true); this.bytes(new Uint8Array(dv.buffer, 0, 2)); break;
      case 4: case 5: dv.setUint32(0, Number(v) >>> 0, true); this.bytes(new Uint8Array(dv.buffer, 0, 4)); break;
      case 6: dv.setFloat32(0, Number(v), true); this.bytes(new Uint8Array(dv.buffer, 0, 4)); break;
      case 10: case 11: this.u64(typeof v === 'bigint' ? v : BigInt(v as number)); break;
      case 12: dv.setFloat64(0, Number(v), true); this.bytes(new Uint8Array(dv.buffer, 0, 8)); break;
      case 8: this.str(String(v)); break;
      case 9: {
        const a = v as GGUFArray;
        this.u32(a.type);
        this.u64(a.values.length);
        for (const x of a.values) this.value(a.type, x);
        break;
      }
      default: throw new ArgumentError(`unknown GGUF value type ${type}`);
    }
  }
}

/**
 * The prefix (through the padding before the data section) of a version-3 GGUF file holding
 * these tensors laid out in the order given, each at the next aligned offset.
 */
export function encodeGgufHeader(opts: { kv?: GGUFKeyValue[]; tensors: GGUFTensorSpec[]; alignment?: number; version?: number }): { prefix: Uint8Array; offsets: number[]; byteLengths: number[] } {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const kv = opts.kv ?? [];
  if (opts.alignment !== undefined && !kv.some((x) => x.key === 'general.alignment')) kv.unshift({ key: 'general.alignment', type: GGUFValueType.UINT32, value: alignment });
  const o = new Out();
  o.u32(GGUF_MAGIC);
  o.u32(opts.version ?? 3);
  o.u64(opts.tensors.length);
  o.u64(kv.length);
  for (const x of kv) { o.str(x.key); o.u32(x.type); o.value(x.type, x.value); }
  const offsets: number[] = [];
  const byteLengths: number[] = [];
  let at = 0;
  for (const t of opts.tensors) {
    const n = ggmlByteLength(t.ggmlType, t.dims, '<writer>', t.name);
    at = alignUp(at, alignment);
    o.str(t.name);
    o.u32(t.dims.length);
    for (const d of t.dims) o.u64(d);
    o.u32(t.ggmlType);
    o.u64(at);
    offsets.push(at);
    byteLengths.push(n);
    at += n;
  }
  const pad = alignUp(o.parts.length, alignment) - o.parts.length;
  for (let k = 0; k < pad; k++) o.u8(0);
  return { prefix: new Uint8Array(o.parts), offsets, byteLengths };
}

/**
 * Write a GGUF v3 file: tensors in the order given (F32, F16, BF16, F64, I8..I64 as themselves;
 * `ggmlType` on a tensor writes its bytes as that ggml type, for quantized data), string metadata
 * as STRING key-values (or `kv` for typed ones), zero padding after every tensor as llama.cpp does.
 */
export async function writeGguf(
  tensors: AsyncIterable<TensorToWrite & { ggmlType?: number; dims?: number[] }> | Iterable<TensorToWrite & { ggmlType?: number; dims?: number[] }>,
  sink: ByteSink,
  opts: { metadata?: Record<string, string>; kv?: GGUFKeyValue[]; alignment?: number } = {},
): Promise<void> {
  const all: (TensorToWrite & { ggmlType?: number; dims?: number[] })[] = [];
  for await (const t of tensors) all.push(t);
  const specs: GGUFTensorSpec[] = all.map((t) => {
    const ggmlType = t.ggmlType ?? GGML_OF_DTYPE[t.dtype];
    if (ggmlType === undefined) throw new ArgumentError(`tensor '${t.name}': GGUF has no ${t.dtype} type`, { tensor: t.name, dtype: t.dtype });
    return { name: t.name, dims: t.dims ?? t.shape.slice().reverse(), ggmlType };
  });
  const kv: GGUFKeyValue[] = [...(opts.kv ?? [])];
  for (const [key, value] of Object.entries(opts.metadata ?? {})) kv.push({ key, type: GGUFValueType.STRING, value });
  const { prefix, offsets, byteLengths } = encodeGgufHeader({ kv, tensors: specs, alignment: opts.alignment });
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  await sink.write(prefix);
  let at = 0;
  for (let i = 0; i < all.length; i++) {
    const t = all[i];
    if (!(t.data instanceof Uint8Array) || t.data.length !== byteLengths[i]) {
      throw new ArgumentError(`tensor '${t.name}': data has ${t.data?.length} bytes but needs ${byteLengths[i]}`, { tensor: t.name });
    }
    if (offsets[i] > at) await sink.write(new Uint8Array(offsets[i] - at));
    if (t.data.length) await sink.write(t.data);
    at = offsets[i] + t.data.length;
  }
  const pad = alignUp(at, alignment) - at;
  if (pad) await sink.write(new Uint8Array(pad));
}
