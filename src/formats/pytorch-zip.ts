/**
 * The zip layer of torch.save files: CRC-32, local headers, data descriptors, the central
 * directory and its end records, read strictly from a sequential stream and written the way
 * PyTorch's writer (miniz inside PyTorchStreamWriter) writes them. Private to pytorch.ts.
 *
 * What PyTorch 1.13 writes, per entry: a local header with general-purpose flags 0x0808 (sizes in a
 * data descriptor, UTF-8 names), CRC and sizes zero, no date, and one extra field 'FB' whose 'Z'
 * bytes pad the data to a multiple of 64; the data stored (not compressed); a 16-byte data
 * descriptor (signature, CRC, sizes). After the entries: central directory headers, a zip64 end
 * record, the zip64 locator and the classic end record.
 */

// ---------------------------------------------------------------------------------------------
// CRC-32: the shared implementation (Wasm kernel once enabled, plain JS before).
export { crc32 } from '../core/crc32.ts';
import { crc32 } from '../core/crc32.ts';

// ---------------------------------------------------------------------------------------------
// Records

// The record signatures are zip's, defined once in zip.ts (shared with npz).
import {
  ZIP_LOCAL_SIGNATURE as SIG_LOCAL, ZIP_CENTRAL_SIGNATURE as SIG_CENTRAL, ZIP_DESCRIPTOR_SIGNATURE as SIG_DESCRIPTOR,
  ZIP_EOCD_SIGNATURE as SIG_EOCD, ZIP64_EOCD_SIGNATURE as SIG_EOCD64, ZIP64_LOCATOR_SIGNATURE as SIG_LOCATOR64, u16, u32,
} from './zip.ts';
export { SIG_LOCAL, SIG_CENTRAL, SIG_DESCRIPTOR, SIG_EOCD, SIG_EOCD64, SIG_LOCATOR64, u16, u32 };
export const LOCAL_HEADER_BYTES = 30;
export const CENTRAL_HEADER_BYTES = 46;
export const FLAG_ENCRYPTED = 0x0001;
export const FLAG_DESCRIPTOR = 0x0008;
export const FLAG_UTF8 = 0x0800;
export const METHOD_STORED = 0;
export const METHOD_DEFLATED = 8;
const U32_MAX = 0xffffffff;

/** A little-endian u64 as a number, or NaN past 2^53. */
export function u64(b: Uint8Array, at: number): number {
  const v = u32(b, at + 4) * 2 ** 32 + u32(b, at);
  return Number.isSafeInteger(v) ? v : NaN;
}
export function put16(b: Uint8Array, at: number, v: number): void { b[at] = v & 0xff; b[at + 1] = (v >>> 8) & 0xff; }
export function put32(b: Uint8Array, at: number, v: number): void { put16(b, at, v & 0xffff); put16(b, at + 2, v >>> 16); }
export function put64(b: Uint8Array, at: number, v: number): void { put32(b, at, v % 2 ** 32); put32(b, at + 4, Math.floor(v / 2 ** 32)); }

/** Extra-field blocks (id, data) of a header. Returns undefined when the lengths do not add up. */
export function extraFields(extra: Uint8Array): { id: number; data: Uint8Array }[] | undefined {
  const out: { id: number; data: Uint8Array }[] = [];
  let at = 0;
  while (at < extra.length) {
    if (at + 4 > extra.length) return undefined;
    const id = u16(extra, at);
    const n = u16(extra, at + 2);
    if (at + 4 + n > extra.length) return undefined;
    out.push({ id, data: extra.subarray(at + 4, at + 4 + n) });
    at += 4 + n;
  }
  return out;
}

export interface LocalHeader {
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  name: string;
  nameBytes: Uint8Array;
  extra: Uint8Array;
  /** True when the header has a zip64 extended-information field (0x0001). */
  zip64: boolean;
}

/**
 * Why a zip entry name is unsafe, or undefined if it is fine: absolute paths, drive letters,
 * backslashes, `..` segments and NUL could point a naive extractor outside its directory.
 */
export function unsafeEntryName(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.startsWith('/') || name.startsWith('\\')) return 'is an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'starts with a drive letter';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.split('/').some((s) => s === '..')) return "contains a '..' segment";
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Writing, as PyTorchStreamWriter does

/** Data alignment PyTorch uses (kFieldAlignment): entry data starts at a multiple of 64. */
export const TORCH_ALIGNMENT = 64;

