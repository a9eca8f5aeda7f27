/**
 * Merge pipelines over tensor bytes, fused piece by piece in the kernels' Wasm memory. For each
 * piece, every input's bytes are copied in once, converted to f32 there (F16, BF16, F64), combined,
 * converted back to the dtype and copied straight into the output. No full-size f32 array is made,
 * the result is never converted twice, and the output may be a buffer the caller gives up (one of
 * the inputs, whose pages are already in memory: a fresh 64 MiB array costs more in page faults
 * than the whole merge). Web-standard APIs only.
 *
 * Results are bit for bit those of the element-wise kernels applied one after another on whole
 * tensors (toF32, delta, weightedSum, fromF32) and, for TIES, of the plain TypeScript trimTopK and
 * electAndMerge in merges/strategies/ties.ts; they do not depend on piece sizes. The kernels'
 * SCRATCH is reached through `Kernels.raw`, as the host methods in kernels.ts use it: per call.
 *
 * ## Scratch layout (per call, inside the kernels' SCRATCH; see kernels.ts)
 *   weightedSumBytes, taskArithmeticBytes: [pointer and weight tables 8 KiB][pieces]
 *   tiesBytes: [histogram 256 KiB][state 64 KiB][pieces][collected magnitudes: the rest]
 *
 * ## TIES threshold selection
 * Each task vector keeps its `keep` largest |tau| (ties at the threshold: lowest index first). The
 * keep-th largest magnitude is found exactly without storing tau:
 *   1. a sample (TIES_SAMPLE elements in runs at fixed, evenly spaced positions) gives a bracket
 *      [lo, hi] that holds the keep-th largest value with a wide margin;
 *   2. one pass counts the magnitudes above hi and collects those inside the bracket;
 *   3. when the count and the collected magnitudes do straddle keep (and fit), a radix select among
 *      them gives the threshold; otherwise (an unlucky sample, or very many equal magnitudes) two
 *      histogram passes over the data give it. Either way the threshold is the same value, so the
 *      sample only decides how fast, never what.
 */
import { ArgumentError } from './errors.ts';
import { DTYPES, type DType } from './dtypes.ts';
import { type KernelExports, type KernelFunctionName, type Kernels, UNIT_ELEMS } from './kernels.ts';
import type { ConvName } from './kernels/convert.ts';

export type MergeDType = 'F32' | 'F16' | 'BF16' | 'F64';
const TO_F32: Record<MergeDType, ConvName | null> = { F32: null, F16: 'f16_to_f32', BF16: 'bf16_to_f32', F64: 'f64_to_f32' };
const FROM_F32: Record<MergeDType, ConvName | null> = { F32: null, F16: 'f32_to_f16', BF16: 'f32_to_bf16', F64: 'f32_to_f64' };

/** The dtypes these pipelines take (the float dtypes the element-wise kernels convert both ways). */
export function isMergeDType(d: DType): d is MergeDType {
  return d in TO_F32;
}

/** Most inputs per call (the pointer tables hold this many). */
export const MAX_MERGE_INPUTS = 1024;
/**
 * Elements sampled to bracket a TIES threshold, in runs of TIES_SAMPLE_RUN consecutive elements
 * spread evenly over the tensor. Scattered single elements would cost a cache and TLB miss each
 * (about 0.3 µs here: 20 ms for 65536 elements of three tensors); 2048 runs of 64 cost ~3 ms. Shorter
 * runs cost more; longer ones let structured deltas (rows, heads) skew the sample more often.
 * A bigger sample narrows the bracket, so fewer magnitudes are collected (each collection is a
 * branch the CPU cannot predict): 131072 was the fastest of 64Ki-256Ki samples.
 */
export const TIES_SAMPLE = 131072;
export const TIES_SAMPLE_RUN = 64;
/**
 * Half-width of the bracket around the sampled rank, in standard deviations of that rank. For a
 * sample that behaves like an independent one, 3.5 misses about once in 2000 task vectors; a miss
 * costs two more passes (the histogram fallback), never a different result.
 */
