/**
 * Node-only file access for the runtime-neutral byte layer: a RandomAccessSource over a file
 * (fs/promises FileHandle), and a ByteSink that writes a file atomically (a temporary file in the
 * same directory, renamed over the target on close, removed on abort), so readers of the target
 * never see a half-written file.
 */
import { open, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type ByteReader, type ByteSink, type RandomAccessSource } from '../../core/io.ts';
import { ArgumentError, TruncatedError } from '../../core/errors.ts';
import { readHandle } from '../../store/file-handle.ts';
import { faultPoint } from '../faults.ts';

export interface FileSource extends RandomAccessSource {
  close(): Promise<void>;
}

/** Open a file for random-access reads. `read` returns a fresh array each call. */
export async function fileSource(path: string, name = path): Promise<FileSource> {
  const handle = await readHandle(await open(path, 'r'));
  let closed = false;
  return {
    name,
    size: handle.size,
    async read(offset, length) {
      if (closed) throw new ArgumentError(`${name}: read after close`);
      // past the end there is nothing; a file that shrank under us gives what it has
      return handle.read(offset, Math.max(0, Math.min(length, handle.size - offset)));
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** Default size of the buffer a fileReader reuses for reads (see fileReader). */
export const FILE_READER_BUFFER_BYTES = 1 << 20;

/**
 * A sequential ByteReader over a file (what format readers take). Reads of up to `bufferBytes` go
 * into one reused buffer, as the ByteReader contract allows (a result is valid until the next
 * call), so streaming a file allocates nothing per chunk and memory stays flat however big the
 * file is; `readUpTo` returns at most `bufferBytes`, and larger `readExactly` calls get a fresh array.
 */
export async function fileReader(path: string, name = path, opts: { bufferBytes?: number } = {}): Promise<ByteReader> {
  const bufferBytes = opts.bufferBytes ?? FILE_READER_BUFFER_BYTES;
  if (!Number.isSafeInteger(bufferBytes) || bufferBytes <= 0) throw new ArgumentError(`bufferBytes must be a positive integer, got ${bufferBytes}`);
  const fh = await open(path, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (e) {
    await fh.close();
    throw e;
  }
  let scratch: Uint8Array | undefined;
  let pos = 0;
  let closed = false;

  async function fill(into: Uint8Array): Promise<number> {
    if (closed) throw new ArgumentError(`${name}: read after close`);
    let got = 0;
    while (got < into.length) {
      const { bytesRead } = await fh.read(into, got, into.length - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  }
  const target = (n: number) => (n <= bufferBytes ? (scratch ??= new Uint8Array(bufferBytes)).subarray(0, n) : new Uint8Array(n));

  return {
    name,
    size,
    get position() { return pos; },
    async readExactly(n) {
      const out = target(n);
      const got = await fill(out);
      if (got < n) throw new TruncatedError(name, n, got, pos);
      pos += n;
      return out;
    },
    async readUpTo(n) {
      const want = Math.max(0, Math.min(n, bufferBytes, size - pos));
      if (want === 0) return new Uint8Array(0);
      const out = target(want);
      const got = await fill(out);
      pos += got;
      return out.subarray(0, got);
    },
    async skip(n) {
      if (pos + n > size) throw new TruncatedError(name, n, Math.max(0, size - pos), pos);
      pos += n;
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

export interface AtomicFileSink extends ByteSink {
  /** The target path. */
  readonly path: string;
  /** The temporary file being written (removed or renamed by close/abort). */
  readonly tempPath: string;
  /** Make the file appear at `path` (flushed to disk first, unless made with `fsync: false`). */
  close(): Promise<void>;
  /** Drop everything written; `path` is left as it was before. Safe to call after a failed write or twice. */
  abort(): Promise<void>;
}

/**
 * Write `path` atomically: bytes go to a temporary file beside it (same directory, hence same file
 * system, so the rename is atomic) and `close()` renames it into place. `abort()` removes it.
 * With `fsync: false` the old file is unlinked just before the rename (see close).
 */
export async function atomicFileSink(path: string, opts: { mode?: number; fsync?: boolean } = {}): Promise<AtomicFileSink> {
  // (imported here: node:crypto takes ~4 ms to load, and textconv, which imports this file, writes nothing)
  const { randomBytes } = await import('node:crypto');
  const tempPath = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh: FileHandle = await open(tempPath, 'wx', opts.mode ?? 0o644);
  let state: 'open' | 'closed' | 'aborted' = 'open';
  return {
    path,
    tempPath,
    async write(bytes) {
      if (state !== 'open') throw new ArgumentError(`${path}: write after ${state === 'closed' ? 'close' : 'abort'}`);
      // in place, not through libuv's thread pool: a write into the page cache is short, and a
      // checkout of many files sat idle waiting on the pool's round trip for each 1 MiB piece
      let off = 0;
      while (off < bytes.length) off += writeSync(fh.fd, bytes, off, bytes.length - off);
      faultPoint('file-write');
    },
    async close() {
      if (state !== 'open') throw new ArgumentError(`${path}: close after ${state === 'closed' ? 'close' : 'abort'}`);
      try {
        if (opts.fsync !== false) await fh.sync();
        await fh.close();
        // Without fsync (work-tree files, as git writes them), the old file is unlinked first: a
        // rename that replaces a file makes ext4 allocate all of the new file's delayed blocks
        // there and then (auto_da_alloc), 76 ms for a freshly written 277 MB file, against 0.4 ms
        // for unlink and rename. Only the path's absence for that moment is given up: a failed
        // write still leaves the old file as it was.
        if (opts.fsync === false) await unlink(path).catch(() => {});
        await rename(tempPath, path);
        state = 'closed';
      } catch (e) {
        state = 'aborted';
        await fh.close().catch(() => {});
        await rm(tempPath, { force: true });
        throw e;
      }
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      await fh.close().catch(() => {});
      await rm(tempPath, { force: true });
    },
  };
}

/** Run `fill` against an atomic sink for `path`: committed if it returns, aborted (no file left) if it throws. */
export async function writeFileAtomically(path: string, fill: (sink: ByteSink) => Promise<void>, opts?: { mode?: number; fsync?: boolean }): Promise<void> {
  const sink = await atomicFileSink(path, opts);
  try {
    await fill(sink);
  } catch (e) {
    await sink.abort();
    throw e;
  }
  await sink.close();
}

/**
 * A file's bytes as a stream of chunks, read one chunk ahead (the next read runs in libuv's thread
 * pool while the caller works on the current chunk) into three rotating buffers (no allocation per
 * chunk). A chunk stays valid until the one after next is requested, which is what
 * readerFromChunks needs: the read ahead fills the buffer of the chunk before the current one.
 */
export async function* fileChunks(path: string, chunkBytes = 1 << 20): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r');
  const bufs = [new Uint8Array(chunkBytes), new Uint8Array(chunkBytes), new Uint8Array(chunkBytes)];
  let which = 0;
  const readInto = (buf: Uint8Array) => fh.read(buf, 0, chunkBytes, null).then(({ bytesRead }) => buf.subarray(0, bytesRead));
  let ahead: Promise<Uint8Array> | null = readInto(bufs[which]);
  try {
    for (;;) {
      const chunk = await ahead!;
      ahead = null;
      if (chunk.length === 0) return;
      which = (which + 1) % 3;
      ahead = readInto(bufs[which]);
      yield chunk;
    }
  } finally {
    // a read still running must finish before the handle closes
    await ahead?.catch(() => {});
    await fh.close();
  }
}
