/**
 * The numeric kernels host: runs the AssemblyScript kernels (assembly/) over tensors of any size
 * by chunking them through a bounded Wasm memory. Web-standard APIs only.
 *
 * This file is the entry: the `Kernels` class (one method per capability, each a line that calls
 * the host file for it), the shared instance and every exported constant and type. The work is in
 * kernels/, one file per assembly/ file it drives:
 *
 *   kernels/memory.ts       one instance, its memory layout (STATE, POOL, SMALL, SCRATCH), views
 *   kernels/feed.ts         streaming byte chunks of any length in lane-aligned units
 *   kernels/convert.ts      assembly/convert.ts     dtype → f32/f64 paths, toF32, fromF32
 *   kernels/stats.ts        assembly/stats.ts       stats, compare, histogram (+ dot, cosine, ...)
 *   kernels/hash.ts         assembly/hash.ts        128-bit content hash
 *   kernels/lsh.ts          assembly/lsh.ts         LSH signatures, estimateL2, buckets
 *   kernels/elementwise.ts  assembly/elementwise.ts delta, apply, multiply, scale, weightedSum
 *   kernels/sparse.ts       assembly/sparse.ts      sparseExtract, changedIndices, gather, scatter
 *   kernels/lowrank.ts      assembly/lowrank.ts     W += R·C
 *   kernels/quant.ts        assembly/quant.ts       blockwise int8
 *   kernels/crc32.ts        assembly/crc32.ts       zip's CRC-32
 *   merge-kernels.ts        assembly/ties.ts        fused merge pipelines (weighted sum, task arithmetic, TIES)
 *   (assembly/blosc.ts is driven by interop/python-git-theta/wasm.ts, on an instance of its own)
 *
 * Exports are typed: `KernelExports` is generated at build time from asc's declarations for
 * assembly/ (scripts/kernel-exports.mjs), so a missing or misspelled export is a compile error.
 *
 * ## Determinism
 * Streaming accumulators take byte chunks of any length (kernels/feed.ts). Every kernel call except
 * the last one of a tensor starts at a multiple of UNIT_ELEMS (16) elements, so results do not
 * depend on chunk sizes. SIMD and scalar builds give identical bits for every kernel except NaN
 * payloads (and quantize/stats on NaN blocks, where only the payload can differ).
 *
 * ## Dtype handling
 * - Element-wise, sparse, low-rank, int8: F32 typed arrays (use toF32/fromF32 for F16/BF16/F64).
 * - stats, histogram, compare, LSH: see kernels/convert.ts. contentHasher: raw bytes, any dtype.
 *
 * ## Public API (class Kernels; `getKernels()` returns a shared cached instance)
 *   static create(opts?: { variant?: 'simd'|'scalar', chunkBytes?: number, scratchBytes?: number }): Promise<Kernels>
 *   readonly variant
 *   stats(dtype, bytes): TensorStats                 statsAccumulator(dtype): StatsAccumulator
 *   histogram(dtype, bytes, bins, lo, hi): number[]
 *   contentHasher(): ContentHasher                   contentHash(bytes): string  (32 hex chars)
 *   lshAccumulator(dtype, { size?, seed?, buckets? }): LshAccumulator     lshSignature(dtype, bytes, opts?)
 *   estimateL2(sigA, sigB): number (also a free function)                 lshBuckets(sig, width, seed?): number[]
 *   compareAccumulator(dtype, { rtol?, atol? }): CompareAccumulator       compare(dtype, a, b, opts?): CompareResult
 *   toF32(dtype, bytes, out?): Float32Array          fromF32(dtype, values, out?): Uint8Array   (F32, F16, BF16, F64)
 *   delta(a, b, out?)  apply(a, d, out?)  multiply(a, b, out?)  scale(a, s, out?)  weightedSum(inputs, weights, out?)
 *   sparseExtract(a, b, threshold?): { indices, values }      scatterAdd(target, indices, values): target
 *   changedIndices(a, b, elementSize): Uint32Array   gather(bytes, elementSize, indices): Uint8Array
 *   scatter(bytes, elementSize, indices, values): bytes (in place)
 *   lowRankApply(W, rows, cols, R, C, rank): W (in place, W += R·C)
 *   quantizeInt8(values, blockSize?): { q, scales }  dequantizeInt8(q, scales, blockSize?): Float32Array
 *   dot(a, b)  l2Distance(a, b)  cosine(a, b)  allclose(a, b, rtol?, atol?)    (Float32Array or Float64Array)
 *   crc32(bytes, crc?): number
 *   raw: { exports, memory, scratch, scratchBytes, fn }  (tests and benchmarks: kernels over Wasm-resident data)
 */
