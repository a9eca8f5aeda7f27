/**
 * The read-once rule of StreamedTensor (types.ts), shared by every format: a tensor's bytes are
 * read by one call of `chunks()` or `bytes()`, before the next tensor is requested.
 */
import { ArgumentError, ThetaError, quoteName } from '../core/errors.ts';
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