const BRACKET_SIGMAS = 3.5;
const MAG = 0x7fffffff;
const HIST_BYTES = 65536 * 4;
const STATE_BYTES = 64 << 10;
/** Offsets in the TIES state area: per model 32 bytes of bracket state, [t, need] pairs, pointers, f32 scratch. */
const ST_SEEN = 0, ST_PAIRS = 32 << 10, ST_PTRS = 40 << 10, ST_TMP = 44 << 10, ST_PICK = 48 << 10;
const TABLE_BYTES = 8 << 10;

type Conv = KernelExports[ConvName];
const align64 = (n: number) => Math.ceil(n / 64) * 64;

interface Ctx {
  k: Kernels;
  dtype: MergeDType;
  u8: Uint8Array;
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
  fn: <K extends KernelFunctionName>(name: K) => KernelExports[K];
  esize: number;
  toF32: Conv | null;
  fromF32: Conv | null;
  scratch: number;
  scratchBytes: number;
}

function context(k: Kernels, dtype: MergeDType): Ctx {
  const raw = k.raw;
  const b = raw.memory.buffer;
  return {
    k, dtype, u8: new Uint8Array(b), u32: new Uint32Array(b), i32: new Int32Array(b), f32: new Float32Array(b), fn: raw.fn,
    esize: DTYPES[dtype].size,
    toF32: TO_F32[dtype] ? raw.fn(TO_F32[dtype]!) : null,
    fromF32: FROM_F32[dtype] ? raw.fn(FROM_F32[dtype]!) : null,
    scratch: raw.scratch, scratchBytes: raw.scratchBytes,
  };
}

/** Checks the inputs (same length, whole elements) and `out`; returns the element count. */
function checkInputs(what: string, dtype: DType, inputs: readonly Uint8Array[], out: Uint8Array | undefined): number {
  if (!isMergeDType(dtype)) throw new ArgumentError(`${what}: dtype ${dtype} is not a float dtype the merge kernels take (F32, F16, BF16, F64)`, { dtype });
  if (inputs.length === 0) throw new ArgumentError(`${what}: need at least one input`);
  if (inputs.length > MAX_MERGE_INPUTS + 1) throw new ArgumentError(`${what}: at most ${MAX_MERGE_INPUTS} inputs`);
  const len = inputs[0].length;
  for (const x of inputs) if (x.length !== len) throw new ArgumentError(`${what}: inputs must have the same length (got ${inputs.map((y) => y.length).join(', ')} bytes)`);
  const esize = DTYPES[dtype].size;
  if (len % esize) throw new ArgumentError(`${what}: ${len} bytes is not a whole number of ${dtype} elements`);
  if (out && out.length !== len) throw new ArgumentError(`${what}: out has ${out.length} bytes, expected ${len}`);
  const n = len / esize;
  if (n > 0xffffffff) throw new ArgumentError(`${what}: more than 2^32 - 1 elements`);
  return n;
}

/** Where a pass's pieces live: per input its bytes (and f32 work copy), then the f32 result and its bytes. */
interface Layout {
  piece: number;
  inPtrs: number[];
  work: number[];
  outF32: number;
  outB: number;
  end: number;
}

/** Pieces of `streams` inputs (and an output when `writes`) from `at`, using at most `budget` bytes. */
function layout(c: Ctx, streams: number, writes: boolean, at: number, budget: number): Layout {
  const conv = c.toF32 !== null;
  const perElem = streams * (c.esize + (conv ? 4 : 0)) + (writes ? 4 + (conv ? c.esize : 0) : 0);
  const room = budget - 64 * (2 * streams + 2);
  const byChunk = Math.floor(c.k.chunkBytes / perElem);
  const piece = Math.max(UNIT_ELEMS, Math.floor(Math.min(byChunk, Math.floor(room / perElem)) / UNIT_ELEMS) * UNIT_ELEMS);
  let p = align64(at);
  const inPtrs: number[] = [], work: number[] = [];
  for (let s = 0; s < streams; s++) {
    inPtrs.push(p);
    p = align64(p + piece * c.esize);
    work.push(conv ? p : inPtrs[s]);
    if (conv) p = align64(p + piece * 4);
  }
  const outF32 = p;
  if (writes) p = align64(p + piece * 4);
  const outB = conv ? p : outF32;
  if (writes && conv) p = align64(p + piece * c.esize);
  if (p > c.scratch + c.scratchBytes) throw new ArgumentError('merge kernels: the kernels\' scratch is too small for this many inputs');
  return { piece, inPtrs, work, outF32, outB, end: p };
}