import type { DType } from './dtypes.ts';
import { type KernelExports, type KernelFunctionName, type KernelVariant, defaultVariant, instantiateKernels } from './wasm.ts';
import { ArgumentError } from './errors.ts';
import { setCrc32Impl } from './crc32.ts';
import { KernelMemory, type KernelsOptions } from './kernels/memory.ts';
import * as convert from './kernels/convert.ts';
import * as stats from './kernels/stats.ts';
import * as hash from './kernels/hash.ts';
import * as lsh from './kernels/lsh.ts';
import * as elementwise from './kernels/elementwise.ts';
import * as sparse from './kernels/sparse.ts';
import * as lowrank from './kernels/lowrank.ts';
import * as quant from './kernels/quant.ts';
import * as crc32Host from './kernels/crc32.ts';
import type { CompareAccumulator, CompareResult, StatsAccumulator, TensorStats } from './kernels/stats.ts';
import type { ContentHasher } from './kernels/hash.ts';
import type { LshAccumulator, LshOptions } from './kernels/lsh.ts';

export { UNIT_ELEMS, DEFAULT_CHUNK_BYTES, DEFAULT_SCRATCH_BYTES, MAX_SCRATCH_BYTES, type KernelsOptions } from './kernels/memory.ts';
export { MAX_BINS, type TensorStats, type CompareResult, type StatsAccumulator, type CompareAccumulator } from './kernels/stats.ts';
export { MAX_LSH_BUCKETS, DEFAULT_LSH_SIZE, DEFAULT_LSH_BUCKETS, estimateL2, type LshAccumulator, type LshOptions } from './kernels/lsh.ts';
export type { ContentHasher } from './kernels/hash.ts';
export type { KernelExports, KernelFunctionName } from './wasm.ts';

type FloatArray = Float32Array | Float64Array;
type Tolerance = { rtol?: number; atol?: number };

export class Kernels {
  readonly variant: KernelVariant;
  readonly chunkBytes: number;
  readonly scratchBytes: number;
  private readonly m: KernelMemory;

  private constructor(variant: KernelVariant, inst: WebAssembly.Instance, opts: KernelsOptions) {
    this.variant = variant;
    this.m = new KernelMemory(inst, opts);
    this.chunkBytes = this.m.chunkBytes;
    this.scratchBytes = this.m.scratchBytes;
  }

  static async create(opts: KernelsOptions = {}): Promise<Kernels> {
    const variant = opts.variant ?? defaultVariant();
    if (variant !== 'simd' && variant !== 'scalar') throw new ArgumentError(`unknown kernel variant ${String(variant)}`);
    return new Kernels(variant, await instantiateKernels(variant), opts);
  }

  /** Low-level access for tests, benchmarks and the fused merge pipelines (merge-kernels.ts), which use SCRATCH per call. */
  get raw(): { exports: KernelExports; memory: WebAssembly.Memory; scratch: number; scratchBytes: number; fn: <K extends KernelFunctionName>(name: K) => KernelExports[K] } {
    const m = this.m;
    m.reach(m.SCRATCH + m.scratchBytes); // (its users lay out all of SCRATCH themselves)
    return { exports: m.x, memory: m.memory, scratch: m.SCRATCH, scratchBytes: m.scratchBytes, fn: (name) => m.x[name] };
  }

