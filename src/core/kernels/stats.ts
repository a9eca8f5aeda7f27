/**
 * Statistics, comparison and histograms over tensors of any numeric dtype (assembly/stats.ts):
 * streaming accumulators that take byte chunks of any length, and their one-shot forms. Sums are
 * accumulated in f64 (see convert.ts for how each dtype is widened).
 */
import { ArgumentError } from '../errors.ts';
import { type DType, DTYPES } from '../dtypes.ts';
import { type KernelMemory, align64, bytesOf } from './memory.ts';
import { numericPath } from './convert.ts';
import { numericStream } from './feed.ts';

/** Histogram bins live in SMALL (256 KiB of u32). */
export const MAX_BINS = 65536;

export interface TensorStats {
  count: number;
  finite: number;
  nan: number;
  inf: number;
  /** over finite values */
  sum: number;
  sumsq: number;
  /** NaN when there are no finite values */
  min: number;
  max: number;
  maxabs: number;
  /** sum / finite (NaN when no finite values) */
  mean: number;
  /** population standard deviation of the finite values */
  std: number;
  /** sqrt(sumsq) */
  l2: number;
}

export interface CompareResult {
  count: number;
  dot: number;
  sumsqA: number;
  sumsqB: number;
  sumsqDiff: number;
  maxAbsDiff: number;
  /** elements where !(a == b || (isFinite(b) && |a-b| <= atol + rtol*|b|)); NaN is never close */
  notClose: number;
  /** dot / (|a| |b|); NaN when either norm is zero */
  cosine: number;
  l2Diff: number;
}

export interface StatsAccumulator {
  update(chunk: Uint8Array): void;
  result(): TensorStats;
}
export interface CompareAccumulator {
  update(a: Uint8Array, b: Uint8Array): void;
  result(): CompareResult;
}

export function statsAccumulator(mem: KernelMemory, dtype: DType): StatsAccumulator {
  const { kind, conv } = numericPath(dtype, 'stats');
  const k = kind === 'f32' ? mem.x.stats_f32 : mem.x.stats_f64;
  const esize = DTYPES[dtype].size;
  const s = numericStream(mem, dtype, kind, conv, 1, 128, (st) => {
    const v = new DataView(st.buffer);
    v.setFloat64(64, Infinity, true);
    v.setFloat64(72, -Infinity, true);
  }, (st, p, n) => k(st, p[0], n));
  let bytes = 0;
  return {
    update: (chunk) => {
      bytes += chunk.length;
      s.update([chunk]);
    },
    result: () => {
      s.finish('stats');
      const d = mem.dv, st = mem.STATE;
      const g = (o: number) => d.getFloat64(st + o, true);
      const count = Math.floor(bytes / esize);
      const nan = Number(d.getBigInt64(st + 88, true));
      const inf = Number(d.getBigInt64(st + 96, true));
      const finite = count - nan - inf;
      const sum = ((g(0) + g(8)) + g(16)) + g(24);
      const sumsq = ((g(32) + g(40)) + g(48)) + g(56);
      const mean = finite ? sum / finite : NaN;
      return {
        count, finite, nan, inf, sum, sumsq,
        min: finite ? g(64) : NaN,
        max: finite ? g(72) : NaN,
        maxabs: finite ? g(80) : NaN,
        mean,
        std: finite ? Math.sqrt(Math.max(0, sumsq / finite - mean * mean)) : NaN,
        l2: Math.sqrt(sumsq),
      };
    },
  };
}

export function stats(mem: KernelMemory, dtype: DType, bytes: Uint8Array): TensorStats {
  const a = statsAccumulator(mem, dtype);
  a.update(bytes);
  return a.result();
}

