/**
 * CRC-32 (zip's) on the Wasm kernel (assembly/crc32.ts); short inputs stay in plain JS. kernels.ts
 * installs this as core/crc32.ts's implementation when the shared kernels are first created.
 */
import { crc32Js } from '../crc32.ts';
import type { KernelMemory } from './memory.ts';

/** CRC-32 (zip's) of `bytes`, continuing `crc`: crc32(b, crc32(a)) === crc32(a ++ b). */
export function crc32(mem: KernelMemory, bytes: Uint8Array, crc = 0): number {
  if (bytes.length < 4096) return crc32Js(bytes, crc);
  const k = mem.x.crc32_update;
  const piece = mem.scratchBytes;
  mem.reach(mem.SCRATCH + Math.min(piece, bytes.length));
  let c = crc >>> 0;
  for (let off = 0; off < bytes.length; off += piece) {
    const m = Math.min(piece, bytes.length - off);
    mem.u8.set(bytes.subarray(off, off + m), mem.SCRATCH);
    c = k(mem.SCRATCH, m, c) >>> 0;
  }
  return c;
}