  // stats, compare, histogram (kernels/stats.ts)
  statsAccumulator(dtype: DType): StatsAccumulator { return stats.statsAccumulator(this.m, dtype); }
  stats(dtype: DType, bytes: Uint8Array): TensorStats { return stats.stats(this.m, dtype, bytes); }
  compareAccumulator(dtype: DType, opts: Tolerance = {}): CompareAccumulator { return stats.compareAccumulator(this.m, dtype, opts); }
  compare(dtype: DType, a: Uint8Array, b: Uint8Array, opts: Tolerance = {}): CompareResult { return stats.compare(this.m, dtype, a, b, opts); }
  dot(a: FloatArray, b: FloatArray): number { return stats.dot(this.m, a, b); }
  l2Distance(a: FloatArray, b: FloatArray): number { return stats.l2Distance(this.m, a, b); }
  cosine(a: FloatArray, b: FloatArray): number { return stats.cosine(this.m, a, b); }
  /** numpy.allclose(a, b, rtol, atol) with equal_nan=False. */
  allclose(a: FloatArray, b: FloatArray, rtol = 1e-5, atol = 1e-8): boolean { return stats.allclose(this.m, a, b, rtol, atol); }
  histogram(dtype: DType, bytes: Uint8Array, bins: number, lo: number, hi: number): number[] { return stats.histogram(this.m, dtype, bytes, bins, lo, hi); }

  // content hash (kernels/hash.ts)
  contentHasher(): ContentHasher { return hash.contentHasher(this.m); }
  contentHash(bytes: Uint8Array): string { return hash.contentHash(this.m, bytes); }

  // LSH (kernels/lsh.ts)
  lshAccumulator(dtype: DType, opts: LshOptions = {}): LshAccumulator { return lsh.lshAccumulator(this.m, dtype, opts); }
  lshSignature(dtype: DType, bytes: Uint8Array, opts: LshOptions = {}): number[] { return lsh.lshSignature(this.m, dtype, bytes, opts); }
  estimateL2(sigA: readonly number[], sigB: readonly number[]): number { return lsh.estimateL2(sigA, sigB); }
  /** E2LSH bucket ids floor((p_k + b_k) / width), b_k uniform in [0, width) from `seed`. */
  lshBuckets(sig: readonly number[], width: number, seed = 0): number[] { return lsh.lshBuckets(this.m, sig, width, seed); }

  // conversion (kernels/convert.ts)
  /** The elements of `bytes` as f32 (into `out` when given, which must have the element count). */
  toF32(dtype: DType, bytes: Uint8Array, out?: Float32Array): Float32Array { return convert.toF32(this.m, dtype, bytes, out); }
  /** `values` encoded as `dtype` bytes (into `out` when given, which must have the byte length). */
  fromF32(dtype: DType, values: Float32Array, out?: Uint8Array): Uint8Array { return convert.fromF32(this.m, dtype, values, out); }

  /** CRC-32 (zip's) of `bytes`, continuing `crc`: crc32(b, crc32(a)) === crc32(a ++ b). */
  crc32(bytes: Uint8Array, crc = 0): number { return crc32Host.crc32(this.m, bytes, crc); }

