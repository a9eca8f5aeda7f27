/**
 * The read-once rule of StreamedTensor (types.ts), shared by every format: a tensor's bytes are
 * read by one call of `chunks()` or `bytes()`, before the next tensor is requested.
 */
import { ArgumentError } from '../core/errors.ts';
import type { DType } from '../core/dtypes.ts';
import type { StreamedTensor } from './types.ts';

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
  file: string, h: { name: string; dtype: DType; shape: number[]; byteLength: number }, data: () => Uint8Array, defaultChunkBytes: number,
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
