/**
 * The `.npy` header and array layout, shared by .npy files and .npz members: dtypes by `descr`,
 * reading and checking a header (a Python dict literal), encoding one, and the byte swap and
 * Fortran/C reordering that turn a file's layout into C-order little-endian and back.
 */
import { dtypeSize, elementCount, type DType } from '../../core/dtypes.ts';
import { ArgumentError, FormatError, TruncatedError, truncatedTensor } from '../../core/errors.ts';
import { concat, type ByteReader } from '../../core/io.ts';

export const NPY_FORMAT_ID = 'numpy';

export const NPY_MAGIC = new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/**
 * Largest `.npy` header we read. NumPy itself refuses headers over 10,000 bytes by default
 * (`max_header_size`, since 1.24) because `ast.literal_eval` on huge input is slow; a header is a
 * short dict even for high-rank shapes, so 1 MiB is generous and keeps a lying length from making
 * us allocate much.
 */
export const MAX_NPY_HEADER_BYTES = 1 << 20;

/** Most dimensions we accept (NumPy's own limit is 64, NPY_MAXDIMS). */
export const MAX_NPY_DIMS = 64;

/** Data start alignment NumPy writes (since 1.14; 16 before). */
export const NPY_ALIGN = 64;

// ---------------------------------------------------------------------------------------------
// dtypes

interface NpyType { dtype: DType; item: number; swap: boolean }

const LE_DESCR: Record<string, DType> = {
  '<f2': 'F16', '<f4': 'F32', '<f8': 'F64', '<i2': 'I16', '<i4': 'I32', '<i8': 'I64', '<u2': 'U16', '<u4': 'U32', '<u8': 'U64',
  '|i1': 'I8', '|u1': 'U8', '|b1': 'BOOL', '<i1': 'I8', '<u1': 'U8', '<b1': 'BOOL', '>i1': 'I8', '>u1': 'U8', '>b1': 'BOOL',
};

const DESCR_OF: Partial<Record<DType, string>> = {
  F16: '<f2', F32: '<f4', F64: '<f8', I16: '<i2', I32: '<i4', I64: '<i8', U16: '<u2', U32: '<u4', U64: '<u8', I8: '|i1', U8: '|u1', BOOL: '|b1',
};

function typeOfDescr(descr: string, fail: (m: string, extra?: Record<string, unknown>) => FormatError): NpyType {
  const le = LE_DESCR[descr];
  if (le) return { dtype: le, item: dtypeSize(le), swap: false };
  if (descr.startsWith('>')) {
    const d = LE_DESCR['<' + descr.slice(1)];
    if (d) return { dtype: d, item: dtypeSize(d), swap: dtypeSize(d) > 1 };
  }
  if (/^[|<>=]?O/.test(descr)) throw fail('pickled object arrays are not supported (dtype object)', { descr, reason: 'object' });
  throw fail(`unsupported dtype ${JSON.stringify(descr)} (supported: bool, int8..int64, uint8..uint64, float16/32/64, either byte order)`, { descr, reason: 'dtype' });
}

// ---------------------------------------------------------------------------------------------
// Header

export interface NpyHeader {
  major: number;
  minor: number;
  /** Bytes before the data: magic, version, length field, header text. */
  prefixLength: number;
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  dtype: DType;
  /** Bytes per element. */
  itemSize: number;
  /** The file's bytes are big-endian (multi-byte elements). */
  bigEndian: boolean;
  byteLength: number;
}

