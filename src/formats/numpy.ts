/**
 * NumPy `.npy` and `.npz` (NEP 1, "A simple file format for NumPy arrays").
 *
 * `.npy`: the 6-byte magic `\x93NUMPY`, a major and minor version byte (1.0, 2.0, 3.0), the header
 * length (u16 LE for 1.0, u32 LE for 2.0/3.0), then the header: a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (20, 30), }` padded with spaces and ended with
 * '\n' so the data starts at a multiple of 64 (16 in old files); 1.0/2.0 headers are latin-1, 3.0
 * UTF-8. Then the array's bytes. `.npz`: a zip of `<key>.npy` members, stored (`numpy.savez`) or
 * deflated (`numpy.savez_compressed`); tensor names are the member names without `.npy`.
 *
 * Tensors handed out are C-order little-endian whatever the file holds: big-endian arrays are
 * byte-swapped while streaming, Fortran-order arrays are transposed (that needs the whole array in
 * memory, once). The skeleton records each tensor's layout, so `rebuild` converts back and gives the
 * identical file.
 *
 * Deflated `.npz` members and exactness. A deflated member is only as exact as the deflate that
 * wrote it, so while a member is read its content is also deflated again and compared with the
 * member's compressed bytes: with zlib's deflate (pako, a port of zlib) at ZLIB_LEVELS — numpy's
 * `savez_compressed` writes through Python's zlib at level 6, which this reproduces byte for byte —
 * and with fflate at DEFLATE_LEVELS (fed in fixed pieces so its output is deterministic; our own
 * writer uses it). If one reproduces them exactly, the skeleton records only "deflate with X at
 * level L" (plus the compressed size and CRC-32, which rebuild checks), and the tensor is stored
 * per tensor like any other, so an unchanged member costs nothing on the next commit. If none does
 * (another deflate wrote it), the skeleton keeps the member's original compressed bytes, so
 * exactness is never traded away: the tensor is still tracked per tensor (hashes, diffs,
 * statistics), the skeleton carries the compressed copy, and `metadata.deflatedKeptCompressed`
 * counts such members (`git theta add` says so in one line). Memory for a deflated member: its
 * compressed bytes (held to compare) plus one piece of output.
 */
import { checkChunkBytes, readOnce, DEFAULT_CHUNK_BYTES } from './read-once.ts';
import { DTYPES, dtypeSize, elementCount, type DType } from '../core/dtypes.ts';
import { ArgumentError, FormatError, TruncatedError } from '../core/errors.ts';
import { concat, readerFromChunks, type ByteReader, type ByteSink } from '../core/io.ts';
import type { CheckpointFormat, CheckpointReader, OpenOptions, StreamedTensor, TensorToWrite } from './types.ts';
import { DeflateVerifier, FixedDeflater, ZipReader, crc32, inflateChunks, isZip, writeZip, zipNamesInHead, type ZipEntry } from './zip.ts';
import { ReproductionCheck, ZlibDeflater } from './zlib-deflate.ts';

export const NPY_FORMAT_ID = 'numpy';
export const NPZ_FORMAT_ID = 'npz';

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

/**
 * zlib levels tried when checking whether zlib's deflate (pako) reproduces a deflated member:
 * 6 is zlib's default, what `numpy.savez_compressed` uses; 9 and 1 are what `compresslevel` is
 * usually set to.
 */
export const ZLIB_LEVELS: readonly number[] = [6, 9, 1];

/** Levels tried when checking whether fflate reproduces a deflated member (6 is what our writer uses). */
export const DEFLATE_LEVELS: readonly number[] = [6, 9, 1, 4];


/** Data start alignment NumPy writes (since 1.14; 16 before). */
export const NPY_ALIGN = 64;

const SKELETON_MAGIC = 'theta-numpy-skeleton/1';

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

function npyError(file: string, message: string, tensor?: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, tensor, format: NPY_FORMAT_ID, ...extra });
}

