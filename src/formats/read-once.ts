/**
 * The read-once rule of StreamedTensor (types.ts), shared by every format: a tensor's bytes are
 * read by one call of `chunks()` or `bytes()`, before the next tensor is requested.
 */
import { ArgumentError, ThetaError, quoteName } from '../core/errors.ts';
import type { DType } from '../core/dtypes.ts';
import type { StreamedTensor } from './types.ts';

/**
 * Default piece size of every format's `chunks()`: 4 MiB is big enough to amortise a call per piece
 * (and the kernels' per-call cost) and small enough that memory stays bounded on multi-GB tensors.
 */
export const DEFAULT_CHUNK_BYTES = 4 << 20;

export interface ReadOnce {
  /** At the start of `chunks()` / `bytes()`: throws when the bytes were already read or the next tensor was requested. */
  claim(what: 'chunks()' | 'bytes()'): void;
  /** The reader moved on to the next tensor. */
  retire(): void;
}

export function readOnce(file: string, tensor: string): ReadOnce {
  let claimed = false;
  let current = true;
  return {
    claim(what) {
      if (!current) throw new ArgumentError(`${file}: tensor '${tensor}': ${what} called after the next tensor was requested`);
      if (claimed) throw new ArgumentError(`${file}: tensor '${tensor}': its bytes were already read (call chunks() or bytes() once)`);
      claimed = true;
    },
    retire() {
      current = false;
    },
  };
}

/** A `chunks(chunkBytes)` argument must be a positive integer. */
export function checkChunkBytes(chunkBytes: number): void {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) throw new ArgumentError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
}

/**
 * A tensor whose bytes are (or are made) in memory: `data()` is called once, by `bytes()` or
 * `chunks()`, which hands them out in views of at most `chunkBytes`.
 */
export function memoryTensor(
  file: string, h: { name: string; dtype: DType; shape: number[]; byteLength: number }, data: () => Uint8Array, defaultChunkBytes = DEFAULT_CHUNK_BYTES,
): StreamedTensor {
  const once = readOnce(file, h.name);
  return {
    name: h.name, dtype: h.dtype, shape: h.shape, byteLength: h.byteLength,
    chunks(chunkBytes = defaultChunkBytes) {
      checkChunkBytes(chunkBytes);
      once.claim('chunks()');
      const all = data();
      return (async function* () {
        for (let at = 0; at < all.length; at += chunkBytes) yield all.subarray(at, Math.min(all.length, at + chunkBytes));
      })();
    },
    async bytes() {
      once.claim('bytes()');
      return data();
    },
  };
}

/** Where a streamed tensor's bytes come from: the next bytes of a sequential input. */
export interface TensorByteSource {
  /** 1..n bytes, or an empty array at the end of the input. */
  readUpTo(n: number): Promise<Uint8Array>;
  /** The error for an input that ended after `consumed` of the tensor's bytes (thrown by the tensor). */
  truncated(consumed: number): Error;
  /** Sees every piece read, in order (a running checksum). */
  onPart?(part: Uint8Array): void;
}

/**
 * A tensor whose `byteLength` bytes come next from a sequential input: `chunks()` yields them as
 * they are read, `bytes()` reads them all into one array, either one once (readOnce). The reader
 * calls `retire()` when the next tensor is requested and skips what `consumed()` did not read.
 */
export function streamingTensor<T extends { name: string; dtype: DType; shape: number[]; byteLength: number }>(
  file: string, fields: T, source: TensorByteSource, defaultChunkBytes = DEFAULT_CHUNK_BYTES,
): { tensor: T & StreamedTensor; consumed(): number; retire(): void } {
  const once = readOnce(file, fields.name);
  const n = fields.byteLength;
  let consumed = 0;
  const next = async (max: number): Promise<Uint8Array> => {
    const part = await source.readUpTo(max);
    if (!part.length) throw source.truncated(consumed);
    source.onPart?.(part);
    consumed += part.length;
    return part;
  };
  const tensor: T & StreamedTensor = {
    ...fields,
    chunks(chunkBytes = defaultChunkBytes) {
      checkChunkBytes(chunkBytes);
      once.claim('chunks()');
      return (async function* () {
        while (consumed < n) yield await next(Math.min(chunkBytes, n - consumed));
      })();
    },
    async bytes() {
      once.claim('bytes()');
      // the size is a claim read from the file: past TRUSTED_ALLOCATION_BYTES, only what the input delivers is allocated
      return readAllBytes(file, fields.name, n, (async function* () {
        while (consumed < n) yield await next(Math.min(1 << 24, n - consumed));
      })());
    },
  };
  return { tensor, consumed: () => consumed, retire: () => once.retire() };
}

/** Above this, `readAllBytes` gathers the pieces first instead of trusting the claimed size. */
export const TRUSTED_ALLOCATION_BYTES = 64 << 20;

/** A claimed size larger than this runtime can hold in one array. */
export class TooLargeError extends ThetaError {
  constructor(file: string, tensor: string, bytes: number) {
    super('E_TOO_LARGE', `${file}: tensor ${quoteName(tensor)} needs ${bytes} bytes in one piece, more than this runtime can allocate; read it in chunks (inspect and git add do)`, { file, tensor, bytes });
    this.name = 'TooLargeError';
  }
}

/** A new array of n bytes, or TooLargeError instead of the runtime's RangeError. */
export function allocBytes(n: number, file: string, tensor: string): Uint8Array {
  try {
    return new Uint8Array(n);
  } catch (e) {
    if (e instanceof RangeError) throw new TooLargeError(file, tensor, n);
    throw e;
  }
}

/**
 * All of a tensor's bytes from its pieces. A size read from a file is only a claim: a small one is
 * allocated up front, a large one only once the pieces that fill it have actually arrived (a
 * manifest that lies runs out of input first and fails with the format's truncation error).
 */
export async function readAllBytes(file: string, tensor: string, byteLength: number, pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  if (byteLength <= TRUSTED_ALLOCATION_BYTES) {
    const out = allocBytes(byteLength, file, tensor);
    let at = 0;
    for await (const p of pieces) { out.set(p, at); at += p.length; }
    return out;
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of pieces) { parts.push(p.slice()); n += p.length; }
  if (parts.length === 1 && parts[0].length === n) return parts[0];
  const out = allocBytes(n, file, tensor);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
