/**
 * GGUF (ggml's docs/gguf.md), versions 2 and 3, little-endian: the magic `GGUF`, u32 version, u64
 * tensor count, u64 metadata key-value count, the key-values (key: u64 length + UTF-8; u32 value
 * type; value: scalars, strings, or typed arrays of them, arrays nested), the tensor infos (name,
 * u32 n_dims, u64 dims with ne[0] the fastest-varying, u32 ggml type, u64 offset relative to the data
 * section), padding to `general.alignment` (default 32), then the tensor data, each tensor at an
 * aligned offset. Version 1 (u32 counts, 2023) and big-endian files are refused with a clear error.
 *
 * Tensors are handed out in data-offset order with C-order shapes (ggml dims reversed). F32, F16,
 * BF16, F64 and I8..I64 map to our dtypes and get full arithmetic. Quantized ggml types (Q4_0 …
 * Q8_K, IQ*, TQ*, MXFP4) are tracked per tensor as opaque bytes: dtype U8 with shape
 * [...outer dims, bytes per row] (so rows stay rows), the ggml type on `ggml`, and a
 * `quantization` description whose dequantizer gives float32 values (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q8_1, Q2_K..Q6_K, Q8_K: see dequantize.ts; IQ*, TQ* and MXFP4 have none and are reported without
 * statistics). Shapes are shown in C order, the reverse of the `ne` order GGUF files list: a
 * llama `token_embd.weight` stored with ne = [4096, 32000] is [32000, 4096] here, as in PyTorch.
 *
 * Byte-exact rebuild: the skeleton is the file's own prefix (header, key-values, tensor infos,
 * padding up to the data section) followed by the padding bytes between tensors and after the last
 * one, exactly as found. `rebuild` parses the prefix with the same strict parser, so a skeleton is
 * itself a GGUF header.
 *
 * Strictness: every count and length is checked against a named limit and, when the input size is
 * known, against the bytes that remain, before anything is allocated; offsets must be aligned,
 * tensors must not overlap and only alignment padding may sit between them.
 */
import { streamingTensor } from './read-once.ts';
import type { DType } from '../core/dtypes.ts';
import { ArgumentError, FormatError, TruncatedError } from '../core/errors.ts';
import { concat, readerFromBytes, type ByteReader, type ByteSink } from '../core/io.ts';
import type { CheckpointFormat, CheckpointReader, OpenOptions, StreamedTensor, TensorToWrite } from './types.ts';
import type { StatsDequantizer, TensorQuantization } from './types.ts';
import { dequantizerFor } from './dequantize.ts';
import { GGML_QUANTIZABLE, quantizeGgml } from '../core/quantize-ggml.ts';
import { GGML_K_QUANTIZABLE, quantizeGgmlK } from '../core/quantize-ggml-k.ts';

export const GGUF_FORMAT_ID = 'gguf';
export const GGUF_MAGIC = 0x46554747; // 'GGUF' read as a little-endian u32

/** Alignment when `general.alignment` is absent (the spec's GGUF_DEFAULT_ALIGNMENT). */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/**
 * Most tensors we accept. The largest published models have a few thousand tensors (a 405B Llama
 * has ~1,100); a million bounds the infos we keep from a lying count.
 */
export const MAX_GGUF_TENSORS = 1_000_000;

/** Most key-values (real files: tens). A lying count of 2^60 fails here, before any read. */
export const MAX_GGUF_KV = 1_000_000;

/**
 * Most elements in one metadata array. Tokenizer vocabularies and merge lists are the big ones
 * (a few hundred thousand entries); 2^26 is far beyond them.
 */
export const MAX_GGUF_ARRAY = 1 << 26;

/** Longest string (a key, a value, a tensor name). Chat templates run to tens of KB; 64 MiB bounds a lying length. */
export const MAX_GGUF_STRING = 64 << 20;

