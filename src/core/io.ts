/**
 * Byte input, runtime-neutral. Checkpoints arrive either as random-access sources (a file, a Blob,
 * bytes in memory) or as a one-way stream (git's filter pipe). Readers of formats consume a
 * `ByteReader`, which is sequential: read exactly n bytes, read up to n, skip. That is all a
 * streaming format reader needs, and it works for both kinds of input.
 */
import { TruncatedError } from './errors.ts';

export interface ByteReader {
  /** Name used in error messages (a path, or '<stdin>'). */
  readonly name: string;
  /** Total size if known up front (files, blobs), else undefined (pipes). */
  readonly size: number | undefined;
  /** Bytes consumed so far. */
  readonly position: number;
  /** Exactly n bytes, or TruncatedError. The returned view may be reused only until the next call. */
  readExactly(n: number): Promise<Uint8Array>;
  /** Up to n bytes; an empty array means end of input. */
  readUpTo(n: number): Promise<Uint8Array>;
  /** Skip n bytes, or TruncatedError. */
  skip(n: number): Promise<void>;
  /** Release the underlying resource. */
  close(): Promise<void>;
  /**
   * Optional pushback: give back bytes just read (the most recent ones, in order), so the next
   * reads return them first and `position` moves back by their length. A format that parses its
   * header in read-ahead blocks (GGUF) uses it when offered, so the bytes past the header are read
   * again, and counted, where they belong.
   */
  unread?(bytes: Uint8Array): void;
}

/**
 * Hand `reader` to `open` (a format's open, which parses a header) and give back what it opens; when
 * opening fails, close the reader before passing the error on. A reader that is never returned is
 * never closed by anyone else: in Node its file handle would be closed by the garbage collector,
 * which prints a warning on stderr after the error line.
 */
export async function openOrClose<T>(reader: ByteReader, open: (reader: ByteReader) => Promise<T>): Promise<T> {
  try {
    return await open(reader);
  } catch (e) {
    await reader.close().catch(() => {});
    throw e;
  }
}

/** Random access, as files and Blobs give it. `read` may return fewer bytes only at the end. */
export interface RandomAccessSource {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** A sequential reader over a random-access source. */
export function readerFromSource(src: RandomAccessSource): ByteReader {
  let pos = 0;
  return {
    name: src.name,
    size: src.size,
    get position() { return pos; },
    async readExactly(n) {
      if (n === 0) return new Uint8Array(0);
      const want = Math.min(n, Math.max(0, src.size - pos));
      const got = want > 0 ? await src.read(pos, want) : new Uint8Array(0);
      if (got.length < n) throw new TruncatedError(src.name, n, got.length, pos);
      pos += n;
      return got;
    },
    async readUpTo(n) {
      const want = Math.min(n, Math.max(0, src.size - pos));
      if (want <= 0) return new Uint8Array(0);
      const got = await src.read(pos, want);
      pos += got.length;
      return got;
    },
    async skip(n) {
      if (pos + n > src.size) throw new TruncatedError(src.name, n, Math.max(0, src.size - pos), pos);
      pos += n;
    },
    async close() { await src.close?.(); },
  };
}

/** Random access over bytes in memory. */
export function memorySource(bytes: Uint8Array, name = '<memory>'): RandomAccessSource {
  return {
    name,
    size: bytes.length,
    async read(offset, length) { return bytes.subarray(offset, Math.min(bytes.length, offset + length)); },
  };
}

export function readerFromBytes(bytes: Uint8Array, name = '<memory>'): ByteReader {
  return readerFromSource(memorySource(bytes, name));
}

/** Random access over a Blob/File (browsers, Deno). */
export function blobSource(blob: Blob, name = (blob as File).name ?? '<blob>'): RandomAccessSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/**
 * A sequential reader over any async iterable of byte chunks (a web ReadableStream, a Node
 * Readable, git's pipe). It buffers at most one incoming chunk plus the bytes asked for.
 */
export function readerFromChunks(chunks: AsyncIterable<Uint8Array>, name = '<stream>', size?: number): ByteReader {
  const it = chunks[Symbol.asyncIterator]();
  let pending: Uint8Array = new Uint8Array(0); // unread tail of the last chunk
  let pos = 0;
  let done = false;

  async function fill(): Promise<boolean> {
    if (done) return false;
    for (;;) {
      const r = await it.next();
      if (r.done) { done = true; return false; }
      if (r.value.length) { pending = r.value; return true; }
    }
  }

  async function readUpTo(n: number): Promise<Uint8Array> {
    if (n <= 0) return new Uint8Array(0);
    if (!pending.length && !(await fill())) return new Uint8Array(0);
    const take = Math.min(n, pending.length);
    const out = pending.subarray(0, take);
    pending = pending.subarray(take);
    pos += take;
    return out;
  }

  return {
    name,
    size,
    get position() { return pos; },
    async readExactly(n) {
      if (n <= pending.length) {
        const out = pending.subarray(0, n);
        pending = pending.subarray(n);
        pos += n;
        return out;
      }
      const start = pos;
      // n is often a size read from the file: never allocate more than the input can still hold
      if (size !== undefined && start + n > size) throw new TruncatedError(name, n, Math.max(0, size - start), start);
      if (n > UNTRUSTED_ALLOCATION_BYTES) {
        const parts: Uint8Array[] = [];
        let got = 0;
        while (got < n) {
          const part = await readUpTo(Math.min(n - got, 1 << 24));
          if (!part.length) throw new TruncatedError(name, n, got, start);
          parts.push(part.slice());
          got += part.length;
        }
        return concat(parts, n);
      }
      const out = new Uint8Array(n);
      let off = 0;
      while (off < n) {
        const part = await readUpTo(n - off);
        if (!part.length) throw new TruncatedError(name, n, off, start);
        out.set(part, off);
        off += part.length;
      }
      return out;
    },
    readUpTo,
    async skip(n) {
      let left = n;
      const start = pos;
      while (left > 0) {
        const part = await readUpTo(Math.min(left, 1 << 20));
        if (!part.length) throw new TruncatedError(name, n, n - left, start);
        left -= part.length;
      }
    },
    async close() {
      done = true;
      await it.return?.();
    },
  };
}

/**
 * A sequential reader that can give bytes back: `unread` puts bytes in front of what comes next
 * (finding a zip data descriptor of unknown position), `peek` looks ahead without consuming.
 * `pos` counts the bytes consumed from the start.
 */
export class PushbackReader {
  private pending: Uint8Array = new Uint8Array(0);
  pos = 0;
  constructor(protected readonly reader: ByteReader) {}

