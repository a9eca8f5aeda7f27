/**
 * The read-once rule of StreamedTensor (types.ts), shared by every format: a tensor's bytes are
 * read by one call of `chunks()` or `bytes()`, before the next tensor is requested.
 */
import { ArgumentError } from '../core/errors.ts';
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
      const out = new Uint8Array(n);
      while (consumed < n) {
        const at = consumed;
        out.set(await next(n - consumed), at);
      }
      return out;
    },
  };
  return { tensor, consumed: () => consumed, retire: () => once.retire() };
}