/** Deepest nesting of arrays of arrays (the spec allows it; real files never nest). */
export const MAX_GGUF_ARRAY_DEPTH = 8;

/**
 * Largest prefix (header + key-values + tensor infos) we hold; it is kept whole as the skeleton.
 * Real prefixes are a few MB (vocabularies); 512 MiB stops a hostile file from growing it further.
 */
export const MAX_GGUF_HEADER_BYTES = 512 << 20;

/** ggml's GGML_MAX_DIMS: ggml cannot represent more dimensions. */
export const MAX_GGUF_DIMS = 4;

/** Largest alignment we accept (the spec only says "a multiple of 8"; ggml uses 32). */
export const MAX_GGUF_ALIGNMENT = 1 << 20;


// ---------------------------------------------------------------------------------------------
// Types

export const GGUFValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
const VALUE_TYPE_NAMES = Object.fromEntries(Object.entries(GGUFValueType).map(([k, v]) => [v, k])) as Record<number, string>;
const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export type GGUFValue = number | bigint | boolean | string | GGUFArray;
export interface GGUFArray { type: number; values: GGUFValue[] }

export interface GGUFKeyValue {
  key: string;
  type: number;
  value: GGUFValue;
}

/** ggml tensor types: [name, elements per block, bytes per block, our dtype when not quantized]. */
export const GGML_TYPES: Record<number, { name: string; block: number; bytes: number; dtype?: DType }> = {
  0: { name: 'F32', block: 1, bytes: 4, dtype: 'F32' },
  1: { name: 'F16', block: 1, bytes: 2, dtype: 'F16' },
  2: { name: 'Q4_0', block: 32, bytes: 18 },
  3: { name: 'Q4_1', block: 32, bytes: 20 },
  6: { name: 'Q5_0', block: 32, bytes: 22 },
  7: { name: 'Q5_1', block: 32, bytes: 24 },
  8: { name: 'Q8_0', block: 32, bytes: 34 },
  9: { name: 'Q8_1', block: 32, bytes: 36 },
  10: { name: 'Q2_K', block: 256, bytes: 84 },
  11: { name: 'Q3_K', block: 256, bytes: 110 },
  12: { name: 'Q4_K', block: 256, bytes: 144 },
  13: { name: 'Q5_K', block: 256, bytes: 176 },
  14: { name: 'Q6_K', block: 256, bytes: 210 },
  15: { name: 'Q8_K', block: 256, bytes: 292 },
  16: { name: 'IQ2_XXS', block: 256, bytes: 66 },
  17: { name: 'IQ2_XS', block: 256, bytes: 74 },
  18: { name: 'IQ3_XXS', block: 256, bytes: 98 },
  19: { name: 'IQ1_S', block: 256, bytes: 50 },
  20: { name: 'IQ4_NL', block: 32, bytes: 18 },
  21: { name: 'IQ3_S', block: 256, bytes: 110 },
  22: { name: 'IQ2_S', block: 256, bytes: 82 },
  23: { name: 'IQ4_XS', block: 256, bytes: 136 },
  24: { name: 'I8', block: 1, bytes: 1, dtype: 'I8' },
  25: { name: 'I16', block: 1, bytes: 2, dtype: 'I16' },
  26: { name: 'I32', block: 1, bytes: 4, dtype: 'I32' },
  27: { name: 'I64', block: 1, bytes: 8, dtype: 'I64' },
  28: { name: 'F64', block: 1, bytes: 8, dtype: 'F64' },
  29: { name: 'IQ1_M', block: 256, bytes: 56 },
  30: { name: 'BF16', block: 1, bytes: 2, dtype: 'BF16' },
  34: { name: 'TQ1_0', block: 256, bytes: 54 },
  35: { name: 'TQ2_0', block: 256, bytes: 66 },
  39: { name: 'MXFP4', block: 32, bytes: 17 },
};