  /** 1..n bytes, or none at the end of the input; a view, valid until the next read. */
  async readUpTo(n: number): Promise<Uint8Array> {
    if (n <= 0) return new Uint8Array(0);
    if (this.pending.length) {
      const take = Math.min(n, this.pending.length);
      const out = this.pending.subarray(0, take);
      this.pending = this.pending.subarray(take);
      this.pos += take;
      return out;
    }
    const got = await this.reader.readUpTo(n);
    this.pos += got.length;
    return got;
  }

  unread(b: Uint8Array): void {
    if (!b.length) return;
    const merged = new Uint8Array(b.length + this.pending.length);
    merged.set(b);
    merged.set(this.pending, b.length);
    this.pending = merged;
    this.pos -= b.length;
  }

  /** Up to n bytes without consuming them. */
  async peek(n: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let have = 0;
    while (have < n) {
      const p = await this.readUpTo(n - have);
      if (!p.length) break;
      parts.push(p.slice());
      have += p.length;
    }
    const out = concat(parts, have);
    this.unread(out);
    return out;
  }
}

/** Above this, a sequential reader of unknown size gathers what arrives before allocating a claimed length. */
export const UNTRUSTED_ALLOCATION_BYTES = 64 << 20;

/** Collect an async iterable of chunks into one array (for small things only: headers, metadata). */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  // copy: a producer may reuse its buffer for the next chunk
  for await (const c of chunks) { parts.push(c.slice()); n += c.length; }
  return concat(parts, n);
}

export function concat(parts: Uint8Array[], total: number = parts.reduce((a, p) => a + p.length, 0)): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

/** Where bytes go: a file, git's pipe, memory. Writers of formats take one of these. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export function memorySink(): ByteSink & { bytes(): Uint8Array } {
  const parts: Uint8Array[] = [];
  return {
    async write(b) { parts.push(b.slice()); },
    async close() {},
    bytes() { return concat(parts); },
  };
}

/**
 * Look at the first `n` bytes of a one-way stream without losing them: returns those bytes (fewer
 * if the stream is shorter) and a stream that yields everything from the start again.
 */
export async function peekChunks(chunks: AsyncIterable<Uint8Array>, n: number): Promise<{ head: Uint8Array; stream: AsyncIterable<Uint8Array> }> {
  const it = chunks[Symbol.asyncIterator]();
  const first: Uint8Array[] = [];
  let have = 0;
  let ended = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) { ended = true; break; }
    // copy: the producer may reuse its buffer for the next chunk
    first.push(r.value.slice());
    have += r.value.length;
  }
  const head = concat(first, have);
  const stream = {
    async *[Symbol.asyncIterator]() {
      if (head.length) yield head;
      if (ended) return;
      try {
        for (;;) {
          const r = await it.next();
          if (r.done) { ended = true; return; }
          yield r.value;
        }
      } finally {
        // a reader that stops early (an error, a close) closes the source too (a file's handle)
        if (!ended) await it.return?.();
      }
    },
  };
  return { head: head.subarray(0, Math.min(n, head.length)), stream };
}
