/**
 * Reading a zarr v2 array from the keys of one store (FORMAT.md §5): `.zarray` says the shape,
 * chunk shape, dtype, memory order, compressor and fill value; each chunk key (grid indices joined
 * by `.` or `/`) holds one compressed full chunk. The array comes back as little-endian C-order
 * bytes in our dtype. A missing chunk is the fill value (zero for `null`), edge chunks are cut to
 * the array, and a `.zarray` that lies (chunks that do not hold a full chunk, shapes that overflow)
 * is PyThetaFormatError.
 */
import { dtypeSize, type DType } from '../../core/dtypes.ts';
import { bloscDecode } from './blosc.ts';
import { PyThetaFormatError } from './errors.ts';
import type { BloscKernels } from './wasm.ts';

/** No git-theta array may be larger than this many bytes (2^53 is where shapes stop being exact; memory ends far earlier). */
export const MAX_ARRAY_BYTES = 2 ** 40;

/** numpy `dtype.str` (and tensorstore's "bfloat16") → our dtype. The byte order is read separately. */
const ZARR_DTYPES: Record<string, DType> = {
  f2: 'F16', f4: 'F32', f8: 'F64', i1: 'I8', i2: 'I16', i4: 'I32', i8: 'I64', u1: 'U8', u2: 'U16', u4: 'U32', u8: 'U64', b1: 'BOOL',
};

export interface ZarrArray {
  dtype: DType;
  shape: number[];
  /** Little-endian, C order. */
  data: Uint8Array;
}

interface ZArray {
  shape: number[];
  chunks: number[];
  dtype: DType;
  bigEndian: boolean;
  order: 'C' | 'F';
  sep: string;
  compressor: 'blosc' | null;
  fill: number | boolean | string | null;
}

function parseZArray(json: Uint8Array, where: string): ZArray {
  const bad = (why: string) => new PyThetaFormatError(`${where}: bad .zarray (${why})`, { where });
  let z: any;
  try {
    z = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch {
    throw bad('not JSON');
  }
  if (!z || typeof z !== 'object') throw bad('not an object');
  if (z.zarr_format !== 2) throw bad(`zarr_format ${JSON.stringify(z.zarr_format)} is not 2`);
  const dims = (v: unknown, what: string, min: number) => {
    if (!Array.isArray(v) || !v.every((d) => Number.isSafeInteger(d) && d >= min)) throw bad(`${what} ${JSON.stringify(v)}`);
    return v as number[];
  };
  const shape = dims(z.shape, 'shape', 0);
  const chunks = dims(z.chunks, 'chunks', 1);
  if (chunks.length !== shape.length) throw bad(`chunks ${JSON.stringify(chunks)} and shape ${JSON.stringify(shape)} differ in rank`);
  let dtype: DType | undefined;
  let bigEndian = false;
  if (z.dtype === 'bfloat16') dtype = 'BF16';
  else if (typeof z.dtype === 'string' && /^[<>|][a-z]\d+$/.test(z.dtype)) {
    dtype = ZARR_DTYPES[z.dtype.slice(1)];
    bigEndian = z.dtype[0] === '>';
  }
  if (!dtype) throw bad(`dtype ${JSON.stringify(z.dtype)} is not supported`);
  if (z.order !== 'C' && z.order !== 'F') throw bad(`order ${JSON.stringify(z.order)}`);
  const sep = z.dimension_separator ?? '.';
  if (sep !== '.' && sep !== '/') throw bad(`dimension_separator ${JSON.stringify(sep)}`);
  if (z.filters !== null && z.filters !== undefined && !(Array.isArray(z.filters) && z.filters.length === 0)) throw bad('filters are not supported');
  let compressor: 'blosc' | null = null;
  if (z.compressor !== null) {
    if (!z.compressor || z.compressor.id !== 'blosc') throw bad(`compressor ${JSON.stringify(z.compressor?.id)} is not blosc`);
    compressor = 'blosc';
  }
  return { shape, chunks, dtype, bigEndian, order: z.order, sep, compressor, fill: z.fill_value ?? null };
}

function product(a: number[]): number {
  return a.reduce((x, y) => x * y, 1);
}

/** One element's bytes for a fill value (null: zeros). */
function fillBytes(dtype: DType, fill: ZArray['fill'], where: string): Uint8Array {
  const size = dtypeSize(dtype);
  const b = new Uint8Array(size);
  if (fill === null || fill === 0 || fill === false) return b;
  const v = new DataView(b.buffer);
  const num = typeof fill === 'string' ? (fill === 'NaN' ? NaN : fill === 'Infinity' ? Infinity : fill === '-Infinity' ? -Infinity : NaN) : Number(fill);
  switch (dtype) {
    case 'F64': v.setFloat64(0, num, true); break;
    case 'F32': v.setFloat32(0, num, true); break;
    case 'BOOL': case 'U8': case 'I8': v.setInt8(0, num); break;
    case 'I16': case 'U16': v.setInt16(0, num, true); break;
    case 'I32': case 'U32': v.setInt32(0, num, true); break;
    case 'I64': case 'U64': v.setBigInt64(0, BigInt(Math.trunc(num)), true); break;
    default: throw new PyThetaFormatError(`${where}: fill value ${JSON.stringify(fill)} for ${dtype} is not supported`, { where });
  }
  return b;
}

function swapBytes(b: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < b.length; i += size) for (let a = i, z = i + size - 1; a < z; a++, z--) [b[a], b[z]] = [b[z], b[a]];
}