/** Local header (with 'FB' padding extra) for an entry whose header starts at `offset`. */
export function torchLocalHeader(nameBytes: Uint8Array, offset: number, size: number): Uint8Array {
  const big = size >= U32_MAX || offset >= U32_MAX;
  let zip64: Uint8Array = new Uint8Array(0);
  if (big) {
    const fields: number[] = [];
    if (size >= U32_MAX) fields.push(size, size);
    if (offset >= U32_MAX) fields.push(offset);
    zip64 = new Uint8Array(4 + 8 * fields.length);
    put16(zip64, 0, 0x0001);
    put16(zip64, 2, 8 * fields.length);
    fields.forEach((v, i) => put64(zip64, 4 + 8 * i, v));
  }
  const start = offset + LOCAL_HEADER_BYTES + nameBytes.length + zip64.length + 4;
  const pad = (TORCH_ALIGNMENT - (start % TORCH_ALIGNMENT)) % TORCH_ALIGNMENT;
  const h = new Uint8Array(LOCAL_HEADER_BYTES + nameBytes.length + zip64.length + 4 + pad);
  put32(h, 0, SIG_LOCAL);
  put16(h, 4, big ? 45 : 0); // version needed
  put16(h, 6, FLAG_DESCRIPTOR | FLAG_UTF8);
  put16(h, 26, nameBytes.length);
  put16(h, 28, zip64.length + 4 + pad);
  h.set(nameBytes, LOCAL_HEADER_BYTES);
  let at = LOCAL_HEADER_BYTES + nameBytes.length;
  h.set(zip64, at);
  at += zip64.length;
  h[at] = 0x46; h[at + 1] = 0x42; // 'FB'
  put16(h, at + 2, pad);
  h.fill(0x5a, at + 4); // 'Z'
  return h;
}

/** Data descriptor: 16 bytes, or 24 with 64-bit sizes when the local header carried zip64. */
export function descriptor(crc: number, size: number, zip64: boolean): Uint8Array {
  const d = new Uint8Array(zip64 ? 24 : 16);
  put32(d, 0, SIG_DESCRIPTOR);
  put32(d, 4, crc);
  if (zip64) { put64(d, 8, size); put64(d, 16, size); } else { put32(d, 8, size); put32(d, 12, size); }
  return d;
}

export interface WrittenEntry {
  nameBytes: Uint8Array;
  offset: number;
  size: number;
  crc: number;
}

/** Central directory, zip64 end record, zip64 locator and end record, for entries written at `cdOffset`. */
export function torchCentralDirectory(entries: readonly WrittenEntry[], cdOffset: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const fields: number[] = [];
    if (e.size >= U32_MAX) fields.push(e.size, e.size);
    if (e.offset >= U32_MAX) fields.push(e.offset);
    const extra = fields.length ? 4 + 8 * fields.length : 0;
    const h = new Uint8Array(CENTRAL_HEADER_BYTES + e.nameBytes.length + extra);
    put32(h, 0, SIG_CENTRAL);
    put16(h, 4, fields.length ? 45 : 0);
    put16(h, 6, fields.length ? 45 : 0);
    put16(h, 8, FLAG_DESCRIPTOR | FLAG_UTF8);
    put32(h, 16, e.crc);
    put32(h, 20, e.size >= U32_MAX ? U32_MAX : e.size);
    put32(h, 24, e.size >= U32_MAX ? U32_MAX : e.size);
    put16(h, 28, e.nameBytes.length);
    put16(h, 30, extra);
    put32(h, 42, e.offset >= U32_MAX ? U32_MAX : e.offset);
    h.set(e.nameBytes, CENTRAL_HEADER_BYTES);
    if (extra) {
      const at = CENTRAL_HEADER_BYTES + e.nameBytes.length;
      put16(h, at, 0x0001);
      put16(h, at + 2, 8 * fields.length);
      fields.forEach((v, i) => put64(h, at + 4 + 8 * i, v));
    }
    parts.push(h);
  }
  const cdSize = parts.reduce((a, p) => a + p.length, 0);
  const eocd64At = cdOffset + cdSize;
  const tail = new Uint8Array(56 + 20 + 22);
  put32(tail, 0, SIG_EOCD64);
  put64(tail, 4, 44);
  put16(tail, 12, 0x031e);
  put16(tail, 14, 45);
  put64(tail, 24, entries.length);
  put64(tail, 32, entries.length);
  put64(tail, 40, cdSize);
  put64(tail, 48, cdOffset);
  put32(tail, 56, SIG_LOCATOR64);
  put64(tail, 64, eocd64At);
  put32(tail, 72, 1);
  put32(tail, 76, SIG_EOCD);
  put16(tail, 84, Math.min(entries.length, 0xffff));
  put16(tail, 86, Math.min(entries.length, 0xffff));
  put32(tail, 88, Math.min(cdSize, U32_MAX));
  put32(tail, 92, Math.min(cdOffset, U32_MAX));
  parts.push(tail);
  const out = new Uint8Array(cdSize + tail.length);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