/** A tiny parser for the Python literal NumPy writes: a dict of str keys to str, bool, or a tuple of ints. */
function parsePyDict(text: string, fail: (m: string) => FormatError): Record<string, string | boolean | number[]> {
  let i = 0;
  const ws = () => { while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++; };
  const expect = (c: string) => { ws(); if (text[i] !== c) throw fail(`header: expected '${c}' at column ${i}, found ${JSON.stringify(text.slice(i, i + 10))}`); i++; };
  const str = (): string => {
    ws();
    const q = text[i];
    if (q !== "'" && q !== '"') throw fail(`header: expected a string at column ${i}`);
    const end = text.indexOf(q, i + 1);
    if (end < 0) throw fail('header: unterminated string');
    const s = text.slice(i + 1, end);
    if (s.includes('\\')) throw fail('header: escapes in strings are not supported');
    i = end + 1;
    return s;
  };
  const int = (): number => {
    ws();
    const m = /^[0-9]+L?/.exec(text.slice(i, i + 40));
    if (!m) throw fail(`header: expected a non-negative integer at column ${i}`);
    i += m[0].length;
    const v = Number(m[0].replace('L', ''));
    if (!Number.isSafeInteger(v)) throw fail(`header: dimension ${m[0]} is beyond 2^53`);
    return v;
  };
  const value = (): string | boolean | number[] => {
    ws();
    if (text[i] === "'" || text[i] === '"') return str();
    if (text.startsWith('True', i)) { i += 4; return true; }
    if (text.startsWith('False', i)) { i += 5; return false; }
    if (text[i] === '(') {
      i++;
      const dims: number[] = [];
      ws();
      if (text[i] === ')') { i++; return dims; }
      for (;;) {
        dims.push(int());
        if (dims.length > MAX_NPY_DIMS) throw fail(`header: more than ${MAX_NPY_DIMS} dimensions`);
        ws();
        if (text[i] === ')') { i++; break; }
        expect(',');
        ws();
        if (text[i] === ')') { i++; break; }
      }
      if (dims.length === 1 && !/,\s*\)$/.test(text.slice(0, i))) throw fail('header: a one-element shape must be written (n,)');
      return dims;
    }
    if (text[i] === '[') throw fail('header: structured dtypes (a list descr) are not supported');
    throw fail(`header: unexpected value at column ${i}: ${JSON.stringify(text.slice(i, i + 20))}`);
  };
  const out: Record<string, string | boolean | number[]> = {};
  expect('{');
  for (;;) {
    ws();
    if (text[i] === '}') { i++; break; }
    const k = str();
    if (Object.prototype.hasOwnProperty.call(out, k)) throw fail(`header: key '${k}' appears twice`);
    expect(':');
    out[k] = value();
    ws();
    if (text[i] === ',') { i++; continue; }
    expect('}');
    break;
  }
  const rest = text.slice(i);
  if (!/^[ \t]*\n$/.test(rest)) throw fail(`header: unexpected text after the dict: ${JSON.stringify(rest.slice(0, 20))}`);
  return out;
}

export function npyError(file: string, message: string, tensor?: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, tensor, format: NPY_FORMAT_ID, ...extra });
}

/** Read and check a `.npy` header from the reader (leaves it at the first data byte). */
export async function readNpyHeader(reader: ByteReader, file: string, tensor?: string): Promise<{ header: NpyHeader; prefix: Uint8Array }> {
  const fail = (m: string, extra: Record<string, unknown> = {}) => npyError(file, m, tensor, extra);
  const read = async (n: number) => {
    try {
      return (await reader.readExactly(n)).slice();
    } catch (e) {
      if (e instanceof TruncatedError) throw truncatedTensor(file, n, e.data.got as number, e.data.at as number, tensor);
      throw e;
    }
  };
  const lead = await read(8);
  for (let k = 0; k < 6; k++) if (lead[k] !== NPY_MAGIC[k]) throw fail('not a .npy array (no \\x93NUMPY magic)', { reason: 'magic' });
  const major = lead[6];
  const minor = lead[7];
  if (major < 1 || major > 3 || minor !== 0) throw fail(`unsupported .npy version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`, { reason: 'version' });
  const lenBytes = await read(major === 1 ? 2 : 4);
  const hlen = major === 1 ? lenBytes[0] | (lenBytes[1] << 8) : (lenBytes[0] | (lenBytes[1] << 8) | (lenBytes[2] << 16) | (lenBytes[3] << 24)) >>> 0;
  if (hlen > MAX_NPY_HEADER_BYTES) throw fail(`header length ${hlen} is over the ${MAX_NPY_HEADER_BYTES}-byte limit`, { reason: 'header-length' });
  const text = await read(hlen);
  let s: string;
  if (major === 3) {
    try { s = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(text); } catch { throw fail('header is not valid UTF-8', { reason: 'utf8' }); }
  } else {
    s = String.fromCharCode(...text);
  }
  if (!s.endsWith('\n')) throw fail("header does not end with '\\n'", { reason: 'header' });
  const dict = parsePyDict(s, (m) => fail(m, { reason: 'header' }));
  const keys = Object.keys(dict).sort().join(',');
  if (keys !== 'descr,fortran_order,shape') throw fail(`header keys must be descr, fortran_order, shape; found ${Object.keys(dict).join(', ')}`, { reason: 'header' });
  const { descr, fortran_order: fortran, shape } = dict as { descr: unknown; fortran_order: unknown; shape: unknown };
  if (typeof descr !== 'string') throw fail('header: descr must be a string', { reason: 'header' });
  if (typeof fortran !== 'boolean') throw fail('header: fortran_order must be True or False', { reason: 'header' });
  if (!Array.isArray(shape)) throw fail('header: shape must be a tuple', { reason: 'header' });
  const t = typeOfDescr(descr, fail);
  const count = elementCount(shape);
  const byteLength = count * t.item;
  if (!Number.isSafeInteger(byteLength)) throw fail(`shape (${shape.join(', ')}) is too large (more than 2^53 bytes)`, { reason: 'overflow' });
  const prefix = concat([lead, lenBytes, text]);
  return {
    header: { major, minor, prefixLength: prefix.length, descr, fortranOrder: fortran, shape, dtype: t.dtype, itemSize: t.item, bigEndian: t.swap, byteLength },
    prefix,
  };
}

