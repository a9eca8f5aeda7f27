/**
 * The GGUF header: constants and limits, value and ggml types, and the strict parser of the
 * header (key-values, tensor infos, padding up to the data section) that reading and rebuild share.
 */
import type { DType } from '../../core/dtypes.ts';
import { FormatError, TruncatedError } from '../../core/errors.ts';
import { readerFromBytes, type ByteReader } from '../../core/io.ts';

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
export const GGML_OF_DTYPE: Partial<Record<DType, number>> = { F32: 0, F16: 1, I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, BF16: 30 };

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


// ---------------------------------------------------------------------------------------------
// Parsing

export function ggufError(file: string, message: string, tensor?: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, tensor, format: GGUF_FORMAT_ID, ...extra });
}

/**
 * A buffered cursor over a ByteReader that keeps every byte it reads (the prefix becomes the
 * skeleton). Reads ahead in blocks; bytes read past the prefix are handed back via `leftover()`.
 */
export class Cursor {
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

export const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Parse a GGUF prefix from a cursor (leaves it at the data section's start). */
export async function parseHeader(c: Cursor, file: string): Promise<GGUFHeader> {
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

export function plain(v: GGUFValue): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (typeof v === 'object') {
    if (v.values.length > 64) return `[${v.values.length} × ${VALUE_TYPE_NAMES[v.type]}]`;
    return v.values.map(plain);
  }
  return v;
}

/** Parse a GGUF header from bytes (a whole file or a skeleton); returns the header and where it ends. */
export async function parseGgufHeader(bytes: Uint8Array, fileName = '<gguf>'): Promise<GGUFHeader> {
  const c = new Cursor(readerFromBytes(bytes, fileName), fileName, undefined);
  return parseHeader(c, fileName);
}
