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
 *
 * Here: reading .npy and .npz, writing them, the format objects. The header and layout are in
 * numpy/header.ts, the skeleton (and rebuild) in numpy/skeleton.ts.
 */
import { checkChunkBytes, readOnce, DEFAULT_CHUNK_BYTES } from './read-once.ts';
import { DTYPES, dtypeSize, elementCount } from '../core/dtypes.ts';
import { ArgumentError, FormatError, TruncatedError, truncatedTensor } from '../core/errors.ts';
import { concat, readerFromChunks, type ByteReader, type ByteSink } from '../core/io.ts';
import type { CheckpointFormat, CheckpointReader, OpenOptions, StreamedTensor, TensorToWrite } from './types.ts';
import { FixedDeflater, ZipReader, crc32, inflateChunks, isZip, writeZip, zipNamesInHead, type ZipEntry } from './zip.ts';
import { ReproductionCheck, ZlibDeflater } from './zlib-deflate.ts';
import { loadFflate, loadPako } from './deflate-libs.ts';

import { NPY_FORMAT_ID, NPY_MAGIC, byteSwap, npyError, readNpyHeader, encodeNpyHeader, reorder, type NpyHeader } from './numpy/header.ts';
import { SkeletonBuilder, rebuildFrom, type Part } from './numpy/skeleton.ts';

export { NPY_FORMAT_ID, NPY_MAGIC, MAX_NPY_HEADER_BYTES, MAX_NPY_DIMS, NPY_ALIGN, readNpyHeader, encodeNpyHeader, byteSwap, reorder, type NpyHeader } from './numpy/header.ts';
export const NPZ_FORMAT_ID = 'npz';

/**
 * zlib levels tried when checking whether zlib's deflate (pako) reproduces a deflated member:
 * 6 is zlib's default, what `numpy.savez_compressed` uses; 9 and 1 are what `compresslevel` is
 * usually set to.
 */
export const ZLIB_LEVELS: readonly number[] = [6, 9, 1];

/** Levels tried when checking whether fflate reproduces a deflated member (6 is what our writer uses). */
export const DEFLATE_LEVELS: readonly number[] = [6, 9, 1, 4];

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
      if (e instanceof TruncatedError) throw truncatedTensor(file, n, e.data.got as number, h.prefixLength + consumed, name);
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
          if (e instanceof TruncatedError) throw truncatedTensor(file, left, e.data.got as number, h.prefixLength + consumed, name);
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
    if (data < header.byteLength) throw truncatedTensor(file, header.byteLength, Math.max(0, data), header.prefixLength, name);
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
      await Promise.all([loadPako(), loadFflate()]);
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

