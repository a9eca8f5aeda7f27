/**
 * Locality-sensitive hashing (assembly/lsh.ts): count-sketch signatures of a tensor (every dtype
 * converted to f32), the L2 distance they estimate, and E2LSH bucket ids.
 */
import { ArgumentError } from '../errors.ts';
import type { DType } from '../dtypes.ts';
import { type KernelMemory, SMALL_BYTES } from './memory.ts';
import { F32_CONV, checkDType } from './convert.ts';
import { numericStream } from './feed.ts';

/** LSH count-sketch buckets must be a power of two <= this (the sign pool length). */
export const MAX_LSH_BUCKETS = 4096;
export const DEFAULT_LSH_SIZE = 16;
export const DEFAULT_LSH_BUCKETS = 256;

export interface LshAccumulator {
  update(chunk: Uint8Array): void;
  signature(): number[];
}
export interface LshOptions {
  size?: number;
  seed?: number;
  buckets?: number;
}

/** Estimated L2 distance from two LSH signatures of the same size, seed and bucket count. */
export function estimateL2(sigA: readonly number[], sigB: readonly number[]): number {
  if (sigA.length !== sigB.length || sigA.length === 0) {
    throw new ArgumentError(`estimateL2: signatures must have the same nonzero length (got ${sigA.length} and ${sigB.length})`);
  }
  let s = 0;
  for (let i = 0; i < sigA.length; i++) {
    const d = sigA[i] - sigB[i];
    s += d * d;
  }
  return Math.sqrt(s / sigA.length);
}

function loadPool(mem: KernelMemory, seed: number): void {
  if (mem.poolSeed !== seed) {
    mem.x.lsh_pool_init(mem.POOL, seed);
    mem.poolSeed = seed;
  }
}

export function lshAccumulator(mem: KernelMemory, dtype: DType, opts: LshOptions = {}): LshAccumulator {
  const size = opts.size ?? DEFAULT_LSH_SIZE;
  const seed = opts.seed ?? 0;
  const D = opts.buckets ?? DEFAULT_LSH_BUCKETS;
  if (!(Number.isInteger(size) && size >= 1 && size <= 4096)) throw new ArgumentError(`lsh: size must be an integer in [1, 4096] (got ${size})`);
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) throw new ArgumentError(`lsh: seed must be a u32 (got ${seed})`);
  if (!(Number.isInteger(D) && D >= 1 && D <= MAX_LSH_BUCKETS && (D & (D - 1)) === 0)) {
    throw new ArgumentError(`lsh: buckets must be a power of two in [1, ${MAX_LSH_BUCKETS}] (got ${D})`);
  }
  const d = checkDType(dtype, F32_CONV, 'lsh');
  const conv = F32_CONV[d]!;
  const upd = mem.x.lsh_update;
  const s = numericStream(mem, d, 'f32', conv, 1, 64 + D * 8, () => {}, (st, p, n) => {
    loadPool(mem, seed);
    upd(st, mem.POOL, p[0], n, D, seed);
  });
  return {
    update: (chunk) => s.update([chunk]),
    signature: () => {
      s.finish('lsh');
      mem.x.lsh_project(mem.STATE, D, size, seed, mem.SMALL);
      return Array.from(mem.f32.subarray(mem.SMALL >> 2, (mem.SMALL >> 2) + size));
    },
  };
}

export function lshSignature(mem: KernelMemory, dtype: DType, bytes: Uint8Array, opts: LshOptions = {}): number[] {
  const a = lshAccumulator(mem, dtype, opts);
  a.update(bytes);
  return a.signature();
}


/** E2LSH bucket ids floor((p_k + b_k) / width), b_k uniform in [0, width) from `seed`. */
export function lshBuckets(mem: KernelMemory, sig: readonly number[], width: number, seed = 0): number[] {
  if (!(width > 0 && Number.isFinite(width))) throw new ArgumentError(`lshBuckets: width must be a positive number (got ${width})`);
  if (sig.length > SMALL_BYTES / 8) throw new ArgumentError('lshBuckets: signature too long');
  mem.x.lsh_offsets(seed >>> 0, sig.length, mem.SMALL);
  const u = mem.f64.subarray(mem.SMALL >> 3, (mem.SMALL >> 3) + sig.length);
  return sig.map((p, k) => Math.floor((p + u[k] * width) / width));
}
