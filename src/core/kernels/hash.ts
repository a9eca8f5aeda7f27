/**
 * The 128-bit content hash over raw bytes of any dtype (assembly/hash.ts), streaming.
 */
import { type KernelMemory, TAIL_OFFSET } from './memory.ts';
import { UnitFeeder } from './feed.ts';

export interface ContentHasher {
  update(chunk: Uint8Array): void;
  digest(): string;
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

export function contentHasher(mem: KernelMemory): ContentHasher {
  const state = new Uint8Array(64);
  const ST = mem.STATE;
  mem.x.hash_init(ST);
  state.set(mem.u8.subarray(ST, ST + 64));
  const upd = mem.x.hash_update;
  const fin = mem.x.hash_final;
  const piece = mem.pieceElems(1, 64);
  const IN = mem.SCRATCH;
  mem.reach(IN + piece);
  const feeder = new UnitFeeder(1, [IN], piece, 64, () => mem.u8, (n) => upd(ST, IN, n));
  let total = 0;
  return {
    update: (chunk) => {
      total += chunk.length;
      mem.u8.set(state, ST);
      feeder.update([chunk]);
      state.set(mem.u8.subarray(ST, ST + 64));
    },
    digest: () => {
      mem.u8.set(state, ST);
      const tail = feeder.pending;
      const T = ST + TAIL_OFFSET;
      mem.u8.set(tail, T);
      const OUT = T + 128;
      fin(ST, T, tail.length, total % 0x100000000, Math.floor(total / 0x100000000), OUT);
      return toHex(mem.u8.subarray(OUT, OUT + 16));
    },
  };
}

export function contentHash(mem: KernelMemory, bytes: Uint8Array): string {
  const h = contentHasher(mem, );
  h.update(bytes);
  return h.digest();
}