export const GGML_TYPE_BY_NAME: Record<string, number> = Object.fromEntries(Object.entries(GGML_TYPES).map(([k, v]) => [v.name, Number(k)]));
const GGML_OF_DTYPE: Partial<Record<DType, number>> = { F32: 0, F16: 1, I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, BF16: 30 };

export interface GGUFTensorInfo {
  name: string;
  /** ggml order: dims[0] varies fastest. */
  dims: number[];
  ggmlType: number;
  /** Relative to the data section. */
  offset: number;
  byteLength: number;
  /** Position among the tensor infos (0-based). */
  infoIndex: number;
}

export interface GGUFHeader {
  version: number;
  kv: GGUFKeyValue[];
  tensors: GGUFTensorInfo[];
  alignment: number;
  /** Bytes from the start of the file to the data section (prefix + alignment padding). */
  dataStart: number;
  /** End of the last tensor, relative to the data section. */
  dataBytes: number;
}

export interface GGUFTensor extends StreamedTensor {
  ggml: { type: number; typeName: string; dims: number[]; offset: number };
  /** Present for quantized types: the U8 bytes are ggml blocks. */
  quantization?: TensorQuantization;
}

export interface GGUFReader extends CheckpointReader {
  readonly header: GGUFHeader;
  /** Key-values as plain values (64-bit integers as numbers when safe, else decimal strings; long arrays summarised). */
  readonly metadata: Record<string, unknown>;
  tensors(): AsyncIterable<GGUFTensor>;
}

// ---------------------------------------------------------------------------------------------
// Parsing

function ggufError(file: string, message: string, tensor?: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, tensor, format: GGUF_FORMAT_ID, ...extra });
}

/**
 * A buffered cursor over a ByteReader that keeps every byte it reads (the prefix becomes the
 * skeleton). Reads ahead in blocks; bytes read past the prefix are handed back via `leftover()`.
 */
class Cursor {
  private buf = new Uint8Array(64 << 10);
  private len = 0;
  pos = 0;
  private eof = false;
  readonly dv = () => new DataView(this.buf.buffer, 0, this.len);
  constructor(private readonly reader: ByteReader, private readonly file: string, private readonly remaining: number | undefined) {}

  /** Bytes left in the input after the cursor (when the size is known). */
  left(): number | undefined { return this.remaining === undefined ? undefined : this.remaining - this.pos; }