/**
 * Runs `body(m)` over pieces of m elements, in order: each input's piece is copied in (and converted
 * to f32 in `work`), then the f32 result at outF32 is converted and copied to `out` at the same place.
 * `out` may be one of the inputs: a piece is read completely before it is written.
 */
function forPieces(c: Ctx, L: Layout, inputs: readonly Uint8Array[], out: Uint8Array | null, n: number, body: (m: number) => void): void {
  const { u8, esize, toF32, fromF32 } = c;
  for (let off = 0; off < n; off += L.piece) {
    const m = Math.min(L.piece, n - off);
    const b0 = off * esize, b1 = b0 + m * esize;
    for (let s = 0; s < inputs.length; s++) {
      u8.set(inputs[s].subarray(b0, b1), L.inPtrs[s]);
      if (toF32) toF32(L.inPtrs[s], L.work[s], m);
    }
    body(m);
    if (out) {
      if (fromF32) fromF32(L.outF32, L.outB, m);
      out.set(u8.subarray(L.outB, L.outB + m * esize), b0);
    }
  }
}

/** Room for a pass's pieces after `reserved` bytes (the chunk size decides how much of it is used). */
const pieceBudget = (c: Ctx, reserved: number) => c.scratchBytes - reserved;

/**
 * Σ weights[j]·inputs[j] over tensors of `dtype` (bytes), left to right in f32 with weights rounded
 * to f32: Kernels.weightedSum's arithmetic, on bytes. Into `out` when given (it may be an input).
 */
export function weightedSumBytes(k: Kernels, dtype: DType, inputs: readonly Uint8Array[], weights: readonly number[], out?: Uint8Array): Uint8Array {
  const n = checkInputs('weightedSumBytes', dtype, inputs, out);
  if (inputs.length > MAX_MERGE_INPUTS) throw new ArgumentError(`weightedSumBytes: at most ${MAX_MERGE_INPUTS} inputs`);
  if (weights.length !== inputs.length) throw new ArgumentError(`weightedSumBytes: ${inputs.length} inputs but ${weights.length} weights`);
  const dst = out ?? new Uint8Array(inputs[0].length);
  if (n === 0) return dst;
  const c = context(k, dtype as MergeDType);
  const PTRS = c.scratch, WTS = PTRS + TABLE_BYTES / 2;
  const L = layout(c, inputs.length, true, c.scratch + TABLE_BYTES, pieceBudget(c, TABLE_BYTES));
  c.u32.set(L.work, PTRS >> 2);
  c.f32.set(weights.map((w) => Math.fround(w)), WTS >> 2);
  const ws = c.fn('weighted_sum_f32');
  const count = inputs.length;
  forPieces(c, L, inputs, dst, n, (m) => ws(PTRS, WTS, count, L.outF32, m));
  return dst;
}

/**
 * base + Σ lambda·(models[j] − base): each task vector formed as model − base in f32, then the
 * weighted sum [base, tau...] with weights [1, lambda...], as Kernels.delta and weightedSum do.
 */
export function taskArithmeticBytes(k: Kernels, dtype: DType, base: Uint8Array, models: readonly Uint8Array[], lambda: number, out?: Uint8Array): Uint8Array {
  const inputs = [base, ...models];
  const n = checkInputs('taskArithmeticBytes', dtype, inputs, out);
  if (inputs.length > MAX_MERGE_INPUTS) throw new ArgumentError(`taskArithmeticBytes: at most ${MAX_MERGE_INPUTS - 1} models`);
  const dst = out ?? new Uint8Array(base.length);
  if (n === 0) return dst;
  const c = context(k, dtype as MergeDType);
  const PTRS = c.scratch, WTS = PTRS + TABLE_BYTES / 2;
  const L = layout(c, inputs.length, true, c.scratch + TABLE_BYTES, pieceBudget(c, TABLE_BYTES));
  c.u32.set(L.work, PTRS >> 2);
  c.f32.set(inputs.map((_, j) => (j === 0 ? 1 : Math.fround(lambda))), WTS >> 2);
  const ws = c.fn('weighted_sum_f32'), delta = c.fn('delta_f32');
  const count = inputs.length;
  forPieces(c, L, inputs, dst, n, (m) => {
    for (let j = 1; j < count; j++) delta(L.work[j], L.work[0], L.work[j], m);
    ws(PTRS, WTS, count, L.outF32, m);
  });
  return dst;
}

