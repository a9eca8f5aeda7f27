/**
 * A small streaming zip reader and writer (PKWARE APPNOTE 6.3: local file headers, data
 * descriptors, zip64, stored and deflated members, CRC-32), enough for `.npz` and for PyTorch's
 * zip checkpoints. Runtime-neutral; deflate is fflate's.
 *
 * Reading is sequential over a ByteReader, so it works over git's one-way pipe: local entries are
 * handed out one at a time in file order (`next()`), each member's bytes stream (`raw()` for the
 * bytes as stored, `data()` for the decompressed bytes with size and CRC-32 checked), and once the
 * central directory is reached the rest of the file (central directory, zip64 records, end record)
 * is read whole, bounded by MAX_TRAILER_BYTES, and checked against the entries seen. Nothing is
 * ever extracted to disk: names are data, but a name that would escape a directory (`..`, an
 * absolute path, a drive letter) is still rejected, because callers turn names into tensor names
 * and other tools may extract the same file.
 *
 * Limits (all FormatError): a member's declared uncompressed size may not exceed what deflate can
 * produce from its compressed size (MAX_DEFLATE_RATIO), inflation stops at the declared size (a zip
 * bomb ends in an error after at most one push of output, never in unbounded memory), at most
 * MAX_ZIP_ENTRIES entries, and a member whose sizes are only in a trailing data descriptor (a zip
 * written to a pipe) is refused: without the central directory its end cannot be found safely.
 *
 * Why over 500 lines: ZipReader and checkCentralDirectory read and cross-check the same records
 * (local headers against the central directory and zip64 records) and belong together; the writer
 * beside them is ~90 lines. The deflate streams are in fflate-deflate.ts.
 */
import { ArgumentError, TruncatedError } from '../core/errors.ts';
import { concat, type ByteReader, type ByteSink } from '../core/io.ts';
import { INFLATE_PUSH_BYTES, deflateChunks, inflateChunks } from './fflate-deflate.ts';
import { zipError } from './zip-error.ts';

export { INFLATE_PUSH_BYTES, DEFLATE_PUSH_BYTES, inflateChunks, FixedDeflater, deflateChunks, DeflateVerifier } from './fflate-deflate.ts';

export const ZIP_LOCAL_SIGNATURE = 0x04034b50;
export const ZIP_CENTRAL_SIGNATURE = 0x02014b50;
export const ZIP_DESCRIPTOR_SIGNATURE = 0x08074b50;
export const ZIP_EOCD_SIGNATURE = 0x06054b50;
export const ZIP64_EOCD_SIGNATURE = 0x06064b50;
export const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;

/**
 * Most entries we accept. Every entry costs a small record (kept to check the central directory);
 * real `.npz` and `.pt` files have tens to thousands of entries, so a million is far beyond any
 * real file while bounding what a hostile entry stream can make us keep.
 */
export const MAX_ZIP_ENTRIES = 1_000_000;

/**
 * Largest central directory + end records we read. One central record is 46 bytes plus name and
 * extra fields, so 100 MB covers a million entries with long names; anything larger is corrupt.
 */
export const MAX_TRAILER_BYTES = 100_000_000;

/**
 * Deflate cannot expand data by more than 1032:1 (a 258-byte match coded in about 2 bits; zlib's
 * technical notes give this bound). A member declaring a larger uncompressed size than
 * compressed × 1032 (+ a little for tiny members) is lying, and we refuse it before inflating.
 */
export const MAX_DEFLATE_RATIO = 1032;

/** Default piece size for streaming a member. */
export const ZIP_CHUNK_BYTES = 1 << 20;

const U32 = 0xffffffff;
const U16 = 0xffff;

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table driven

export { crc32 } from '../core/crc32.ts';
import { crc32 } from '../core/crc32.ts';

// ---------------------------------------------------------------------------------------------
// Names

/**
 * Reject names that would escape the directory they are extracted into: empty, NUL, absolute
 * (`/x`, `\x`, `C:`), or with a `..` segment (either separator).
 */