/**
 * The array held by a zarr v2 store given as key → bytes. `where` names the store in errors.
 */
export function readZarrArray(store: Map<string, Uint8Array>, where = 'zarr store', kernels?: BloscKernels): ZarrArray {
  const zjson = store.get('.zarray');
  if (!zjson) throw new PyThetaFormatError(`${where}: no .zarray key`, { where });
  const z = parseZArray(zjson, where);
  const es = dtypeSize(z.dtype);
  const total = product(z.shape);
  if (!Number.isSafeInteger(total) || total * es > MAX_ARRAY_BYTES) throw new PyThetaFormatError(`${where}: shape ${JSON.stringify(z.shape)} is too large`, { where });
  const chunkElems = product(z.chunks);
  if (!Number.isSafeInteger(chunkElems) || chunkElems * es > MAX_ARRAY_BYTES) throw new PyThetaFormatError(`${where}: chunks ${JSON.stringify(z.chunks)} are too large`, { where });
  const out = new Uint8Array(total * es);
  const rank = z.shape.length;
  const grid = z.shape.map((s, i) => Math.ceil(s / z.chunks[i]));
  const fill = fillBytes(z.dtype, z.fill, where);
  if (fill.some((x) => x !== 0)) for (let i = 0; i < out.length; i += es) out.set(fill, i);
  const known = new Set<string>(['.zarray', '.zattrs']);
  if (total === 0) return check(store, known, where, { dtype: z.dtype, shape: z.shape, data: out });

  // C-order strides of the array and of a chunk (F-order chunks are read through their own strides)
  const strides = z.shape.map((_, i) => product(z.shape.slice(i + 1)));
  const chunkStrides = z.order === 'C'
    ? z.chunks.map((_, i) => product(z.chunks.slice(i + 1)))
    : z.chunks.map((_, i) => product(z.chunks.slice(0, i)));
  const nChunks = product(grid);
  const idx = new Array<number>(rank).fill(0);
  for (let c = 0; c < nChunks; c++) {
    const key = rank === 0 ? '0' : idx.join(z.sep);
    const raw = store.get(key);
    if (raw) {
      known.add(key);
      const want = chunkElems * es;
      const bytes = z.compressor === 'blosc' ? bloscDecode(raw, want, `${where}: chunk ${key}`, kernels) : raw;
      if (bytes.length !== want) throw new PyThetaFormatError(`${where}: chunk ${key} holds ${bytes.length} bytes, a full chunk is ${want}`, { where, chunk: key });
      if (z.bigEndian) swapBytes(bytes, es);
      const origin = idx.map((g, i) => g * z.chunks[i]);
      const extent = origin.map((o, i) => Math.min(z.chunks[i], z.shape[i] - o));
      copyChunk(bytes, out, es, rank, origin, extent, strides, chunkStrides, z.order === 'C');
    }
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < grid[d]) break;
      idx[d] = 0;
    }
  }
  return check(store, known, where, { dtype: z.dtype, shape: z.shape, data: out });
}

function check(store: Map<string, Uint8Array>, known: Set<string>, where: string, a: ZarrArray): ZarrArray {
  for (const k of store.keys()) {
    if (!known.has(k)) throw new PyThetaFormatError(`${where}: key '${k}' is no chunk of the array its .zarray describes`, { where, key: k });
  }
  return a;
}

/** Copy the part of a chunk inside the array into place, one innermost run at a time. */
function copyChunk(
  src: Uint8Array, dst: Uint8Array, es: number, rank: number, origin: number[], extent: number[], strides: number[],
  chunkStrides: number[], cOrder: boolean,
): void {
  if (rank === 0) {
    dst.set(src.subarray(0, es), 0);
    return;
  }
  const last = rank - 1;
  const pos = new Array<number>(last).fill(0);
  const rows = product(extent.slice(0, last));
  for (let r = 0; r < rows; r++) {
    let s = 0;
    let d = 0;
    for (let i = 0; i < last; i++) {
      s += pos[i] * chunkStrides[i];
      d += (origin[i] + pos[i]) * strides[i];
    }
    d += origin[last];
    const n = extent[last];
    if (cOrder) {
      dst.set(src.subarray(s * es, (s + n) * es), d * es);
    } else {
      const step = chunkStrides[last];
      for (let j = 0; j < n; j++) dst.set(src.subarray((s + j * step) * es, (s + j * step + 1) * es), (d + j) * es);
    }
    for (let i = last - 1; i >= 0; i--) {
      if (++pos[i] < extent[i]) break;
      pos[i] = 0;
    }
  }
}