export interface TiesOptions {
  /** 'histogram' skips the sampled bracket (tests: the fallback path gives the same result). */
  select?: 'auto' | 'histogram';
  /** Added to: how many task vectors' thresholds each path found, and milliseconds per phase (diagnostics, tests, benchmarks). */
  stats?: TiesStats;
}

export interface TiesStats {
  bracket: number;
  histogram: number;
  ms?: { sample: number; bracket: number; select: number; histogram: number; merge: number };
}

/** A trim threshold: keep |tau| bits > t, and the first `need` equal to t. */
interface Threshold {
  t: number;
  need: number;
}

/**
 * TIES-merging of `models` against `base` (all bytes of `dtype`): keep each task vector's
 * ceil(density·n) largest |tau| (ties: lowest index first), elect a sign per element by the sum of
 * the kept entries, average the agreeing entries, and return base + lambda·merged (f32 arithmetic,
 * lambda rounded to f32). The same bits as trimTopK, electAndMerge and weightedSum in sequence.
 */
export function tiesBytes(k: Kernels, dtype: DType, base: Uint8Array, models: readonly Uint8Array[], density: number, lambda: number, out?: Uint8Array, opts: TiesOptions = {}): Uint8Array {
  const inputs = [base, ...models];
  const n = checkInputs('tiesBytes', dtype, inputs, out);
  if (models.length === 0) throw new ArgumentError('tiesBytes: need at least one model');
  if (models.length > MAX_MERGE_INPUTS) throw new ArgumentError(`tiesBytes: at most ${MAX_MERGE_INPUTS} models`);
  if (!(density >= 0 && density <= 1)) throw new ArgumentError(`tiesBytes: density must be in [0, 1] (got ${density})`);
  const dst = out ?? new Uint8Array(base.length);
  if (n === 0) return dst;
  const c = context(k, dtype as MergeDType);
  const keep = Math.min(n, Math.ceil(density * n - 1e-9));
  const th: Threshold[] = models.map(() => (keep <= 0 ? { t: MAG, need: 0 } : { t: -1, need: 0 })); // none / all
  const ms = opts.stats ? (opts.stats.ms ??= { sample: 0, bracket: 0, select: 0, histogram: 0, merge: 0 }) : null;
  if (keep > 0 && keep < n) {
    const fallbacks = selectThresholds(c, base, models, n, keep, th, opts.select ?? 'auto', ms);
    if (opts.stats) {
      opts.stats.bracket += models.length - fallbacks;
      opts.stats.histogram += fallbacks;
    }
  }
  const t0 = ms ? performance.now() : 0;

  // the fused pass: trim, elect, mean, base + lambda·merged
  const HIST = c.scratch, ST = HIST + HIST_BYTES;
  const PAIRS = ST + ST_PAIRS, PTRS = ST + ST_PTRS, TMP = ST + ST_TMP;
  const L = layout(c, inputs.length, true, ST + STATE_BYTES, pieceBudget(c, HIST_BYTES + STATE_BYTES));
  th.forEach((x, j) => {
    c.i32[(PAIRS >> 2) + 2 * j] = x.t;
    c.u32[(PAIRS >> 2) + 2 * j + 1] = x.need;
  });
  c.u32.set(L.work.slice(1), PTRS >> 2);
  const lam = Math.fround(lambda);
  if (models.length === 2) {
    const f = c.fn('ties_merge2_f32');
    forPieces(c, L, inputs, dst, n, (m) => f(L.work[0], L.work[1], L.work[2], m, PAIRS, 1, lam, L.outF32));
  } else {
    const f = c.fn('ties_merge_f32');
    forPieces(c, L, inputs, dst, n, (m) => f(L.work[0], PTRS, models.length, m, PAIRS, TMP, 1, lam, L.outF32));
  }
  if (ms) ms.merge += performance.now() - t0;
  return dst;
}