export function checkZipEntryName(name: string, file = '<zip>'): void {
  const bad = (why: string) => zipError(file, `unsafe entry name (${why})`, name, { reason: 'unsafe-path' });
  if (name === '') throw bad('empty');
  if (name.includes('\0')) throw bad('contains NUL');
  if (name.startsWith('/') || name.startsWith('\\')) throw bad('absolute path');
  if (/^[A-Za-z]:/.test(name)) throw bad('drive letter');
  if (name.split(/[\\/]/).some((s) => s === '..')) throw bad("'..' segment");
}

function decodeName(raw: Uint8Array, utf8Flag: boolean, file: string): string {
  let ascii = true;
  for (let i = 0; i < raw.length; i++) if (raw[i] >= 0x80) { ascii = false; break; }
  if (!ascii && !utf8Flag) {
    throw zipError(file, `entry name ${JSON.stringify(String.fromCharCode(...raw.subarray(0, 64)))} is not ASCII and not flagged UTF-8 (code page 437 names are not supported)`, undefined, { reason: 'bad-name' });
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw zipError(file, 'an entry name is flagged UTF-8 but is not valid UTF-8', undefined, { reason: 'bad-utf8' });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface ZipEntry {
  name: string;
  /** Offset of the local header from the start of the zip. */
  offset: number;
  /** The local header's exact bytes (signature through extra field). */
  header: Uint8Array;
  /** 0 stored, 8 deflated. */
  method: 0 | 8;
  flags: number;
  /** CRC-32 of the uncompressed data (from the local header). */
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  /** The local header carries a zip64 extra field. */
  zip64: boolean;
  /** Flag bit 3: a data descriptor follows the data (sizes are then also in the header, or we refuse the entry). */
  hasDataDescriptor: boolean;
}

export interface ZipReaderOptions {
  fileName?: string;
  maxEntries?: number;
}

export function u16(b: Uint8Array, at: number): number { return b[at] | (b[at + 1] << 8); }
export function u32(b: Uint8Array, at: number): number { return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0; }
function u64(b: Uint8Array, at: number, file: string, what: string): number {
  const lo = u32(b, at);
  const hi = u32(b, at + 4);
  const v = hi * 2 ** 32 + lo;
  if (!Number.isSafeInteger(v)) throw zipError(file, `${what} ${hi}·2^32+${lo} is beyond 2^53`, undefined, { reason: 'too-large' });
  return v;
}

interface Zip64Values { usize?: number; csize?: number; offset?: number }

/** Parse a zip64 extra field (id 1), taking only the values whose 32-bit field is 0xFFFFFFFF, in order. */
function parseZip64(extra: Uint8Array, want: { usize: boolean; csize: boolean; offset: boolean }, file: string, entry: string): { values: Zip64Values; present: boolean } {
  let at = 0;
  while (at + 4 <= extra.length) {
    const id = u16(extra, at);
    const len = u16(extra, at + 2);
    if (at + 4 + len > extra.length) throw zipError(file, `extra field ${id} runs past the end of the extra data`, entry);
    if (id === 1) {
      const values: Zip64Values = {};
      let p = at + 4;
      const take = (k: keyof Zip64Values) => {
        if (p + 8 > at + 4 + len) throw zipError(file, `zip64 extra field is too short for its ${k}`, entry);
        values[k] = u64(extra, p, file, `zip64 ${k}`);
        p += 8;
      };
      if (want.usize) take('usize');
      if (want.csize) take('csize');
      if (want.offset) take('offset');
      return { values, present: true };
    }
    at += 4 + len;
  }
  if (at !== extra.length) throw zipError(file, 'extra field data is malformed', entry);
  return { values: {}, present: false };
}

/**
 * A sequential zip reader. Call `next()` for each local entry; stream its bytes with `raw()` or
 * `data()` (at most once, before the next `next()`); bytes not read are skipped. When `next()`
 * returns undefined, `trailer()` holds the central directory and end records, already checked.
 */
export class ZipReader {
  readonly file: string;
  readonly entries: ZipEntry[] = [];
  private readonly reader: ByteReader;
  private readonly start: number;
  private readonly maxEntries: number;
  private current?: { entry: ZipEntry; consumed: number; claimed: boolean; descriptor?: Uint8Array; dataDone: boolean };
  private trailerBytes?: Uint8Array;
  private pendingSig?: Uint8Array;
  private finished = false;

  constructor(reader: ByteReader, opts: ZipReaderOptions = {}) {
    this.reader = reader;
    this.file = opts.fileName ?? reader.name;
    this.start = reader.position;
    this.maxEntries = opts.maxEntries ?? MAX_ZIP_ENTRIES;
  }

  /** Position relative to the start of the zip. */
  get position(): number { return this.reader.position - this.start; }

  private async readExactly(n: number, entry?: string): Promise<Uint8Array> {
    try {
      return await this.reader.readExactly(n);
    } catch (e) {
      if (e instanceof TruncatedError) {
        const t = new TruncatedError(this.file, n, e.data.got as number, this.position);
        if (entry !== undefined) { t.data.entry = entry; t.message = t.message.replace(`${this.file}: `, `${this.file}: zip entry ${JSON.stringify(entry)}: `); }
        throw t;
      }
      throw e;
    }
  }

  /** The next local entry, or undefined at the central directory (then `trailer()` is ready). */
  async next(): Promise<ZipEntry | undefined> {
    if (this.finished) return undefined;
    await this.finishCurrent();
    const sig = (await this.readExactly(4)).slice();
    const s = u32(sig, 0);
    if (s === ZIP_CENTRAL_SIGNATURE || s === ZIP_EOCD_SIGNATURE || s === ZIP64_EOCD_SIGNATURE) {
      this.pendingSig = sig;
      await this.readTrailer();
      this.finished = true;
      return undefined;
    }
    if (s !== ZIP_LOCAL_SIGNATURE) {
      throw zipError(this.file, `expected a local file header or the central directory at offset ${this.position - 4}, found signature 0x${s.toString(16).padStart(8, '0')}`, undefined, { reason: 'bad-signature' });
    }
    if (this.entries.length >= this.maxEntries) throw zipError(this.file, `more than ${this.maxEntries} entries`, undefined, { reason: 'too-many-entries' });
    const offset = this.position - 4;
    const fixed = await this.readExactly(26);
    const head = new Uint8Array(30);
    head.set(sig);
    head.set(fixed, 4);
    const flags = u16(head, 6);
    const method = u16(head, 8);
    let crc = u32(head, 14);
    let csize = u32(head, 18);
    let usize = u32(head, 22);
    const nameLen = u16(head, 26);
    const extraLen = u16(head, 28);
    const rest = (await this.readExactly(nameLen + extraLen)).slice();
    const header = concat([head, rest]);
    const name = decodeName(rest.subarray(0, nameLen), (flags & 0x800) !== 0, this.file);
    checkZipEntryName(name, this.file);
    if (this.entries.some((e) => e.name === name)) throw zipError(this.file, 'appears twice in the zip', name, { reason: 'duplicate' });
    if (flags & 1) throw zipError(this.file, 'is encrypted (not supported)', name, { reason: 'encrypted' });
    if (method !== 0 && method !== 8) throw zipError(this.file, `uses compression method ${method}; only stored (0) and deflated (8) are supported`, name, { reason: 'method' });
    const z64 = parseZip64(rest.subarray(nameLen), { usize: usize === U32, csize: csize === U32, offset: false }, this.file, name);
    if (z64.values.usize !== undefined) usize = z64.values.usize;
    if (z64.values.csize !== undefined) csize = z64.values.csize;
    if ((usize === U32 || csize === U32) && !z64.present) throw zipError(this.file, 'has 0xFFFFFFFF sizes but no zip64 extra field', name);
    const hasDataDescriptor = (flags & 8) !== 0;
    if (hasDataDescriptor && csize === 0 && usize === 0) {
      throw zipError(this.file, 'keeps its sizes only in a trailing data descriptor (a zip written to a pipe); this streaming reader needs them in the local header (re-save the file with numpy/torch to a regular file)', name, { reason: 'data-descriptor' });
    }
    if (method === 0 && csize !== usize) throw zipError(this.file, `is stored but its compressed size ${csize} differs from its size ${usize}`, name);
    if (method === 8 && usize > csize * MAX_DEFLATE_RATIO + 1024) {
      throw zipError(this.file, `declares ${usize} bytes from ${csize} compressed bytes, more than deflate can produce (${MAX_DEFLATE_RATIO}:1); the header lies`, name, { reason: 'zip-bomb' });
    }
    if (this.reader.size !== undefined && this.reader.position + csize > this.reader.size) {
      throw zipError(this.file, `its ${csize} compressed bytes run past the end of the file`, name, { reason: 'past-end' });
    }
    const entry: ZipEntry = { name, offset, header, method, flags, crc32: crc, compressedSize: csize, uncompressedSize: usize, zip64: z64.present, hasDataDescriptor };
    this.entries.push(entry);
    this.current = { entry, consumed: 0, claimed: false, dataDone: false };
    return entry;
  }

  private claim(what: string): NonNullable<ZipReader['current']> {
    const c = this.current;
    if (!c) throw new ArgumentError(`${this.file}: ${what} called with no current zip entry`);
    if (c.claimed) throw new ArgumentError(`${this.file}: zip entry '${c.entry.name}': its bytes were already read`);
    c.claimed = true;
    return c;
  }

  /** The member's bytes as stored (compressed for deflated members). */
  raw(chunkBytes = ZIP_CHUNK_BYTES): AsyncIterable<Uint8Array> {
    const c = this.claim('raw()');
    return this.rawOf(c, chunkBytes);
  }

  private async *rawOf(c: NonNullable<ZipReader['current']>, chunkBytes: number): AsyncGenerator<Uint8Array> {
    const e = c.entry;
    while (c.consumed < e.compressedSize) {
      const part = await this.reader.readUpTo(Math.min(chunkBytes, e.compressedSize - c.consumed));
      if (!part.length) throw this.truncatedIn(e.name, e.compressedSize - c.consumed);
      c.consumed += part.length;
      yield part;
    }
    await this.readDescriptor(c);
  }

  private truncatedIn(entry: string, wanted: number): TruncatedError {
    const t = new TruncatedError(this.file, wanted, 0, this.position);
    t.data.entry = entry;
    t.message = t.message.replace(`${this.file}: `, `${this.file}: zip entry ${JSON.stringify(entry)}: `);
    return t;
  }

  /** The member's uncompressed bytes; size and CRC-32 are checked when the member ends. */
  data(chunkBytes = ZIP_CHUNK_BYTES): AsyncIterable<Uint8Array> {
    const c = this.claim('data()');
    const e = c.entry;
    const self = this;
    return (async function* () {
      let crc = 0;
      let n = 0;
      const source = self.rawOf(c, e.method === 0 ? chunkBytes : INFLATE_PUSH_BYTES);
      const parts = e.method === 0 ? source : inflateChunks(source, { expectedSize: e.uncompressedSize, fileName: self.file, entry: e.name });
      for await (const part of parts) {
        crc = crc32(part, crc);
        n += part.length;
        yield part;
      }
      if (n !== e.uncompressedSize) throw zipError(self.file, `holds ${n} bytes but its header declares ${e.uncompressedSize}`, e.name, { reason: 'size' });
      const want = c.descriptor && c.descriptor.length ? u32(c.descriptor, c.descriptor.length === 12 || c.descriptor.length === 20 ? 0 : 4) : e.crc32;
      if (crc !== want) throw zipError(self.file, `CRC-32 mismatch (computed ${hex(crc)}, recorded ${hex(want)}); the file is corrupt`, e.name, { reason: 'crc' });
      c.dataDone = true;
    })();
  }

  /** The data descriptor's exact bytes after the current member ('' when there is none); valid after its bytes were read. */
  descriptor(): Uint8Array {
    return this.current?.descriptor?.slice() ?? new Uint8Array(0);
  }

  private async readDescriptor(c: NonNullable<ZipReader['current']>): Promise<void> {
    if (c.descriptor || !c.entry.hasDataDescriptor) { c.descriptor ??= new Uint8Array(0); return; }
    const e = c.entry;
    const first = (await this.readExactly(4, e.name)).slice();
    const signed = u32(first, 0) === ZIP_DESCRIPTOR_SIGNATURE;
    const sizes = e.zip64 ? 16 : 8;
    const rest = (await this.readExactly(signed ? 4 + sizes : sizes, e.name)).slice();
    const d = concat([first, rest]);
    const base = signed ? 4 : 0;
    const cs = e.zip64 ? u64(d, base + 4, this.file, 'descriptor size') : u32(d, base + 4);
    const us = e.zip64 ? u64(d, base + 4 + 8, this.file, 'descriptor size') : u32(d, base + 8);
    if (cs !== e.compressedSize || us !== e.uncompressedSize) {
      throw zipError(this.file, `data descriptor sizes (${cs}, ${us}) disagree with the local header (${e.compressedSize}, ${e.uncompressedSize})`, e.name);
    }
    c.descriptor = d;
  }

  private async finishCurrent(): Promise<void> {
    const c = this.current;
    if (!c) return;
    const left = c.entry.compressedSize - c.consumed;
    if (left > 0) {
      try {
        await this.reader.skip(left);
      } catch (err) {
        if (err instanceof TruncatedError) throw this.truncatedIn(c.entry.name, left);
        throw err;
      }
      c.consumed += left;
    }
    await this.readDescriptor(c);
    this.current = undefined;
  }

  /** Central directory + zip64 records + end record, exactly as in the file (after `next()` returned undefined). */
  trailer(): Uint8Array {
    if (!this.trailerBytes) throw new ArgumentError(`${this.file}: the zip trailer is available once next() has returned undefined`);
    return this.trailerBytes.slice();
  }

  private async readTrailer(): Promise<void> {
    const startAt = this.position - 4;
    const parts: Uint8Array[] = [this.pendingSig!];
    let n = 4;
    if (this.reader.size !== undefined) {
      const left = this.reader.size - this.reader.position;
      if (left + 4 > MAX_TRAILER_BYTES) throw zipError(this.file, `central directory of ${left + 4} bytes is over the ${MAX_TRAILER_BYTES}-byte limit`, undefined, { reason: 'too-large' });
    }
    for (;;) {
      const part = await this.reader.readUpTo(1 << 20);
      if (!part.length) break;
      n += part.length;
      if (n > MAX_TRAILER_BYTES) throw zipError(this.file, `central directory is over the ${MAX_TRAILER_BYTES}-byte limit`, undefined, { reason: 'too-large' });
      parts.push(part.slice());
    }
    const t = concat(parts, n);
    this.trailerBytes = t;
    checkCentralDirectory(t, startAt, this.entries, this.file);
  }
}

function hex(n: number): string { return '0x' + n.toString(16).padStart(8, '0'); }

/** Check the central directory and end records against the local entries (same names, sizes, CRCs, offsets; nothing extra). */
function checkCentralDirectory(t: Uint8Array, cdOffset: number, entries: ZipEntry[], file: string): void {
  const fail = (m: string, extra: Record<string, unknown> = {}) => zipError(file, `central directory: ${m}`, undefined, { reason: 'central-directory', ...extra });
  const need = (at: number, n: number) => { if (at + n > t.length) throw fail(`ends early (needed ${n} bytes at trailer offset ${at})`); };
  const byOffset = new Map(entries.map((e) => [e.offset, e]));
  const seen = new Set<number>();
  let at = 0;
  while (at + 4 <= t.length && u32(t, at) === ZIP_CENTRAL_SIGNATURE) {
    need(at, 46);
    const flags = u16(t, at + 8);
    const method = u16(t, at + 10);
    const crc = u32(t, at + 16);
    let csize = u32(t, at + 20);
    let usize = u32(t, at + 24);
    const nameLen = u16(t, at + 28);
    const extraLen = u16(t, at + 30);
    const commentLen = u16(t, at + 32);
    let offset = u32(t, at + 42);
    need(at, 46 + nameLen + extraLen + commentLen);
    const name = decodeName(t.subarray(at + 46, at + 46 + nameLen), (flags & 0x800) !== 0, file);
    const z = parseZip64(t.subarray(at + 46 + nameLen, at + 46 + nameLen + extraLen), { usize: usize === U32, csize: csize === U32, offset: offset === U32 }, file, name);
    usize = z.values.usize ?? usize;
    csize = z.values.csize ?? csize;
    offset = z.values.offset ?? offset;
    const e = byOffset.get(offset);
    if (!e) throw fail(`entry ${JSON.stringify(name)} points at offset ${offset}, where no local entry starts`, { entry: name });
    if (seen.has(offset)) throw fail(`two entries point at offset ${offset}`, { entry: name });
    seen.add(offset);
    if (e.name !== name) throw fail(`entry at offset ${offset} is named ${JSON.stringify(name)} here but ${JSON.stringify(e.name)} in its local header`, { entry: name });
    if (method !== e.method || csize !== e.compressedSize || usize !== e.uncompressedSize || (!e.hasDataDescriptor && crc !== e.crc32)) {
      throw fail(`entry ${JSON.stringify(name)} disagrees with its local header (method, sizes or CRC)`, { entry: name });
    }
    at += 46 + nameLen + extraLen + commentLen;
  }
  if (seen.size !== entries.length) {
    const missing = entries.find((e) => !seen.has(e.offset))!;
    throw fail(`local entry ${JSON.stringify(missing.name)} is not listed`, { entry: missing.name });
  }
  const cdSize = at;
  if (at + 4 <= t.length && u32(t, at) === ZIP64_EOCD_SIGNATURE) {
    need(at, 56);
    const recSize = u64(t, at + 4, file, 'zip64 end record size');
    need(at, 12 + recSize);
    at += 12 + recSize;
    need(at, 20);
    if (u32(t, at) !== ZIP64_LOCATOR_SIGNATURE) throw fail('zip64 end record is not followed by its locator');
    at += 20;
  }
  need(at, 22);
  if (u32(t, at) !== ZIP_EOCD_SIGNATURE) throw fail(`expected the end-of-central-directory record at trailer offset ${at}`);
  const total = u16(t, at + 10);
  const commentLen = u16(t, at + 20);
  if (at + 22 + commentLen !== t.length) throw fail(`${t.length - (at + 22 + commentLen)} unexpected bytes around the end record (its comment length is ${commentLen})`);
  if (total !== U16 && total !== entries.length) throw fail(`end record counts ${total} entries, the file has ${entries.length}`);
  const declaredSize = u32(t, at + 12);
  const declaredOffset = u32(t, at + 16);
  if (declaredSize !== U32 && declaredSize !== cdSize) throw fail(`end record says the central directory is ${declaredSize} bytes, it is ${cdSize}`);
  if (declaredOffset !== U32 && declaredOffset !== cdOffset) throw fail(`end record says the central directory starts at ${declaredOffset}, it starts at ${cdOffset}`);
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface ZipWriteEntry {
  name: string;
  /** The member's content. */
  data: Uint8Array;
  /** 0 stored (default), 8 deflated. */
  method?: 0 | 8;
  /** Deflate level for method 8 (default 6). */
  level?: number;
}

/** DOS date 1980-01-01 00:00, the same fixed timestamp numpy writes: output does not depend on the clock. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

function le(n: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) { out.push(n % 256); n = Math.floor(n / 256); }
  return out;
}

/**
 * Write a zip holding these entries in order, deterministically (fixed timestamp, no comments).
 * Zip64 fields are used only when a size or offset needs them. Each entry's content is in memory
 * (compressed in memory too), so memory is bounded by the largest entry.
 */
export async function writeZip(entries: Iterable<ZipWriteEntry> | AsyncIterable<ZipWriteEntry>, sink: ByteSink): Promise<void> {
  const central: Uint8Array[] = [];
  const names = new Set<string>();
  let offset = 0;
  let count = 0;
  const enc = new TextEncoder();
  for await (const e of entries) {
    checkZipEntryName(e.name, '<zip writer>');
    if (names.has(e.name)) throw new ArgumentError(`zip entry '${e.name}' is given twice`, { entry: e.name });
    names.add(e.name);
    const method = e.method ?? 0;
    const nameBytes = enc.encode(e.name);
    if (nameBytes.length > U16) throw new ArgumentError(`zip entry name is longer than 65535 bytes`, { entry: e.name });
    const crc = crc32(e.data);
    let body: Uint8Array;
    if (method === 8) {
      const parts: Uint8Array[] = [];
      for await (const p of deflateChunks([e.data], e.level ?? 6)) parts.push(p);
      body = concat(parts);
    } else {
      body = e.data;
    }
    const utf8 = nameBytes.some((b) => b >= 0x80) ? 0x800 : 0;
    const big = body.length >= U32 || e.data.length >= U32;
    const bigOffset = offset >= U32;
    const version = big || bigOffset ? 45 : 20;
    const localExtra = big ? [...le(1, 2), ...le(16, 2), ...le(e.data.length, 8), ...le(body.length, 8)] : [];
    const local = new Uint8Array([
      ...le(ZIP_LOCAL_SIGNATURE, 4), ...le(version, 2), ...le(utf8, 2), ...le(method, 2), ...le(DOS_TIME, 2), ...le(DOS_DATE, 2),
      ...le(crc, 4), ...le(big ? U32 : body.length, 4), ...le(big ? U32 : e.data.length, 4), ...le(nameBytes.length, 2), ...le(localExtra.length, 2),
      ...nameBytes, ...localExtra,
    ]);
    const cdZip: number[] = [];
    if (big) cdZip.push(...le(e.data.length, 8), ...le(body.length, 8));
    if (bigOffset) cdZip.push(...le(offset, 8));
    const cdExtra = cdZip.length ? [...le(1, 2), ...le(cdZip.length, 2), ...cdZip] : [];
    central.push(new Uint8Array([
      ...le(ZIP_CENTRAL_SIGNATURE, 4), ...le(version, 2), ...le(version, 2), ...le(utf8, 2), ...le(method, 2), ...le(DOS_TIME, 2), ...le(DOS_DATE, 2),
      ...le(crc, 4), ...le(big ? U32 : body.length, 4), ...le(big ? U32 : e.data.length, 4), ...le(nameBytes.length, 2), ...le(cdExtra.length, 2),
      ...le(0, 2), ...le(0, 2), ...le(0, 2), ...le(0, 4), ...le(bigOffset ? U32 : offset, 4), ...nameBytes, ...cdExtra,
    ]));
    await sink.write(local);
    if (body.length) await sink.write(body);
    offset += local.length + body.length;
    count++;
  }
  const cd = concat(central);
  await sink.write(cd);
  const cdOffset = offset;
  const needZip64 = count >= U16 || cdOffset >= U32 || cd.length >= U32;
  const tail: number[] = [];
  if (needZip64) {
    const z64At = cdOffset + cd.length;
    tail.push(...le(ZIP64_EOCD_SIGNATURE, 4), ...le(44, 8), ...le(45, 2), ...le(45, 2), ...le(0, 4), ...le(0, 4),
      ...le(count, 8), ...le(count, 8), ...le(cd.length, 8), ...le(cdOffset, 8));
    tail.push(...le(ZIP64_LOCATOR_SIGNATURE, 4), ...le(0, 4), ...le(z64At, 8), ...le(1, 4));
  }
  tail.push(...le(ZIP_EOCD_SIGNATURE, 4), ...le(0, 2), ...le(0, 2), ...le(Math.min(count, U16), 2), ...le(Math.min(count, U16), 2),
    ...le(Math.min(cd.length, U32), 4), ...le(Math.min(cdOffset, U32), 4), ...le(0, 2));
  await sink.write(new Uint8Array(tail));
}

/** True when the bytes start with a zip local file header (or are an empty zip's end record). */
export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && (u32(head, 0) === ZIP_LOCAL_SIGNATURE || u32(head, 0) === ZIP_EOCD_SIGNATURE);
}

/**
 * Names of the local entries visible in the first bytes of a zip (for sniffing): walks local
 * headers while their data fits in `head`, and returns the names seen (the last one may be the
 * entry whose data runs past the head).
 */
export function zipNamesInHead(head: Uint8Array): string[] {
  const names: string[] = [];
  let at = 0;
  while (at + 30 <= head.length && u32(head, at) === ZIP_LOCAL_SIGNATURE) {
    const nameLen = u16(head, at + 26);
    const extraLen = u16(head, at + 28);
    if (at + 30 + nameLen > head.length) break;
    names.push(new TextDecoder().decode(head.subarray(at + 30, at + 30 + nameLen)));
    let csize = u32(head, at + 18);
    if (csize === U32 && at + 30 + nameLen + extraLen <= head.length) {
      try {
        const z = parseZip64(head.subarray(at + 30 + nameLen, at + 30 + nameLen + extraLen), { usize: u32(head, at + 22) === U32, csize: true, offset: false }, '<head>', '');
        csize = z.values.csize ?? csize;
      } catch { break; }
    }
    at += 30 + nameLen + extraLen + csize + ((u16(head, at + 6) & 8) ? 16 : 0);
  }
  return names;
}