/** The `.npy` prefix NumPy itself writes for this array (version 1.0, or 2.0 when the header needs it). */
export function encodeNpyHeader(dtype: DType, shape: readonly number[], opts: { fortranOrder?: boolean; bigEndian?: boolean } = {}): Uint8Array {
  let descr = DESCR_OF[dtype];
  if (!descr) throw new ArgumentError(`NumPy has no ${dtype} dtype; convert the tensor first (e.g. to F32)`, { dtype });
  if (opts.bigEndian && descr.startsWith('<')) descr = '>' + descr.slice(1);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new ArgumentError(`shape must be non-negative integers, got ${JSON.stringify(shape)}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': ${opts.fortranOrder ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  for (const [major, lenBytes] of [[1, 2], [2, 4]] as const) {
    const unpadded = 6 + 2 + lenBytes + dict.length + 1;
    const pad = (NPY_ALIGN - (unpadded % NPY_ALIGN)) % NPY_ALIGN;
    const hlen = dict.length + pad + 1;
    if (major === 1 && hlen > 0xffff) continue;
    const out = new Uint8Array(8 + lenBytes + hlen);
    out.set(NPY_MAGIC);
    out[6] = major;
    out[7] = 0;
    for (let k = 0; k < lenBytes; k++) out[8 + k] = Math.floor(hlen / 256 ** k) & 0xff;
    for (let k = 0; k < dict.length; k++) out[8 + lenBytes + k] = dict.charCodeAt(k);
    out.fill(0x20, 8 + lenBytes + dict.length, out.length - 1);
    out[out.length - 1] = 0x0a;
    return out;
  }
  throw new ArgumentError('npy header too long');
}

// ---------------------------------------------------------------------------------------------
// Layout conversion

/** Reverse the bytes of each `item`-byte element, in place. */
export function byteSwap(bytes: Uint8Array, item: number): Uint8Array {
  if (item <= 1) return bytes;
  for (let i = 0; i + item <= bytes.length; i += item) {
    for (let a = i, b = i + item - 1; a < b; a++, b--) { const t = bytes[a]; bytes[a] = bytes[b]; bytes[b] = t; }
  }
  return bytes;
}

/**
 * Convert between Fortran (column-major) and C (row-major) order for an array of this shape.
 * `toC` true: input is Fortran order, output C order; false: the reverse.
 */
export function reorder(src: Uint8Array, shape: readonly number[], item: number, toC: boolean): Uint8Array {
  const n = shape.length;
  if (shape.filter((d) => d !== 1).length <= 1) return src.slice();
  const out = new Uint8Array(src.length);
  // Strides in elements, for the Fortran layout.
  const fstride: number[] = new Array(n);
  let s = 1;
  for (let k = 0; k < n; k++) { fstride[k] = s; s *= shape[k]; }
  const idx = new Array(n).fill(0);
  const count = elementCount(shape);
  let f = 0; // Fortran element offset of the current C-order index
  for (let c = 0; c < count; c++) {
    const [from, to] = toC ? [f * item, c * item] : [c * item, f * item];
    for (let b = 0; b < item; b++) out[to + b] = src[from + b];
    // advance the C-order index (last axis fastest), keeping f in step
    for (let k = n - 1; k >= 0; k--) {
      idx[k]++;
      f += fstride[k];
      if (idx[k] < shape[k]) break;
      f -= fstride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return out;
}