/** The keep-th largest of `count` u32 values at `ptr` (1 <= rank <= count), and how many equal to it complete the rank. */
function kthLargest(c: Ctx, ptr: number, count: number, rank: number, HIST: number, PICK: number): Threshold {
  const hist = c.fn('u32_hist'), pick = c.fn('hist_pick');
  c.u8.fill(0, HIST, HIST + 32768 * 4);
  hist(ptr, count, -1, HIST);
  const b1 = pick(HIST, 32768, rank, PICK);
  c.u8.fill(0, HIST, HIST + 65536 * 4);
  hist(ptr, count, b1, HIST);
  const b2 = pick(HIST, 65536, c.u32[PICK >> 2], PICK);
  return { t: (b1 << 16) | b2, need: c.u32[PICK >> 2] };
}

/** Copies the elements of `bytes` in runs of `run` from the element indices `starts` to `dst`, back to back. */
function gatherRuns(bytes: Uint8Array, esize: number, starts: Uint32Array, run: number, dst: Uint8Array): void {
  // element-sized views when aligned (a run is too short for TypedArray.set to pay off)
  const w = esize === 8 ? 4 : esize;
  const view = (b: Uint8Array) => (w === 4 ? new Uint32Array(b.buffer, b.byteOffset, b.length >> 2) : w === 2 ? new Uint16Array(b.buffer, b.byteOffset, b.length >> 1) : b);
  if (bytes.byteOffset % w === 0 && dst.byteOffset % w === 0) {
    const from = view(bytes), to = view(dst);
    const per = esize / w, rw = run * per;
    for (let j = 0; j < starts.length; j++) {
      const s0 = starts[j] * per, d0 = j * rw;
      for (let e = 0; e < rw; e++) to[d0 + e] = from[s0 + e];
    }
    return;
  }
  const rb = run * esize;
  for (let j = 0; j < starts.length; j++) {
    const s0 = starts[j] * esize, d0 = j * rb;
    for (let e = 0; e < rb; e++) dst[d0 + e] = bytes[s0 + e];
  }
}