export function compareAccumulator(mem: KernelMemory, dtype: DType, opts: { rtol?: number; atol?: number } = {}): CompareAccumulator {
  const rtol = opts.rtol ?? 1e-5, atol = opts.atol ?? 1e-8;
  if (!(rtol >= 0 && atol >= 0)) throw new ArgumentError(`compare: rtol and atol must be >= 0 (got ${rtol}, ${atol})`);
  const { kind, conv } = numericPath(dtype, 'compare');
  const k = kind === 'f32' ? mem.x.compare_f32 : mem.x.compare_f64;
  const esize = DTYPES[dtype].size;
  const s = numericStream(mem, dtype, kind, conv, 2, 160, () => {}, (st, p, n) => k(st, p[0], p[1], n, rtol, atol));
  let bytes = 0;
  return {
    update: (a, b) => {
      if (a.length !== b.length) throw new ArgumentError(`compare: chunks must have the same length (got ${a.length} and ${b.length})`);
      bytes += a.length;
      s.update([a, b]);
    },
    result: () => {
      s.finish('compare');
      const d = mem.dv, st = mem.STATE;
      const lanes = (o: number) => ((d.getFloat64(st + o, true) + d.getFloat64(st + o + 8, true)) + d.getFloat64(st + o + 16, true)) + d.getFloat64(st + o + 24, true);
      const dot = lanes(0), sumsqA = lanes(32), sumsqB = lanes(64), sumsqDiff = lanes(96);
      const na = Math.sqrt(sumsqA), nb = Math.sqrt(sumsqB);
      return {
        count: Math.floor(bytes / esize),
        dot, sumsqA, sumsqB, sumsqDiff,
        maxAbsDiff: d.getFloat64(st + 128, true),
        notClose: Number(d.getBigInt64(st + 136, true)),
        cosine: na === 0 || nb === 0 ? NaN : dot / na / nb,
        l2Diff: Math.sqrt(sumsqDiff),
      };
    },
  };
}

export function compare(mem: KernelMemory, dtype: DType, a: Uint8Array, b: Uint8Array, opts: { rtol?: number; atol?: number } = {}): CompareResult {
  const c = compareAccumulator(mem, dtype, opts);
  c.update(a, b);
  return c.result();
}

function floatCompare(mem: KernelMemory, a: Float32Array | Float64Array, b: Float32Array | Float64Array, what: string, opts?: { rtol?: number; atol?: number }): CompareResult {
  if (a.length !== b.length) throw new ArgumentError(`${what}: arrays must have the same length (got ${a.length} and ${b.length})`);
  const f32 = a instanceof Float32Array;
  if (f32 !== b instanceof Float32Array) throw new ArgumentError(`${what}: both arrays must be Float32Array or both Float64Array`);
  return compare(mem, f32 ? 'F32' : 'F64', bytesOf(a), bytesOf(b), opts);
}

export function dot(mem: KernelMemory, a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  return floatCompare(mem, a, b, 'dot').dot;
}

export function l2Distance(mem: KernelMemory, a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  return floatCompare(mem, a, b, 'l2Distance').l2Diff;
}

export function cosine(mem: KernelMemory, a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  return floatCompare(mem, a, b, 'cosine').cosine;
}

/** numpy.allclose(a, b, rtol, atol) with equal_nan=False. */
export function allclose(mem: KernelMemory, a: Float32Array | Float64Array, b: Float32Array | Float64Array, rtol = 1e-5, atol = 1e-8): boolean {
  return floatCompare(mem, a, b, 'allclose', { rtol, atol }).notClose === 0;
}

export function histogram(mem: KernelMemory, dtype: DType, bytes: Uint8Array, bins: number, lo: number, hi: number): number[] {
  if (!(Number.isInteger(bins) && bins >= 1 && bins <= MAX_BINS)) throw new ArgumentError(`histogram: bins must be an integer in [1, ${MAX_BINS}] (got ${bins})`);
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw new ArgumentError(`histogram: need finite lo < hi (got ${lo}, ${hi})`);
  const { kind, conv } = numericPath(dtype, 'histogram');
  const esize = DTYPES[dtype].size;
  if (bytes.length % esize) throw new ArgumentError(`histogram: ${bytes.length} bytes is not a whole number of ${dtype} elements`);
  const k = kind === 'f32' ? mem.x.histogram_f32 : mem.x.histogram_f64;
  const convFn = conv ? mem.x[conv] : null;
  const wsize = kind === 'f32' ? 4 : 8;
  const piece = mem.pieceElems(esize + wsize);
  const IN = mem.SCRATCH, WORK = align64(IN + piece * esize);
  mem.reach(WORK + piece * wsize);
  const counts = new Array<number>(bins).fill(0);
  const C = mem.SMALL;
  const n = bytes.length / esize;
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.u8.set(bytes.subarray(off * esize, (off + m) * esize), IN);
    mem.u8.fill(0, C, C + bins * 4);
    if (convFn) convFn(IN, WORK, m);
    k(convFn ? WORK : IN, m, lo, hi, bins, C);
    const c = mem.u32.subarray(C >> 2, (C >> 2) + bins);
    for (let i = 0; i < bins; i++) counts[i] += c[i];
  }
  return counts;
}