/** Read and check a `.npy` header from the reader (leaves it at the first data byte). */
export async function readNpyHeader(reader: ByteReader, file: string, tensor?: string): Promise<{ header: NpyHeader; prefix: Uint8Array }> {
  const fail = (m: string, extra: Record<string, unknown> = {}) => npyError(file, m, tensor, extra);
  const read = async (n: number) => {
    try {
      return (await reader.readExactly(n)).slice();
    } catch (e) {
      if (e instanceof TruncatedError) {
        const t = new TruncatedError(file, n, e.data.got as number, e.data.at as number);
        if (tensor) { t.data.tensor = tensor; t.message = t.message.replace(`${file}: `, `${file}: tensor '${tensor}': `); }
        throw t;
      }
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

// ---------------------------------------------------------------------------------------------
// Skeleton: a JSON list of parts plus the raw bytes they refer to, in order.
//   {raw: n}                                   n bytes from the blob area
//   {tensor, shape, dtype, item, swap, fortran, bytes}   a tensor, written back in its file layout
//   {deflate: {level, size, crc[, zlib]}, parts}  the parts' bytes, deflated with FixedDeflater(level)
//                                              (fflate), or with zlib's deflate when `zlib` is true

type Part =
  | { raw: number }
  | { tensor: string; dtype: DType; shape: number[]; item: number; swap: boolean; fortran: boolean; bytes: number }
  | { deflate: { level: number; size: number; crc: number; zlib?: true }; parts: Part[] };

class SkeletonBuilder {
  readonly parts: Part[] = [];
  readonly blobs: Uint8Array[] = [];
  raw(b: Uint8Array, into: Part[] = this.parts): void {
    if (!b.length) return;
    this.blobs.push(b.slice());
    const last = into[into.length - 1];
    if (last && 'raw' in last) last.raw += b.length;
    else into.push({ raw: b.length });
  }
  encode(format: string): Uint8Array {
    const json = new TextEncoder().encode(JSON.stringify({ skeleton: SKELETON_MAGIC, format, parts: this.parts }));
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, json.length, true);
    return concat([head, json, ...this.blobs]);
  }
}

function decodeSkeleton(skeleton: Uint8Array, format: string): { parts: Part[]; blob: Uint8Array } {
  const fail = (m: string) => npyError('<skeleton>', m);
  if (skeleton.length < 4) throw fail('skeleton is too short');
  const n = new DataView(skeleton.buffer, skeleton.byteOffset, 4).getUint32(0, true);
  if (4 + n > skeleton.length) throw fail('skeleton JSON runs past its end');
  let meta: { skeleton?: string; format?: string; parts?: Part[] };
  try { meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(skeleton.subarray(4, 4 + n))); } catch { throw fail('skeleton JSON is invalid'); }
  if (meta.skeleton !== SKELETON_MAGIC || meta.format !== format || !Array.isArray(meta.parts)) throw fail(`not a ${format} skeleton`);
  return { parts: meta.parts, blob: skeleton.subarray(4 + n) };
}

async function writeParts(
  parts: Part[],
  blob: { bytes: Uint8Array; at: number },
  tensor: (name: string) => AsyncIterable<Uint8Array>,
  out: (b: Uint8Array) => Promise<void>,
): Promise<void> {
  const fail = (m: string, t?: string) => npyError('<skeleton>', m, t);
  for (const p of parts) {
    if ('raw' in p) {
      if (blob.at + p.raw > blob.bytes.length) throw fail('skeleton blob area is shorter than its parts');
      await out(blob.bytes.subarray(blob.at, blob.at + p.raw));
      blob.at += p.raw;
    } else if ('tensor' in p) {
      let got = 0;
      const check = (n: number) => {
        got += n;
        if (got > p.bytes) throw fail(`got more than the ${p.bytes} bytes its header needs`, p.tensor);
      };
      if (p.fortran) {
        const parts: Uint8Array[] = [];
        for await (const c of tensor(p.tensor)) { check(c.length); parts.push(c.slice()); }
        if (got !== p.bytes) throw fail(`got ${got} bytes but its header needs ${p.bytes}`, p.tensor);
        const f = reorder(concat(parts, got), p.shape, p.item, false);
        if (p.swap) byteSwap(f, p.item);
        await out(f);
      } else {
        let carry = new Uint8Array(0);
        for await (const c of tensor(p.tensor)) {
          check(c.length);
          if (!p.swap) { if (c.length) await out(c); continue; }
          const all = carry.length ? concat([carry, c]) : c.slice();
          const whole = all.length - (all.length % p.item);
          carry = all.slice(whole);
          if (whole) await out(byteSwap(all.subarray(0, whole), p.item));
        }
        if (got !== p.bytes) throw fail(`got ${got} bytes but its header needs ${p.bytes}`, p.tensor);
      }
    } else if ('deflate' in p) {
      const d = p.deflate.zlib ? new ZlibDeflater(p.deflate.level) : new FixedDeflater(p.deflate.level);
      let size = 0;
      let crc = 0;
      const emit = async (cs: Uint8Array[]) => { for (const c of cs) { size += c.length; crc = crc32(c, crc); await out(c); } };
      await writeParts(p.parts, blob, tensor, async (b) => emit(d.push(b)));
      await emit(d.finish());
      if (size !== p.deflate.size || crc !== p.deflate.crc) {
        throw fail(`re-deflating a member at level ${p.deflate.level} gave different bytes than when the file was added (the deflate library changed?); the output is not the original file`);
      }
    } else {
      throw fail('skeleton has an unknown part');
    }
  }
}

async function rebuildFrom(format: string, skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void> {
  const { parts, blob } = decodeSkeleton(skeleton, format);
  const b = { bytes: blob, at: 0 };
  await writeParts(parts, b, tensor, (x) => sink.write(x));
  if (b.at !== blob.length) throw npyError('<skeleton>', `${blob.length - b.at} skeleton bytes are not used by any part`);
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface NumpyTensor extends StreamedTensor {
  /** The layout in the file: the bytes handed out are always C-order little-endian. */
  npy: { descr: string; fortranOrder: boolean; bigEndian: boolean; version: string };
  /** For .npz: the zip member's name and compression. */
  member?: { name: string; method: 0 | 8 };
}

export interface NumpyReader extends CheckpointReader {
  tensors(): AsyncIterable<NumpyTensor>;
}

/**
 * One array's bytes from `r` (positioned at the data), handed out C-order little-endian, with a
 * `finish()` that skips what the consumer did not read.
 */
function arrayTensor(r: ByteReader, h: NpyHeader, name: string, file: string, member?: NumpyTensor['member']): { tensor: NumpyTensor; finish(): Promise<void> } {
  let consumed = 0;
  const once = readOnce(file, name);
  const readExact = async (n: number) => {
    try {
      return await r.readExactly(n);
    } catch (e) {
      if (e instanceof TruncatedError) {
        const t = new TruncatedError(file, n, e.data.got as number, h.prefixLength + consumed);
        t.data.tensor = name;
        t.message = t.message.replace(`${file}: `, `${file}: tensor '${name}': `);
        throw t;
      }
      throw e;
    }
  };
  async function whole(): Promise<Uint8Array> {
    const b = (await readExact(h.byteLength - consumed)).slice();
    consumed = h.byteLength;
    if (h.bigEndian) byteSwap(b, h.itemSize);
    return h.fortranOrder ? reorder(b, h.shape, h.itemSize, true) : b;
  }
  const tensor: NumpyTensor = {
    name,
    dtype: h.dtype,
    shape: h.shape.slice(),
    byteLength: h.byteLength,
    npy: { descr: h.descr, fortranOrder: h.fortranOrder, bigEndian: h.bigEndian, version: `${h.major}.${h.minor}` },
    member,
    chunks(chunkBytes = DEFAULT_CHUNK_BYTES) {
      checkChunkBytes(chunkBytes);
      once.claim('chunks()');
      return (async function* () {
        if (h.fortranOrder) {
          const all = await whole();
          for (let i = 0; i < all.length; i += chunkBytes) yield all.subarray(i, i + chunkBytes);
          return;
        }
        const step = Math.max(h.itemSize, chunkBytes - (chunkBytes % h.itemSize));
        while (consumed < h.byteLength) {
          const n = Math.min(step, h.byteLength - consumed);
          let part = await readExact(n);
          consumed += n;
          if (h.bigEndian) part = byteSwap(part.slice(), h.itemSize);
          yield part;
        }
      })();
    },
    async bytes() {
      once.claim('bytes()');
      return whole();
    },
  };
  return {
    tensor,
    async finish() {
      once.retire();
      if (consumed < h.byteLength) {
        const left = h.byteLength - consumed;
        try {
          await r.skip(left);
        } catch (e) {
          if (e instanceof TruncatedError) {
            const t = new TruncatedError(file, left, e.data.got as number, h.prefixLength + consumed);
            t.data.tensor = name;
            t.message = t.message.replace(`${file}: `, `${file}: tensor '${name}': `);
            throw t;
          }
          throw e;
        }
        consumed = h.byteLength;
      }
    },
  };
}

function baseName(fileName: string | undefined): string {
  if (!fileName) return 'array';
  const base = fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1);
  const stem = base.toLowerCase().endsWith('.npy') ? base.slice(0, -4) : base;
  return stem || 'array';
}

async function openNpy(reader: ByteReader, opts: OpenOptions = {}): Promise<NumpyReader> {
  const file = opts.fileName ?? reader.name;
  const start = reader.position;
  const { header, prefix } = await readNpyHeader(reader, file);
  const name = baseName(opts.fileName ?? reader.name);
  if (reader.size !== undefined) {
    const data = reader.size - start - header.prefixLength;
    if (data < header.byteLength) {
      const t = new TruncatedError(file, header.byteLength, Math.max(0, data), header.prefixLength);
      t.data.tensor = name;
      t.message = t.message.replace(`${file}: `, `${file}: tensor '${name}': `);
      throw t;
    }
    if (data > header.byteLength) throw npyError(file, `${data - header.byteLength} bytes follow the array (its header describes ${header.byteLength})`, name, { reason: 'trailing' });
  }
  const sk = new SkeletonBuilder();
  sk.raw(prefix);
  sk.parts.push({ tensor: name, dtype: header.dtype, shape: header.shape, item: header.itemSize, swap: header.bigEndian, fortran: header.fortranOrder, bytes: header.byteLength });
  let iterated = false;
  let done = false;
  return {
    format: NPY_FORMAT_ID,
    metadata: { version: `${header.major}.${header.minor}`, descr: header.descr, fortran_order: header.fortranOrder },
    async *tensors() {
      if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once (the input is read sequentially)`);
      iterated = true;
      const t = arrayTensor(reader, header, name, file);
      yield t.tensor;
      await t.finish();
      if (reader.size === undefined && (await reader.readUpTo(1)).length) {
        throw npyError(file, `bytes follow the array (its header describes ${header.byteLength})`, name, { reason: 'trailing' });
      }
      done = true;
    },
    skeleton() {
      if (!done) throw new ArgumentError(`${file}: skeleton() is valid once tensors() has been iterated to the end`);
      return sk.encode(NPY_FORMAT_ID);
    },
    close: () => reader.close(),
  };
}

function npzError(file: string, message: string, tensor?: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, tensor, format: NPZ_FORMAT_ID, ...extra });
}

async function openNpz(reader: ByteReader, opts: OpenOptions = {}): Promise<NumpyReader> {
  const file = opts.fileName ?? reader.name;
  const zip = new ZipReader(reader, { fileName: file });
  const sk = new SkeletonBuilder();
  let iterated = false;
  let done = false;
  const stats = { deflatedExact: 0, deflatedKept: 0 };

  async function* tensors(): AsyncGenerator<NumpyTensor> {
    if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once (the input is read sequentially)`);
    iterated = true;
    for (let e: ZipEntry | undefined; (e = await zip.next()); ) {
      sk.raw(e.header);
      const isArray = e.name.toLowerCase().endsWith('.npy');
      if (!isArray) {
        // Not an array: kept byte for byte (compressed as it is).
        for await (const c of zip.raw()) sk.raw(c);
        sk.raw(zip.descriptor());
        continue;
      }
      const name = e.name.endsWith('.npy') ? e.name.slice(0, -4) : e.name; // numpy's keys: only '.npy' is cut, so w.npy and w.NPY stay apart
      if (e.method === 0) {
        const r = readerFromChunks(zip.data(), `${file}:${e.name}`, e.uncompressedSize);
        const { header, prefix } = await readNpyHeader(r, file, name);
        checkMemberSize(file, name, e, header);
        sk.raw(prefix);
        sk.parts.push(tensorPart(name, header));
        const t = arrayTensor(r, header, name, file, { name: e.name, method: 0 });
        yield t.tensor;
        await t.finish();
        await drained(r, file, name);
        sk.raw(zip.descriptor());
        continue;
      }
      // Deflated: hold the compressed bytes, inflate them, and check re-deflation as we go.
      const parts: Uint8Array[] = [];
      let csize = 0;
      for await (const c of zip.raw()) { parts.push(c.slice()); csize += c.length; }
      const compressed = concat(parts, csize);
      parts.length = 0;
      // zlib's deflate first (what numpy's savez_compressed wrote), then fflate's (what our writer wrote)
      const verifiers = [
        ...ZLIB_LEVELS.map((l) => new ReproductionCheck(compressed, new ZlibDeflater(l), true)),
        ...DEFLATE_LEVELS.map((l) => new ReproductionCheck(compressed, new FixedDeflater(l), false)),
      ];
      const descriptor = zip.descriptor();
      const wantCrc = descriptor.length ? readU32(descriptor, descriptor.length === 12 || descriptor.length === 20 ? 0 : 4) : e.crc32;
      let crc = 0;
      const content = (async function* () {
        for await (const c of inflateChunks([compressed], { expectedSize: e!.uncompressedSize, fileName: file, entry: e!.name })) {
          crc = crc32(c, crc);
          for (const v of verifiers) v.push(c);
          yield c;
        }
        if (crc !== wantCrc) throw npzError(file, `zip member CRC-32 mismatch (computed ${crc >>> 0}, recorded ${wantCrc}); the file is corrupt`, name, { reason: 'crc' });
      })();
      const r = readerFromChunks(content, `${file}:${e.name}`, e.uncompressedSize);
      const { header, prefix } = await readNpyHeader(r, file, name);
      checkMemberSize(file, name, e, header);
      const t = arrayTensor(r, header, name, file, { name: e.name, method: 8 });
      yield t.tensor;
      await t.finish();
      await drained(r, file, name);
      const match = verifiers.find((v) => v.matches());
      if (match) {
        const inner: Part[] = [];
        sk.raw(prefix, inner);
        inner.push(tensorPart(name, header));
        sk.parts.push({ deflate: { level: match.level, size: compressed.length, crc: crc32(compressed), ...(match.zlib ? { zlib: true as const } : {}) }, parts: inner });
        stats.deflatedExact++;
      } else {
        sk.raw(compressed);
        stats.deflatedKept++;
      }
      sk.raw(descriptor);
    }
    sk.raw(zip.trailer());
    done = true;
  }

  return {
    format: NPZ_FORMAT_ID,
    get metadata() { return { members: zip.entries.map((x) => x.name), deflatedReproduced: stats.deflatedExact, deflatedKeptCompressed: stats.deflatedKept }; },
    tensors,
    skeleton() {
      if (!done) throw new ArgumentError(`${file}: skeleton() is valid once tensors() has been iterated to the end`);
      return sk.encode(NPZ_FORMAT_ID);
    },
    close: () => reader.close(),
  };
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function tensorPart(name: string, h: NpyHeader): Part {
  return { tensor: name, dtype: h.dtype, shape: h.shape, item: h.itemSize, swap: h.bigEndian, fortran: h.fortranOrder, bytes: h.byteLength };
}

function checkMemberSize(file: string, name: string, e: ZipEntry, h: NpyHeader): void {
  const data = e.uncompressedSize - h.prefixLength;
  if (data !== h.byteLength) {
    throw npzError(file, `member ${e.name} holds ${data} data bytes but its .npy header describes ${h.byteLength}`, name, { reason: 'member-size' });
  }
}

async function drained(r: ByteReader, file: string, name: string): Promise<void> {
  if ((await r.readUpTo(1)).length) throw npzError(file, 'bytes follow the array inside its zip member', name, { reason: 'trailing' });
}

// ---------------------------------------------------------------------------------------------
// Writing

function checkTensor(t: TensorToWrite): void {
  const want = elementCount(t.shape) * (DTYPES[t.dtype]?.size ?? NaN);
  if (!(t.data instanceof Uint8Array) || t.data.length !== want) {
    throw new ArgumentError(`tensor '${t.name}': data has ${t.data?.length} bytes but ${t.dtype} ${JSON.stringify(t.shape)} needs ${want}`, { tensor: t.name });
  }
}

/** Write a `.npy` file (C order, little-endian, exactly as numpy.save writes it). */
export async function writeNpy(t: TensorToWrite, sink: ByteSink, opts: { fortranOrder?: boolean; bigEndian?: boolean } = {}): Promise<void> {
  checkTensor(t);
  const prefix = encodeNpyHeader(t.dtype, t.shape, opts);
  await sink.write(prefix);
  let data = t.data;
  if (opts.fortranOrder) data = reorder(data, t.shape, dtypeSize(t.dtype), false);
  if (opts.bigEndian) data = byteSwap(data === t.data ? data.slice() : data, dtypeSize(t.dtype));
  if (data.length) await sink.write(data);
}

/**
 * Write an `.npz` with one `<name>.npy` member per tensor, in the order given. `compress` deflates
 * members (true = level 6) with our deterministic deflater, so reading the file back reproduces
 * it without keeping compressed bytes.
 */
export async function writeNpz(tensors: AsyncIterable<TensorToWrite> | Iterable<TensorToWrite>, sink: ByteSink, opts: { compress?: boolean | number } = {}): Promise<void> {
  const level = opts.compress === true ? 6 : typeof opts.compress === 'number' ? opts.compress : undefined;
  await writeZip((async function* () {
    for await (const t of tensors) {
      checkTensor(t);
      yield { name: t.name + '.npy', data: concat([encodeNpyHeader(t.dtype, t.shape), t.data]), method: level === undefined ? 0 : 8, level } as const;
    }
  })(), sink);
}

// ---------------------------------------------------------------------------------------------
// Formats

function sniffNpy(head: Uint8Array): boolean {
  if (head.length < 8) return false;
  for (let k = 0; k < 6; k++) if (head[k] !== NPY_MAGIC[k]) return false;
  return head[6] >= 1 && head[6] <= 3;
}

function sniffNpz(head: Uint8Array, fileName?: string): boolean {
  if (!isZip(head)) return false;
  const names = zipNamesInHead(head);
  if (!names.length) return !!fileName && fileName.toLowerCase().endsWith('.npz');
  return names.every((n) => n.toLowerCase().endsWith('.npy'));
}

export const npy: CheckpointFormat & { open(reader: ByteReader, opts?: OpenOptions): Promise<NumpyReader> } = {
  id: NPY_FORMAT_ID,
  extensions: ['.npy'],
  sniff: sniffNpy,
  open: openNpy,
  rebuild: (skeleton, tensor, sink) => rebuildFrom(NPY_FORMAT_ID, skeleton, tensor, sink),
  async write(tensors, sink) {
    const all: TensorToWrite[] = [];
    for await (const t of tensors) all.push(t);
    if (all.length !== 1) throw new ArgumentError(`a .npy file holds exactly one array; got ${all.length} tensors (write an .npz instead)`, { count: all.length });
    await writeNpy(all[0], sink);
  },
};

export const npz: CheckpointFormat & { open(reader: ByteReader, opts?: OpenOptions): Promise<NumpyReader> } = {
  id: NPZ_FORMAT_ID,
  extensions: ['.npz'],
  sniff: sniffNpz,
  open: openNpz,
  rebuild: (skeleton, tensor, sink) => rebuildFrom(NPZ_FORMAT_ID, skeleton, tensor, sink),
  write: (tensors, sink) => writeNpz(tensors, sink),
};