/** Fills th[j] for every model; returns how many needed the histogram fallback. */
function selectThresholds(c: Ctx, base: Uint8Array, models: readonly Uint8Array[], n: number, keep: number, th: Threshold[], mode: 'auto' | 'histogram', ms: TiesStats['ms'] | null): number {
  const HIST = c.scratch, ST = HIST + HIST_BYTES, PICK = ST + ST_PICK;
  const SEEN = ST + ST_SEEN; // 32 bytes per model: the count seen, then the kernel's scratch
  const bracket = c.fn('ties_bracket_f32'), hist = c.fn('ties_hist_f32'), pick = c.fn('hist_pick');
  const todo: number[] = [];
  let t0 = ms ? performance.now() : 0;
  const lap = (what: 'sample' | 'bracket' | 'select' | 'histogram') => {
    if (!ms) return;
    const t = performance.now();
    ms[what] += t - t0;
    t0 = t;
  };

  if (mode === 'auto') {
    // pieces get at most half of what is left; the collected magnitudes get the rest
    const L = layout(c, 1 + models.length, false, ST + STATE_BYTES, Math.floor(pieceBudget(c, HIST_BYTES + STATE_BYTES) / 2));
    const CAND = align64(L.end);
    const capBytes = c.scratch + c.scratchBytes - CAND;
    const cap = Math.floor(capBytes / 4 / models.length);
    // 1. the sample: |model - base| in runs spread evenly over the tensor, as f32 bits. It lives
    // where the collected magnitudes will go: [base f32][model f32, then its magnitudes][raw bytes]
    const run = Math.min(TIES_SAMPLE_RUN, n);
    const runs = Math.max(1, Math.floor(Math.min(n, TIES_SAMPLE, Math.floor((capBytes - 128) / (8 + c.esize))) / run));
    const s = runs * run;
    // one run in each of `runs` equal strata, at a pseudo-random (fixed) place in it: evenly spread,
    // yet not in step with periodic structure (rows, heads) the way equally spaced runs can be
    const starts = new Uint32Array(runs);
    for (let j = 0; j < runs; j++) {
      const lo = Math.floor((j * n) / runs), room = Math.floor(((j + 1) * n) / runs) - lo - run + 1;
      let h = Math.imul(j + 1, 0x9e3779b1);
      h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
      starts[j] = lo + ((h ^ (h >>> 13)) >>> 0) % room;
    }
    const BS = CAND, MS = align64(BS + s * 4), RAW = align64(MS + s * 4);
    const sampleF32 = (x: Uint8Array, to: number) => {
      if (c.toF32) {
        gatherRuns(x, c.esize, starts, run, c.u8.subarray(RAW, RAW + s * c.esize));
        c.toF32(RAW, to, s);
      } else gatherRuns(x, 4, starts, run, c.u8.subarray(to, to + s * 4));
    };
    sampleF32(base, BS);
    const p = keep / n;
    const r = (keep * s) / n; // the threshold's expected rank in the sample
    const delta = c.fn('delta_f32');
    const bounds = models.map((m) => {
      sampleF32(m, MS);
      delta(MS, BS, MS, s);
      const u = c.u32, m0 = MS >> 2; // f32 differences: their magnitudes are the bits without the sign
      // the bracket: the sampled values BRACKET_SIGMAS standard deviations of the rank either side
      // of r; the spread as for independent elements, or wider when runs differ more than that
      // (elements within a run alike: rows or heads of different scale), judged from the count
      // above the bracket's upper end run by run
      const bracketAt = (sd: number) => {
        const margin = BRACKET_SIGMAS * sd + 8;
        const rHi = Math.floor(r - margin), rLo = Math.ceil(r + margin);
        return {
          hi: rHi >= 1 ? kthLargest(c, MS, s, rHi, HIST, PICK).t : MAG,
          lo: rLo <= s ? kthLargest(c, MS, s, rLo, HIST, PICK).t : 0,
        };
      };
      const iid = Math.sqrt(s * p * (1 - p));
      let { lo, hi } = bracketAt(iid);
      let sum = 0, sumsq = 0;
      for (let j = 0; j < runs; j++) {
        let a = 0;
        for (let e = m0 + j * run, end = e + run; e < end; e++) if ((u[e] & MAG) > hi) a++;
        sum += a;
        sumsq += a * a;
      }
      const between = Math.sqrt(runs * Math.max(0, sumsq / runs - (sum / runs) ** 2));
      if (between > 1.25 * iid) ({ lo, hi } = bracketAt(between));
      return { lo, hi };
    });
    lap('sample');
    // 2. one pass: count above the bracket, collect inside it
    const above = models.map(() => 0);
    for (let j = 0; j < models.length; j++) c.u32[(SEEN >> 2) + 8 * j] = 0;
    const inputs = [base, ...models];
    forPieces(c, L, inputs, null, n, (m) => {
      for (let j = 0; j < models.length; j++) above[j] += bracket(L.work[0], L.work[j + 1], m, bounds[j].lo, bounds[j].hi, CAND + j * cap * 4, cap, SEEN + 32 * j);
    });
    lap('bracket');
    // 3. select inside the bracket where it straddles keep
    for (let j = 0; j < models.length; j++) {
      const seen = c.u32[(SEEN >> 2) + 8 * j];
      if (above[j] < keep && keep <= above[j] + seen && seen <= cap) th[j] = kthLargest(c, CAND + j * cap * 4, seen, keep - above[j], HIST, PICK);
      else todo.push(j);
    }
    lap('select');
  } else {
    for (let j = 0; j < models.length; j++) todo.push(j);
  }

  // the fallback: two histogram passes over the task vector (high 16 bits, then the low 16 within the bucket)
  for (const j of todo) {
    const L = layout(c, 2, false, ST + STATE_BYTES, pieceBudget(c, HIST_BYTES + STATE_BYTES));
    c.u8.fill(0, HIST, HIST + 32768 * 4);
    forPieces(c, L, [base, models[j]], null, n, (m) => hist(L.work[0], L.work[1], m, -1, HIST));
    const b1 = pick(HIST, 32768, keep, PICK);
    const need = c.u32[PICK >> 2];
    c.u8.fill(0, HIST, HIST + 65536 * 4);
    forPieces(c, L, [base, models[j]], null, n, (m) => hist(L.work[0], L.work[1], m, b1, HIST));
    const b2 = pick(HIST, 65536, need, PICK);
    th[j] = { t: (b1 << 16) | b2, need: c.u32[PICK >> 2] };
  }
  lap('histogram');
  return todo.length;
}