  // element-wise, F32 (kernels/elementwise.ts)
  /** out = a - b */
  delta(a: Float32Array, b: Float32Array, out?: Float32Array): Float32Array { return elementwise.delta(this.m, a, b, out); }
  /** out = a + d */
  apply(a: Float32Array, d: Float32Array, out?: Float32Array): Float32Array { return elementwise.apply(this.m, a, d, out); }
  /** out = a * b */
  multiply(a: Float32Array, b: Float32Array, out?: Float32Array): Float32Array { return elementwise.multiply(this.m, a, b, out); }
  /** out = a * s (s rounded to f32) */
  scale(a: Float32Array, s: number, out?: Float32Array): Float32Array { return elementwise.scale(this.m, a, s, out); }
  /** out = sum_i weights[i] * inputs[i], left to right in f32 (weights rounded to f32). */
  weightedSum(inputs: readonly Float32Array[], weights: readonly number[], out?: Float32Array): Float32Array { return elementwise.weightedSum(this.m, inputs, weights, out); }

  // sparse (kernels/sparse.ts)
  /**
   * Indices i where a[i] != b[i] and !(|a[i] - b[i]| <= threshold) (NaN differences are kept,
   * equal infinities are not), with values a[i] - b[i] (f32). Indices are u32: at most 2^32 elements.
   */
  sparseExtract(a: Float32Array, b: Float32Array, threshold = 0): { indices: Uint32Array; values: Float32Array } { return sparse.sparseExtract(this.m, a, b, threshold); }
  /** target[indices[j]] += values[j] in f32, in order (in place; returns target). */
  scatterAdd(target: Float32Array, indices: Uint32Array, values: Float32Array): Float32Array { return sparse.scatterAdd(target, indices, values); }
  /** Indices of the elements (elementSize bytes) whose bytes differ between a and b. */
  changedIndices(a: Uint8Array, b: Uint8Array, elementSize: number): Uint32Array;
  /** With `limit`: null as soon as more than `limit` elements differ (a dense change stops early). */
  changedIndices(a: Uint8Array, b: Uint8Array, elementSize: number, limit: number): Uint32Array | null;
  changedIndices(a: Uint8Array, b: Uint8Array, elementSize: number, limit = Infinity): Uint32Array | null { return sparse.changedIndices(this.m, a, b, elementSize, limit); }
  /** The elements at `indices`, concatenated. */
  gather(bytes: Uint8Array, elementSize: number, indices: Uint32Array): Uint8Array { return sparse.gather(bytes, elementSize, indices); }
  /** bytes[indices[j]] = values[j] (elements of elementSize bytes), in place, in order. */
  scatter(bytes: Uint8Array, elementSize: number, indices: Uint32Array, values: Uint8Array): Uint8Array { return sparse.scatter(bytes, elementSize, indices, values); }

  // low rank, int8 (kernels/lowrank.ts, kernels/quant.ts)
  /** W += R·C in place (W rows×cols, R rows×rank, C rank×cols, row-major f32). */
  lowRankApply(W: Float32Array, rows: number, cols: number, R: Float32Array, C: Float32Array, rank: number): Float32Array { return lowrank.lowRankApply(this.m, W, rows, cols, R, C, rank); }
  /** Blockwise absmax int8: q = round_half_even(x * 127 / max|block|), scales[b] = max|block| / 127. */
  quantizeInt8(values: Float32Array, blockSize = 64): { q: Int8Array; scales: Float32Array } { return quant.quantizeInt8(this.m, values, blockSize); }
  dequantizeInt8(q: Int8Array, scales: Float32Array, blockSize = 64): Float32Array { return quant.dequantizeInt8(this.m, q, scales, blockSize); }
}

let shared: Promise<Kernels> | undefined;

/** The shared default instance (SIMD when the runtime supports it), created once. */
export function getKernels(): Promise<Kernels> {
  shared ??= Kernels.create().then((k) => {
    // once the shared kernels exist, zip CRCs (PyTorch, npz) use them too, in every runtime
    setCrc32Impl((b, c) => k.crc32(b, c));
    return k;
  }, (e) => {
    shared = undefined;
    throw e;
  });
  return shared;
}

/** Switch `crc32` (core/crc32.ts) to the Wasm kernel, several times faster on large zip entries; `getKernels()` does the same. */
export async function useFastCrc32(): Promise<void> {
  await getKernels();
}