  async need(n: number, what: string): Promise<void> {
    if (this.pos + n > MAX_GGUF_HEADER_BYTES) throw ggufError(this.file, `header is larger than the ${MAX_GGUF_HEADER_BYTES}-byte limit (reading ${what})`, undefined, { reason: 'too-large' });
    const left = this.left();
    if (left !== undefined && n > left) throw new TruncatedError(this.file, n, left, this.pos);
    while (this.len < this.pos + n) {
      if (this.eof) throw new TruncatedError(this.file, n, this.len - this.pos, this.pos);
      if (this.len === this.buf.length) {
        const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
        bigger.set(this.buf.subarray(0, this.len));
        this.buf = bigger;
      }
      const part = await this.reader.readUpTo(Math.min(this.buf.length - this.len, Math.max(this.pos + n - this.len, 64 << 10)));
      if (!part.length) { this.eof = true; continue; }
      this.buf.set(part, this.len);
      this.len += part.length;
    }
  }
  async u32(what: string): Promise<number> { await this.need(4, what); const v = this.dv().getUint32(this.pos, true); this.pos += 4; return v; }
  async u64(what: string): Promise<number> {
    await this.need(8, what);
    const dv = this.dv();
    const lo = dv.getUint32(this.pos, true);
    const hi = dv.getUint32(this.pos + 4, true);
    this.pos += 8;
    const v = hi * 2 ** 32 + lo;
    if (!Number.isSafeInteger(v)) throw ggufError(this.file, `${what} is ${BigInt(hi) * 2n ** 32n + BigInt(lo)}, beyond 2^53`, undefined, { reason: 'too-large' });
    return v;
  }
  async bytes(n: number, what: string): Promise<Uint8Array> { await this.need(n, what); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  /** The bytes read so far up to the cursor. */
  prefix(): Uint8Array { return this.buf.slice(0, this.pos); }
  /** Bytes buffered beyond the cursor. */
  leftover(): Uint8Array { return this.buf.slice(this.pos, this.len); }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

async function readString(c: Cursor, file: string, what: string): Promise<string> {
  const n = await c.u64(`${what} length`);
  if (n > MAX_GGUF_STRING) throw ggufError(file, `${what} length ${n} is over the ${MAX_GGUF_STRING}-byte limit`, undefined, { reason: 'string-length' });
  const left = c.left();
  if (left !== undefined && n > left) throw ggufError(file, `${what} length ${n} runs past the end of the file (${left} bytes left)`, undefined, { reason: 'past-end' });
  const b = await c.bytes(n, what);
  try {
    return UTF8.decode(b);
  } catch {
    throw ggufError(file, `${what} is not valid UTF-8`, undefined, { reason: 'utf8' });
  }
}

async function readValue(c: Cursor, type: number, file: string, key: string, depth: number): Promise<GGUFValue> {
  const size = SCALAR_SIZE[type];
  if (size !== undefined) {
    await c.need(size, `value of ${key}`);
    const dv = c.dv();
    const p = c.pos;
    c.pos += size;
    switch (type) {
      case 0: return dv.getUint8(p);
      case 1: return dv.getInt8(p);
      case 2: return dv.getUint16(p, true);
      case 3: return dv.getInt16(p, true);
      case 4: return dv.getUint32(p, true);
      case 5: return dv.getInt32(p, true);
      case 6: return dv.getFloat32(p, true);
      case 7: {
        const b = dv.getUint8(p);
        if (b > 1) throw ggufError(file, `key '${key}': bool value is ${b}, not 0 or 1`, undefined, { key, reason: 'value' });
        return b === 1;
      }
      case 10: return dv.getBigUint64(p, true);
      case 11: return dv.getBigInt64(p, true);
      case 12: return dv.getFloat64(p, true);
    }
  }
  if (type === GGUFValueType.STRING) return readString(c, file, `string value of key '${key}'`);
  if (type === GGUFValueType.ARRAY) {
    if (depth >= MAX_GGUF_ARRAY_DEPTH) throw ggufError(file, `key '${key}': arrays nested deeper than ${MAX_GGUF_ARRAY_DEPTH}`, undefined, { key, reason: 'depth' });
    const itemType = await c.u32(`array type of ${key}`);
    if (SCALAR_SIZE[itemType] === undefined && itemType !== 8 && itemType !== 9) throw ggufError(file, `key '${key}': unknown array element type ${itemType}`, undefined, { key, reason: 'value-type' });
    const n = await c.u64(`array length of ${key}`);
    if (n > MAX_GGUF_ARRAY) throw ggufError(file, `key '${key}': array length ${n} is over the ${MAX_GGUF_ARRAY} limit`, undefined, { key, reason: 'array-length' });
    // Each element takes at least its scalar size (strings: 8 length bytes; arrays: 12).
    const minEach = SCALAR_SIZE[itemType] ?? (itemType === 8 ? 8 : 12);
    const left = c.left();
    if (left !== undefined && n * minEach > left) throw ggufError(file, `key '${key}': array of ${n} elements cannot fit in the ${left} bytes left`, undefined, { key, reason: 'past-end' });
    const values: GGUFValue[] = new Array(n);
    for (let i = 0; i < n; i++) values[i] = await readValue(c, itemType, file, key, depth + 1);
    return { type: itemType, values };
  }
  throw ggufError(file, `key '${key}': unknown value type ${type}`, undefined, { key, reason: 'value-type' });
}

/** Bytes of a tensor of this ggml type and ggml-order dims, or a FormatError. */
export function ggmlByteLength(type: number, dims: readonly number[], file = '<gguf>', tensor?: string): number {
  const t = GGML_TYPES[type];
  if (!t) throw ggufError(file, `unknown ggml type ${type}`, tensor, { ggmlType: type, reason: 'ggml-type' });
  const ne0 = dims.length ? dims[0] : 1;
  if (ne0 % t.block !== 0) throw ggufError(file, `first dimension ${ne0} is not a multiple of the ${t.name} block size ${t.block}`, tensor, { reason: 'block' });
  let n = (ne0 / t.block) * t.bytes;
  for (let k = 1; k < dims.length; k++) n *= dims[k];
  if (!Number.isSafeInteger(n)) throw ggufError(file, `dims [${dims.join(', ')}] are too large (more than 2^53 bytes)`, tensor, { reason: 'overflow' });
  return n;
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Parse a GGUF prefix from a cursor (leaves it at the data section's start). */
async function parseHeader(c: Cursor, file: string): Promise<GGUFHeader> {
  const magic = await c.u32('magic');
  if (magic !== GGUF_MAGIC) throw ggufError(file, `not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')})`, undefined, { reason: 'magic' });
  const version = await c.u32('version');
  if (version === 1) throw ggufError(file, 'GGUF version 1 (2023, 32-bit counts) is not supported; re-convert the model with a current llama.cpp (gguf-py) to get version 3', undefined, { version, reason: 'version' });
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version >> 8 & 0xff) << 16) | ((version >> 16 & 0xff) << 8) | (version >>> 24);
    if (swapped === 2 || swapped === 3) throw ggufError(file, 'big-endian GGUF files are not supported', undefined, { version: swapped, reason: 'big-endian' });
    throw ggufError(file, `unsupported GGUF version ${version} (supported: 2, 3)`, undefined, { version, reason: 'version' });
  }
  const tensorCount = await c.u64('tensor count');
  const kvCount = await c.u64('key-value count');
  if (tensorCount > MAX_GGUF_TENSORS) throw ggufError(file, `tensor count ${tensorCount} is over the ${MAX_GGUF_TENSORS} limit`, undefined, { reason: 'tensor-count' });
  if (kvCount > MAX_GGUF_KV) throw ggufError(file, `key-value count ${kvCount} is over the ${MAX_GGUF_KV} limit`, undefined, { reason: 'kv-count' });
  const left = c.left();
  // A key-value takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least 8 + 4 + 4 + 8.
  if (left !== undefined && kvCount * 13 + tensorCount * 24 > left) {
    throw ggufError(file, `${kvCount} key-values and ${tensorCount} tensor infos cannot fit in the ${left} bytes left`, undefined, { reason: 'past-end' });
  }
  const kv: GGUFKeyValue[] = [];
  const keys = new Set<string>();
  for (let i = 0; i < kvCount; i++) {
    const key = await readString(c, file, `key #${i}`);
    if (keys.has(key)) throw ggufError(file, `key '${key}' appears twice`, undefined, { key, reason: 'duplicate' });
    keys.add(key);
    const type = await c.u32(`type of ${key}`);
    kv.push({ key, type, value: await readValue(c, type, file, key, 0) });
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = kv.find((x) => x.key === 'general.alignment');
  if (al) {
    if (al.type !== GGUFValueType.UINT32 || typeof al.value !== 'number' || al.value === 0 || al.value % 8 !== 0 || al.value > MAX_GGUF_ALIGNMENT) {
      throw ggufError(file, `general.alignment must be a u32 multiple of 8 up to ${MAX_GGUF_ALIGNMENT}, found ${String(al.value)}`, undefined, { reason: 'alignment' });
    }
    alignment = al.value;
  }
  const tensors: GGUFTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = await readString(c, file, `tensor #${i} name`);
    if (names.has(name)) throw ggufError(file, 'appears twice in the tensor infos', name, { reason: 'duplicate' });
    names.add(name);
    const nd = await c.u32(`n_dims of ${name}`);
    if (nd > MAX_GGUF_DIMS) throw ggufError(file, `has ${nd} dimensions; ggml supports at most ${MAX_GGUF_DIMS}`, name, { reason: 'dims' });
    const dims: number[] = [];
    for (let k = 0; k < nd; k++) dims.push(await c.u64(`dimension ${k} of ${name}`));
    const ggmlType = await c.u32(`type of ${name}`);
    const offset = await c.u64(`offset of ${name}`);
    const byteLength = ggmlByteLength(ggmlType, dims, file, name);
    if (offset % alignment !== 0) throw ggufError(file, `offset ${offset} is not a multiple of the alignment ${alignment}`, name, { reason: 'alignment' });
    tensors.push({ name, dims, ggmlType, offset, byteLength, infoIndex: i });
  }
  const dataStart = alignUp(c.pos, alignment);
  // Data order: by offset. Only alignment padding may sit between tensors; no overlaps.
  const order = tensors.slice().sort((a, b) => a.offset - b.offset || a.infoIndex - b.infoIndex);
  let cursor = 0;
  let prev: string | undefined;
  for (const t of order) {
    if (t.offset < cursor) throw ggufError(file, `offset ${t.offset} overlaps tensor '${prev}' (which ends at ${cursor})`, t.name, { other: prev, reason: 'overlap' });
    if (t.offset !== alignUp(cursor, alignment)) throw ggufError(file, `offset ${t.offset} leaves a gap after ${prev === undefined ? 'the start of the data section' : `'${prev}' (ends at ${cursor})`}; only alignment padding is allowed`, t.name, { reason: 'gap' });
    cursor = t.offset + t.byteLength;
    prev = t.name;
  }
  if (left !== undefined && dataStart + cursor > c.left()! + c.pos) {
    const size = c.left()! + c.pos;
    const cut = order.find((t) => dataStart + t.offset + t.byteLength > size);
    if (!cut) throw ggufError(file, `the data section starts at ${dataStart}, past the end of the file (${size} bytes)`, undefined, { reason: 'past-end' });
    throw ggufError(file, `data [${dataStart + cut.offset}, ${dataStart + cut.offset + cut.byteLength}) runs past the end of the file (${size} bytes)`, cut.name, { reason: 'past-end' });
  }
  // Padding between the tensor infos and the data section belongs to the prefix.
  await c.bytes(dataStart - c.pos, 'padding before the data section');
  return { version, kv, tensors: order, alignment, dataStart, dataBytes: cursor };
}

function plain(v: GGUFValue): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (typeof v === 'object') {
    if (v.values.length > 64) return `[${v.values.length} × ${VALUE_TYPE_NAMES[v.type]}]`;
    return v.values.map(plain);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Dequantization for statistics

/** Dequantizers by ggml type number (the block decoders live in dequantize.ts, shared by every reader of values). */
const DEQUANTIZERS: Record<number, (() => StatsDequantizer) | undefined> = Object.fromEntries(
  Object.entries(GGML_TYPES).filter(([, t]) => !t.dtype).map(([k, t]) => [k, dequantizerFor({ scheme: `ggml:${t.name}` })]),
);

// ---------------------------------------------------------------------------------------------
// Reading

function tensorView(info: GGUFTensorInfo): { dtype: DType; shape: number[]; quantization?: TensorQuantization } {
  const t = GGML_TYPES[info.ggmlType];
  const logical = info.dims.slice().reverse();
  if (t.dtype) return { dtype: t.dtype, shape: logical };
  const rowBytes = ((info.dims.length ? info.dims[0] : 1) / t.block) * t.bytes;
  const shape = info.dims.length ? [...logical.slice(0, -1), rowBytes] : [rowBytes];
  const quantize = GGML_QUANTIZABLE.includes(t.name) ? (v: Float32Array) => quantizeGgml(t.name, v)
    : GGML_K_QUANTIZABLE.includes(t.name) ? (v: Float32Array) => quantizeGgmlK(t.name, v) : undefined;
  return { dtype: 'U8', shape, quantization: { scheme: `ggml:${t.name}`, shape: logical, dequantizer: DEQUANTIZERS[info.ggmlType], quantize } };
}

/** A ByteReader that first serves `head`, then continues with `reader`. */
function prepend(head: Uint8Array, reader: ByteReader): ByteReader {
  let h = head;
  let pos = 0;
  return {
    name: reader.name,
    size: reader.size,
    get position() { return pos; },
    async readExactly(n) {
      if (n <= h.length) { const out = h.subarray(0, n); h = h.subarray(n); pos += n; return out; }
      const out = new Uint8Array(n);
      const first = h.length;
      out.set(h);
      h = new Uint8Array(0);
      out.set(await reader.readExactly(n - first), first);
      pos += n;
      return out;
    },
    async readUpTo(n) {
      if (h.length) { const out = h.subarray(0, Math.min(n, h.length)); h = h.subarray(out.length); pos += out.length; return out; }
      const out = await reader.readUpTo(n);
      pos += out.length;
      return out;
    },
    async skip(n) {
      const a = Math.min(n, h.length);
      h = h.subarray(a);
      if (n > a) await reader.skip(n - a);
      pos += n;
    },
    close: () => reader.close(),
  };
}

async function open(reader: ByteReader, opts: OpenOptions = {}): Promise<GGUFReader> {
  const file = opts.fileName ?? reader.name;
  const start = reader.position;
  const size = reader.size === undefined ? undefined : reader.size - start;
  const c = new Cursor(reader, file, size);
  const header = await parseHeader(c, file);
  const prefix = c.prefix();
  const r = prepend(c.leftover(), reader);
  const gaps: Uint8Array[] = [];
  let done = false;
  let iterated = false;

  const rethrow = (e: unknown, tensor: string | undefined, wanted: number, at: number): never => {
    if (e instanceof TruncatedError) {
      const t = new TruncatedError(file, wanted, e.data.got as number, at);
      if (tensor) { t.data.tensor = tensor; t.message = t.message.replace(`${file}: `, `${file}: tensor '${tensor}': `); }
      throw t;
    }
    throw e;
  };

  async function* tensors(): AsyncGenerator<GGUFTensor> {
    if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once (the input is read sequentially)`);
    iterated = true;
    let at = 0; // relative to the data section
    for (const info of header.tensors) {
      if (info.offset > at) {
        const n = info.offset - at;
        try { gaps.push((await r.readExactly(n)).slice()); } catch (e) { rethrow(e, info.name, n, header.dataStart + at); }
        at = info.offset;
      }
      const view = tensorView(info);
      const streamed = streamingTensor(file, {
        name: info.name,
        dtype: view.dtype,
        shape: view.shape,
        byteLength: info.byteLength,
        ggml: { type: info.ggmlType, typeName: GGML_TYPES[info.ggmlType].name, dims: info.dims.slice(), offset: info.offset },
        quantization: view.quantization,
      }, {
        readUpTo: (max) => r.readUpTo(max),
        truncated: (done) => rethrow(new TruncatedError(file, 0, 0, 0), info.name, info.byteLength - done, header.dataStart + info.offset + done),
      });
      yield streamed.tensor;
      streamed.retire();
      const consumed = streamed.consumed();
      if (consumed < info.byteLength) {
        const left = info.byteLength - consumed;
        try { await r.skip(left); } catch (e) { rethrow(e, info.name, left, header.dataStart + info.offset + consumed); }
      }
      at = info.offset + info.byteLength;
    }
    // After the last tensor: nothing, or padding up to the alignment.
    const pad = alignUp(at, header.alignment) - at;
    const tail: Uint8Array[] = [];
    let n = 0;
    while (n <= pad) {
      const more = await r.readUpTo(pad + 1 - n);
      if (!more.length) break;
      tail.push(more.slice());
      n += more.length;
    }
    const trailing = concat(tail, n);
    if (n !== 0 && n !== pad) {
      throw ggufError(file, `${n > pad ? `more than ${pad}` : n} bytes follow the last tensor; only nothing or the padding to the ${header.alignment}-byte alignment (${pad} bytes) may`, undefined, { reason: 'trailing' });
    }
    gaps.push(trailing);
    done = true;
  }

  return {
    format: GGUF_FORMAT_ID,
    header,
    metadata: Object.fromEntries(header.kv.map((x) => [x.key, plain(x.value)])),
    tensors,
    skeleton() {
      if (!done) throw new ArgumentError(`${file}: skeleton() is valid once tensors() has been iterated to the end`);
      return concat([prefix, ...gaps]);
    },
    close: () => reader.close(),
  };
}

/** Parse a GGUF header from bytes (a whole file or a skeleton); returns the header and where it ends. */
export async function parseGgufHeader(bytes: Uint8Array, fileName = '<gguf>'): Promise<GGUFHeader> {
  const c = new Cursor(readerFromBytes(bytes, fileName), fileName, undefined);
  return parseHeader(c, fileName);
}

// ---------------------------------------------------------------------------------------------
// Rebuilding and writing

async function rebuild(skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void> {
  const file = '<skeleton>';
  const header = await parseGgufHeader(skeleton, file);
  if (skeleton.length < header.dataStart) throw ggufError(file, 'skeleton is shorter than its header');
  await sink.write(skeleton.subarray(0, header.dataStart));
  let s = header.dataStart;
  let at = 0;
  for (const info of header.tensors) {
    const gap = info.offset - at;
    if (gap > 0) {
      if (s + gap > skeleton.length) throw ggufError(file, 'skeleton lacks padding bytes between tensors');
      await sink.write(skeleton.subarray(s, s + gap));
      s += gap;
    }
    let got = 0;
    for await (const part of tensor(info.name)) {
      got += part.length;
      if (got > info.byteLength) throw ggufError(file, `got more than the ${info.byteLength} bytes its header needs`, info.name);
      if (part.length) await sink.write(part);
    }
    if (got !== info.byteLength) throw ggufError(file, `got ${got} bytes but its header needs ${info.byteLength}`, info.name);
    at = info.offset + info.byteLength;
  }
  const trailing = skeleton.length - s;
  const pad = alignUp(at, header.alignment) - at;
  if (trailing !== 0 && trailing !== pad) throw ggufError(file, `skeleton has ${trailing} trailing bytes; expected 0 or ${pad}`);
  if (trailing) await sink.write(skeleton.subarray(s));
}

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

function sniff(head: Uint8Array): boolean {
  return head.length >= 8 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46;
}

export interface GGUFFormat extends CheckpointFormat {
  open(reader: ByteReader, opts?: OpenOptions): Promise<GGUFReader>;
}

export const gguf: GGUFFormat = {
  id: GGUF_FORMAT_ID,
  extensions: ['.gguf'],
  sniff,
  open,
  rebuild,
  write: (tensors, sink, opts) => writeGguf(tensors, sink, opts),
  // the skeleton starts with the header, which records each tensor's ggml type
  async quantizations(skeleton) {
    const out: Record<string, TensorQuantization> = {};
    for (const info of (await parseGgufHeader(skeleton, '<skeleton>')).tensors) {
      const q = tensorView(info).quantization;
      if (q) out[info.name] = q;
    }
    return out;
  },
};

export function dtypeOfGgml(type: number): DType | undefined {
  return GGML_TYPES[type]?.dtype;
}

