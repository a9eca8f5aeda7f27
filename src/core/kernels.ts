/**
 * The numeric kernels host: runs the AssemblyScript kernels (assembly/) over tensors of any size
 * by chunking them through a bounded Wasm memory. Web-standard APIs only.
 *
 * ## Wasm memory layout (one instance per `Kernels`; grown once in `create`, never again)
 *
 *   [0, heapBase)                  AssemblyScript static data (tiny)
 *   STATE   heapBase + 0           64 KiB  accumulator state slot. Accumulators keep their state
 *                                          in JS and copy it in before and out after each call, so
 *                                          any number of them can be alive on one instance.
 *   TAIL    STATE + 60 KiB         4 KiB   hash tail / small per-call scratch (inside STATE's 64 KiB)
 *   POOL    heapBase + 64 KiB      16 KiB  LSH sign pool (LSH_POOL u32 masks) for seed `poolSeed`
 *   SMALL   heapBase + 80 KiB      256 KiB histogram counts (<= MAX_BINS u32), LSH projections and
 *                                          offsets, pointer and weight tables for weightedSum
 *   SCRATCH heapBase + 336 KiB     `scratchBytes` (default 32 MiB, at most 64 MiB): data, split per
 *                                          call into input/work/output parts of at most `chunkBytes`
 *
 * Nothing is ever sized by the tensor: a 3 GB tensor goes through SCRATCH piece by piece.
 *
 * ## Determinism
 * Streaming accumulators take byte chunks of any length (a chunk may end inside an element; the
 * partial element is carried over). Every kernel call except the last one of a tensor starts at a
 * multiple of UNIT_ELEMS (16) elements, so the per-lane summation order is fixed by element index
 * and results do not depend on chunk sizes. SIMD and scalar builds give identical bits for every
 * kernel except NaN payloads (and quantize/stats on NaN blocks, where only the payload can differ).
 *
 * ## Dtype handling
 * - Element-wise, sparse, low-rank, int8: F32 typed arrays (use toF32/fromF32 for F16/BF16/F64).
 * - stats, histogram, compare: F32, F16, BF16, I8, U8, I16, U16, BOOL are widened to f32 (exactly);
 *   F64, I32, U32, I64, U64 to f64 (exact for |x| < 2^53, else rounded to nearest even).
 *   Sums are accumulated in f64 either way.
 * - LSH: every dtype is converted to f32 (F64 and wide ints rounded to nearest even).
 * - contentHasher: raw bytes, any dtype.
 * - F8_E4M3 / F8_E5M2 are not supported by the numeric kernels (ArgumentError).
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
 *   raw: { exports, memory, scratch, scratchBytes }  (tests and benchmarks: kernels over Wasm-resident data)
 *   (merge pipelines over tensor bytes — weighted sum, task arithmetic, TIES — live in merge-kernels.ts)
 *
 * gather, scatter and scatterAdd run in JS on the caller's arrays: they touch only the indexed
 * elements, while a Wasm call would first have to copy the whole tensor in. The Wasm versions
 * (exports gather / scatter / scatter_add_f32) serve data already in Wasm memory.
 */
import { ArgumentError } from './errors.ts';
import { type DType, DTYPES, isDType } from './dtypes.ts';
import { type KernelVariant, defaultVariant, instantiateKernels } from './wasm.ts';
import { crc32Js, setCrc32Impl } from './crc32.ts';

/** Elements per lane-aligned unit: every non-final kernel call starts at a multiple of this. */
export const UNIT_ELEMS = 16;
/** Default largest input piece per kernel call. 1 MiB keeps a piece and its outputs in L2. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;
/** Default data scratch; at most MAX_SCRATCH_BYTES so the module stays small in browsers. */
export const DEFAULT_SCRATCH_BYTES = 32 << 20;
export const MAX_SCRATCH_BYTES = 64 << 20;
/** Histogram bins live in SMALL (256 KiB of u32). */
export const MAX_BINS = 65536;
/** LSH count-sketch buckets must be a power of two <= this (the sign pool length). */
export const MAX_LSH_BUCKETS = 4096;
export const DEFAULT_LSH_SIZE = 16;
export const DEFAULT_LSH_BUCKETS = 256;
/** Element-wise ops on fewer elements than this run in JS (same bits, no call overhead). */
const SMALL_N = 32;

const STATE_BYTES = 64 << 10;
const TAIL_OFFSET = 60 << 10;
const POOL_BYTES = 16 << 10;
const SMALL_BYTES = 256 << 10;

type Fn = (...args: number[]) => number;
export interface KernelExports {
  memory: WebAssembly.Memory;
  [name: string]: Fn | WebAssembly.Memory | WebAssembly.Global;
}

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
export interface ContentHasher {
  update(chunk: Uint8Array): void;
  digest(): string;
}
export interface LshAccumulator {
  update(chunk: Uint8Array): void;
  signature(): number[];
}
export interface LshOptions {
  size?: number;
  seed?: number;
  buckets?: number;
}
export interface KernelsOptions {
  variant?: KernelVariant;
  /** Largest input piece per kernel call (tests vary it; results never depend on it). */
  chunkBytes?: number;
  scratchBytes?: number;
}

type NumKind = 'f32' | 'f64';
const NARROW_CONV: Partial<Record<DType, string | null>> = {
  F32: null, F16: 'f16_to_f32', BF16: 'bf16_to_f32', I8: 'i8_to_f32', U8: 'u8_to_f32', BOOL: 'u8_to_f32',
  I16: 'i16_to_f32', U16: 'u16_to_f32',
};
const WIDE_CONV: Partial<Record<DType, string | null>> = {
  F64: null, I32: 'i32_to_f64', U32: 'u32_to_f64', I64: 'i64_to_f64', U64: 'u64_to_f64',
};
const F32_CONV: Partial<Record<DType, string | null>> = {
  ...NARROW_CONV, F64: 'f64_to_f32', I32: 'i32_to_f32', U32: 'u32_to_f32', I64: 'i64_to_f32', U64: 'u64_to_f32',
};

function checkDType(d: unknown, table: Partial<Record<DType, string | null>>, what: string): DType {
  if (!isDType(d)) throw new ArgumentError(`${what}: unknown dtype ${String(d)}`, { dtype: d });
  if (!(d in table)) throw new ArgumentError(`${what}: dtype ${d} is not supported by the numeric kernels`, { dtype: d });
  return d;
}

/** How a dtype reaches a stats/compare/histogram kernel: converted to f32 or to f64. */
function numericPath(d: DType, what: string): { kind: NumKind; conv: string | null } {
  checkDType(d, { ...NARROW_CONV, ...WIDE_CONV }, what);
  return d in NARROW_CONV ? { kind: 'f32', conv: NARROW_CONV[d]! } : { kind: 'f64', conv: WIDE_CONV[d]! };
}

const align64 = (n: number) => Math.ceil(n / 64) * 64;

function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
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

/**
 * Feeds `k` parallel byte streams of equal length to a kernel in whole lane-aligned units,
 * carrying partial units (and partial elements) across `update` calls.
 */
class UnitFeeder {
  private readonly carry: Uint8Array[];
  private carryLen = 0;
  readonly unitBytes: number;
  readonly pieceBytes: number;

  constructor(
    readonly esize: number,
    readonly inPtrs: number[],
    pieceElems: number,
    unitElems: number,
    private readonly mem: () => Uint8Array,
    private readonly run: (n: number) => void,
  ) {
    this.unitBytes = unitElems * esize;
    this.pieceBytes = pieceElems * esize;
    this.carry = inPtrs.map(() => new Uint8Array(this.unitBytes));
  }

  update(chunks: Uint8Array[]): void {
    const len = chunks[0].length;
    for (const c of chunks) {
      if (c.length !== len) throw new ArgumentError(`chunks of the two tensors must have the same length (got ${chunks.map((x) => x.length).join(' and ')})`);
    }
    const mem = this.mem();
    let pos = 0;
    for (;;) {
      const avail = this.carryLen + (len - pos);
      const take = Math.min(this.pieceBytes, Math.floor(avail / this.unitBytes) * this.unitBytes);
      if (take === 0) break;
      const fromChunk = take - this.carryLen;
      for (let s = 0; s < chunks.length; s++) {
        const p = this.inPtrs[s];
        if (this.carryLen) mem.set(this.carry[s].subarray(0, this.carryLen), p);
        mem.set(chunks[s].subarray(pos, pos + fromChunk), p + this.carryLen);
      }
      pos += fromChunk;
      this.carryLen = 0;
      this.run(take / this.esize);
    }
    const rest = len - pos;
    for (let s = 0; s < chunks.length; s++) this.carry[s].set(chunks[s].subarray(pos), this.carryLen);
    this.carryLen += rest;
  }

  /** Runs the kernel on the carried whole elements (the tensor's last < 16); keeps the carry. */
  finish(what: string): void {
    if (this.carryLen % this.esize !== 0) {
      throw new ArgumentError(`${what}: the input ended inside an element (${this.carryLen % this.esize} of ${this.esize} bytes)`);
    }
    const mem = this.mem();
    for (let s = 0; s < this.carry.length; s++) mem.set(this.carry[s].subarray(0, this.carryLen), this.inPtrs[s]);
    this.run(this.carryLen / this.esize);
  }

  get pending(): Uint8Array {
    return this.carry[0].subarray(0, this.carryLen);
  }
}

export class Kernels {
  readonly variant: KernelVariant;
  readonly chunkBytes: number;
  readonly scratchBytes: number;
  private readonly x: KernelExports;
  private readonly memory: WebAssembly.Memory;
  private readonly STATE: number;
  private readonly POOL: number;
  private readonly SMALL: number;
  private readonly SCRATCH: number;
  private poolSeed = -1;
  private u8!: Uint8Array;
  private f32!: Float32Array;
  private f64!: Float64Array;
  private u32!: Uint32Array;
  private dv!: DataView;

  private constructor(variant: KernelVariant, inst: WebAssembly.Instance, opts: KernelsOptions) {
    this.variant = variant;
    this.x = inst.exports as unknown as KernelExports;
    this.memory = this.x.memory;
    const scratch = opts.scratchBytes ?? DEFAULT_SCRATCH_BYTES;
    if (!(scratch >= 1 << 20 && scratch <= MAX_SCRATCH_BYTES)) {
      throw new ArgumentError(`scratchBytes must be between 1 MiB and ${MAX_SCRATCH_BYTES} (got ${scratch})`);
    }
    const chunk = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!(Number.isInteger(chunk) && chunk >= 1)) throw new ArgumentError(`chunkBytes must be a positive integer (got ${chunk})`);
    this.chunkBytes = chunk;
    this.scratchBytes = scratch;
    const base = this.fn('heapBase')();
    this.STATE = base;
    this.POOL = base + STATE_BYTES;
    this.SMALL = this.POOL + POOL_BYTES;
    this.SCRATCH = this.SMALL + SMALL_BYTES;
    const need = this.SCRATCH + scratch;
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / 65536));
    this.refreshViews();
  }

  static async create(opts: KernelsOptions = {}): Promise<Kernels> {
    const variant = opts.variant ?? defaultVariant();
    if (variant !== 'simd' && variant !== 'scalar') throw new ArgumentError(`unknown kernel variant ${String(variant)}`);
    return new Kernels(variant, await instantiateKernels(variant), opts);
  }

  /** Low-level access for tests, benchmarks and the fused merge pipelines (merge-kernels.ts), which use SCRATCH per call. */
  get raw(): { exports: KernelExports; memory: WebAssembly.Memory; scratch: number; scratchBytes: number; fn: (name: string) => Fn } {
    return { exports: this.x, memory: this.memory, scratch: this.SCRATCH, scratchBytes: this.scratchBytes, fn: (n) => this.fn(n) };
  }

  private fn(name: string): Fn {
    const f = this.x[name];
    if (typeof f !== 'function') throw new Error(`kernel export ${name} missing`);
    return f as Fn;
  }

  private refreshViews(): void {
    const b = this.memory.buffer;
    this.u8 = new Uint8Array(b);
    this.f32 = new Float32Array(b);
    this.f64 = new Float64Array(b);
    this.u32 = new Uint32Array(b);
    this.dv = new DataView(b);
  }

  /** Elements per piece when `parts` buffers of `bytesPerElem` bytes each share SCRATCH. */
  private pieceElems(bytesPerElem: number, unit = UNIT_ELEMS): number {
    const byChunk = Math.floor(this.chunkBytes / bytesPerElem);
    const byScratch = Math.floor((this.scratchBytes - 64 * 8) / bytesPerElem);
    return Math.max(unit, Math.floor(Math.min(byChunk, byScratch) / unit) * unit);
  }

  // ------------------------------------------------------------------ streaming accumulators

  /**
   * A streaming accumulator over `streams` parallel tensors of `dtype`, converted to `kind`
   * and reduced by `kernel(statePtr, ptrs..., n)`. Returns the feeder and state handling.
   */
  private numericStream(dtype: DType, kind: NumKind, conv: string | null, streams: number, stateBytes: number, init: (st: Uint8Array) => void,
    kernel: (st: number, ptrs: number[], n: number) => void) {
    const esize = DTYPES[dtype].size;
    const wsize = kind === 'f32' ? 4 : 8;
    const perElem = streams * (esize + (conv ? wsize : 0));
    const piece = Math.max(UNIT_ELEMS, Math.floor(Math.min(this.pieceElems(esize), Math.floor((this.scratchBytes - 1024) / perElem)) / UNIT_ELEMS) * UNIT_ELEMS);
    const inPtrs: number[] = [];
    const workPtrs: number[] = [];
    let p = this.SCRATCH;
    for (let s = 0; s < streams; s++) {
      inPtrs.push(p);
      p = align64(p + piece * esize);
      workPtrs.push(conv ? p : inPtrs[s]);
      if (conv) p = align64(p + piece * wsize);
    }
    const convFn = conv ? this.fn(conv) : null;
    const state = new Uint8Array(stateBytes);
    init(state);
    const ST = this.STATE;
    const feeder = new UnitFeeder(esize, inPtrs, piece, UNIT_ELEMS, () => this.u8, (n) => {
      if (convFn) for (let s = 0; s < streams; s++) convFn(inPtrs[s], workPtrs[s], n);
      kernel(ST, workPtrs, n);
    });
    return {
      update: (chunks: Uint8Array[]) => {
        this.u8.set(state, ST);
        feeder.update(chunks);
        state.set(this.u8.subarray(ST, ST + stateBytes));
      },
      /** Loads the state, processes the carried tail; the caller reads STATE. State is not committed. */
      finish: (what: string) => {
        this.u8.set(state, ST);
        feeder.finish(what);
      },
    };
  }

  statsAccumulator(dtype: DType): StatsAccumulator {
    const { kind, conv } = numericPath(dtype, 'stats');
    const k = this.fn(kind === 'f32' ? 'stats_f32' : 'stats_f64');
    const esize = DTYPES[dtype].size;
    const s = this.numericStream(dtype, kind, conv, 1, 128, (st) => {
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
        const d = this.dv, st = this.STATE;
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

  stats(dtype: DType, bytes: Uint8Array): TensorStats {
    const a = this.statsAccumulator(dtype);
    a.update(bytes);
    return a.result();
  }

  compareAccumulator(dtype: DType, opts: { rtol?: number; atol?: number } = {}): CompareAccumulator {
    const rtol = opts.rtol ?? 1e-5, atol = opts.atol ?? 1e-8;
    if (!(rtol >= 0 && atol >= 0)) throw new ArgumentError(`compare: rtol and atol must be >= 0 (got ${rtol}, ${atol})`);
    const { kind, conv } = numericPath(dtype, 'compare');
    const k = this.fn(kind === 'f32' ? 'compare_f32' : 'compare_f64');
    const esize = DTYPES[dtype].size;
    const s = this.numericStream(dtype, kind, conv, 2, 160, () => {}, (st, p, n) => k(st, p[0], p[1], n, rtol, atol));
    let bytes = 0;
    return {
      update: (a, b) => {
        if (a.length !== b.length) throw new ArgumentError(`compare: chunks must have the same length (got ${a.length} and ${b.length})`);
        bytes += a.length;
        s.update([a, b]);
      },
      result: () => {
        s.finish('compare');
        const d = this.dv, st = this.STATE;
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

  compare(dtype: DType, a: Uint8Array, b: Uint8Array, opts: { rtol?: number; atol?: number } = {}): CompareResult {
    const c = this.compareAccumulator(dtype, opts);
    c.update(a, b);
    return c.result();
  }

  private floatCompare(a: Float32Array | Float64Array, b: Float32Array | Float64Array, what: string, opts?: { rtol?: number; atol?: number }): CompareResult {
    if (a.length !== b.length) throw new ArgumentError(`${what}: arrays must have the same length (got ${a.length} and ${b.length})`);
    const f32 = a instanceof Float32Array;
    if (f32 !== b instanceof Float32Array) throw new ArgumentError(`${what}: both arrays must be Float32Array or both Float64Array`);
    return this.compare(f32 ? 'F32' : 'F64', bytesOf(a), bytesOf(b), opts);
  }

  dot(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
    return this.floatCompare(a, b, 'dot').dot;
  }
  l2Distance(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
    return this.floatCompare(a, b, 'l2Distance').l2Diff;
  }
  cosine(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
    return this.floatCompare(a, b, 'cosine').cosine;
  }
  /** numpy.allclose(a, b, rtol, atol) with equal_nan=False. */
  allclose(a: Float32Array | Float64Array, b: Float32Array | Float64Array, rtol = 1e-5, atol = 1e-8): boolean {
    return this.floatCompare(a, b, 'allclose', { rtol, atol }).notClose === 0;
  }

  histogram(dtype: DType, bytes: Uint8Array, bins: number, lo: number, hi: number): number[] {
    if (!(Number.isInteger(bins) && bins >= 1 && bins <= MAX_BINS)) throw new ArgumentError(`histogram: bins must be an integer in [1, ${MAX_BINS}] (got ${bins})`);
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw new ArgumentError(`histogram: need finite lo < hi (got ${lo}, ${hi})`);
    const { kind, conv } = numericPath(dtype, 'histogram');
    const esize = DTYPES[dtype].size;
    if (bytes.length % esize) throw new ArgumentError(`histogram: ${bytes.length} bytes is not a whole number of ${dtype} elements`);
    const k = this.fn(kind === 'f32' ? 'histogram_f32' : 'histogram_f64');
    const convFn = conv ? this.fn(conv) : null;
    const wsize = kind === 'f32' ? 4 : 8;
    const piece = this.pieceElems(esize + wsize);
    const IN = this.SCRATCH, WORK = align64(IN + piece * esize);
    const counts = new Array<number>(bins).fill(0);
    const C = this.SMALL;
    const n = bytes.length / esize;
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.u8.set(bytes.subarray(off * esize, (off + m) * esize), IN);
      this.u8.fill(0, C, C + bins * 4);
      if (convFn) convFn(IN, WORK, m);
      k(convFn ? WORK : IN, m, lo, hi, bins, C);
      const c = this.u32.subarray(C >> 2, (C >> 2) + bins);
      for (let i = 0; i < bins; i++) counts[i] += c[i];
    }
    return counts;
  }

  contentHasher(): ContentHasher {
    const state = new Uint8Array(64);
    const ST = this.STATE;
    this.fn('hash_init')(ST);
    state.set(this.u8.subarray(ST, ST + 64));
    const upd = this.fn('hash_update');
    const fin = this.fn('hash_final');
    const piece = this.pieceElems(1, 64);
    const IN = this.SCRATCH;
    const feeder = new UnitFeeder(1, [IN], piece, 64, () => this.u8, (n) => upd(ST, IN, n));
    let total = 0;
    return {
      update: (chunk) => {
        total += chunk.length;
        this.u8.set(state, ST);
        feeder.update([chunk]);
        state.set(this.u8.subarray(ST, ST + 64));
      },
      digest: () => {
        this.u8.set(state, ST);
        const tail = feeder.pending;
        const T = ST + TAIL_OFFSET;
        this.u8.set(tail, T);
        const OUT = T + 128;
        fin(ST, T, tail.length, total % 0x100000000, Math.floor(total / 0x100000000), OUT);
        return toHex(this.u8.subarray(OUT, OUT + 16));
      },
    };
  }

  contentHash(bytes: Uint8Array): string {
    const h = this.contentHasher();
    h.update(bytes);
    return h.digest();
  }

  private loadPool(seed: number): void {
    if (this.poolSeed !== seed) {
      this.fn('lsh_pool_init')(this.POOL, seed);
      this.poolSeed = seed;
    }
  }

  lshAccumulator(dtype: DType, opts: LshOptions = {}): LshAccumulator {
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
    const upd = this.fn('lsh_update');
    const s = this.numericStream(d, 'f32', conv, 1, 64 + D * 8, () => {}, (st, p, n) => {
      this.loadPool(seed);
      upd(st, this.POOL, p[0], n, D, seed);
    });
    return {
      update: (chunk) => s.update([chunk]),
      signature: () => {
        s.finish('lsh');
        this.fn('lsh_project')(this.STATE, D, size, seed, this.SMALL);
        return Array.from(this.f32.subarray(this.SMALL >> 2, (this.SMALL >> 2) + size));
      },
    };
  }

  lshSignature(dtype: DType, bytes: Uint8Array, opts: LshOptions = {}): number[] {
    const a = this.lshAccumulator(dtype, opts);
    a.update(bytes);
    return a.signature();
  }

  estimateL2(sigA: readonly number[], sigB: readonly number[]): number {
    return estimateL2(sigA, sigB);
  }

  /** E2LSH bucket ids floor((p_k + b_k) / width), b_k uniform in [0, width) from `seed`. */
  lshBuckets(sig: readonly number[], width: number, seed = 0): number[] {
    if (!(width > 0 && Number.isFinite(width))) throw new ArgumentError(`lshBuckets: width must be a positive number (got ${width})`);
    if (sig.length > SMALL_BYTES / 8) throw new ArgumentError('lshBuckets: signature too long');
    this.fn('lsh_offsets')(seed >>> 0, sig.length, this.SMALL);
    const u = this.f64.subarray(this.SMALL >> 3, (this.SMALL >> 3) + sig.length);
    return sig.map((p, k) => Math.floor((p + u[k] * width) / width));
  }

  // ------------------------------------------------------------------ conversion

  /** The elements of `bytes` as f32 (into `out` when given, which must have the element count). */
  toF32(dtype: DType, bytes: Uint8Array, out?: Float32Array): Float32Array {
    const d = checkDType(dtype, F32_CONV, 'toF32');
    const esize = DTYPES[d].size;
    if (bytes.length % esize) throw new ArgumentError(`toF32: ${bytes.length} bytes is not a whole number of ${d} elements`);
    const n = bytes.length / esize;
    out ??= new Float32Array(n);
    if (out.length !== n) throw new ArgumentError(`toF32: out has length ${out.length}, expected ${n}`);
    const conv = F32_CONV[d];
    if (!conv) {
      bytesOf(out).set(bytes);
      return out;
    }
    const f = this.fn(conv);
    const piece = this.pieceElems(esize + 4);
    const IN = this.SCRATCH, OUT = align64(IN + piece * esize);
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.u8.set(bytes.subarray(off * esize, (off + m) * esize), IN);
      f(IN, OUT, m);
      out.set(this.f32.subarray(OUT >> 2, (OUT >> 2) + m), off);
    }
    return out;
  }

  /** `values` encoded as `dtype` bytes (into `out` when given, which must have the byte length). */
  fromF32(dtype: DType, values: Float32Array, out?: Uint8Array): Uint8Array {
    const table: Partial<Record<DType, string | null>> = { F32: null, F16: 'f32_to_f16', BF16: 'f32_to_bf16', F64: 'f32_to_f64' };
    const d = checkDType(dtype, table, 'fromF32');
    const esize = DTYPES[d].size;
    const n = values.length;
    out ??= new Uint8Array(n * esize);
    if (out.length !== n * esize) throw new ArgumentError(`fromF32: out has ${out.length} bytes, expected ${n * esize}`);
    const conv = table[d];
    if (!conv) {
      out.set(bytesOf(values));
      return out;
    }
    const f = this.fn(conv);
    const piece = this.pieceElems(esize + 4);
    const IN = this.SCRATCH, OUT = align64(IN + piece * 4);
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.f32.set(values.subarray(off, off + m), IN >> 2);
      f(IN, OUT, m);
      out.set(this.u8.subarray(OUT, OUT + m * esize), off * esize);
    }
    return out;
  }

  // ------------------------------------------------------------------ element-wise (F32)

  private binary(name: string, a: Float32Array, b: Float32Array, out: Float32Array | undefined, js: (x: number, y: number) => number): Float32Array {
    if (a.length !== b.length) throw new ArgumentError(`${name}: arrays must have the same length (got ${a.length} and ${b.length})`);
    const n = a.length;
    out ??= new Float32Array(n);
    if (out.length !== n) throw new ArgumentError(`${name}: out has length ${out.length}, expected ${n}`);
    if (n < SMALL_N) {
      for (let i = 0; i < n; i++) out[i] = js(a[i], b[i]);
      return out;
    }
    const k = this.fn(name + '_f32');
    const piece = this.pieceElems(12);
    const A = this.SCRATCH, B = align64(A + piece * 4), O = align64(B + piece * 4);
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.f32.set(a.subarray(off, off + m), A >> 2);
      this.f32.set(b.subarray(off, off + m), B >> 2);
      k(A, B, O, m);
      out.set(this.f32.subarray(O >> 2, (O >> 2) + m), off);
    }
    return out;
  }

  /** CRC-32 (zip's) of `bytes`, continuing `crc`: crc32(b, crc32(a)) === crc32(a ++ b). */
  crc32(bytes: Uint8Array, crc = 0): number {
    if (bytes.length < 4096) return crc32Js(bytes, crc);
    const k = this.fn('crc32_update');
    const piece = this.scratchBytes;
    let c = crc >>> 0;
    for (let off = 0; off < bytes.length; off += piece) {
      const m = Math.min(piece, bytes.length - off);
      this.u8.set(bytes.subarray(off, off + m), this.SCRATCH);
      c = k(this.SCRATCH, m, c) >>> 0;
    }
    return c;
  }

  /** out = a - b */
  delta(a: Float32Array, b: Float32Array, out?: Float32Array): Float32Array {
    return this.binary('delta', a, b, out, (x, y) => x - y);
  }
  /** out = a + d */
  apply(a: Float32Array, d: Float32Array, out?: Float32Array): Float32Array {
    return this.binary('apply', a, d, out, (x, y) => x + y);
  }
  /** out = a * b */
  multiply(a: Float32Array, b: Float32Array, out?: Float32Array): Float32Array {
    return this.binary('multiply', a, b, out, (x, y) => x * y);
  }

  /** out = a * s (s rounded to f32) */
  scale(a: Float32Array, s: number, out?: Float32Array): Float32Array {
    const n = a.length;
    out ??= new Float32Array(n);
    if (out.length !== n) throw new ArgumentError(`scale: out has length ${out.length}, expected ${n}`);
    const sf = Math.fround(s);
    if (n < SMALL_N) {
      for (let i = 0; i < n; i++) out[i] = a[i] * sf;
      return out;
    }
    const k = this.fn('scale_f32');
    const piece = this.pieceElems(8);
    const A = this.SCRATCH, O = align64(A + piece * 4);
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.f32.set(a.subarray(off, off + m), A >> 2);
      k(A, sf, O, m);
      out.set(this.f32.subarray(O >> 2, (O >> 2) + m), off);
    }
    return out;
  }

  /** out = sum_i weights[i] * inputs[i], left to right in f32 (weights rounded to f32). */
  weightedSum(inputs: readonly Float32Array[], weights: readonly number[], out?: Float32Array): Float32Array {
    if (inputs.length === 0) throw new ArgumentError('weightedSum: need at least one input');
    if (inputs.length !== weights.length) throw new ArgumentError(`weightedSum: ${inputs.length} inputs but ${weights.length} weights`);
    if (inputs.length > 1024) throw new ArgumentError('weightedSum: at most 1024 inputs');
    const n = inputs[0].length;
    for (const x of inputs) if (x.length !== n) throw new ArgumentError('weightedSum: inputs must have the same length');
    out ??= new Float32Array(n);
    if (out.length !== n) throw new ArgumentError(`weightedSum: out has length ${out.length}, expected ${n}`);
    const k = inputs.length;
    const w = weights.map((x) => Math.fround(x));
    if (n < SMALL_N) {
      for (let i = 0; i < n; i++) {
        let acc = Math.fround(inputs[0][i] * w[0]);
        for (let j = 1; j < k; j++) acc = Math.fround(acc + Math.fround(inputs[j][i] * w[j]));
        out[i] = acc;
      }
      return out;
    }
    const fn = this.fn('weighted_sum_f32');
    const piece = this.pieceElems(4 * (k + 1));
    const PTRS = this.SMALL, WTS = this.SMALL + 4096;
    const ptrs: number[] = [];
    let p = this.SCRATCH;
    for (let j = 0; j < k; j++) {
      ptrs.push(p);
      p = align64(p + piece * 4);
    }
    const O = p;
    this.u32.set(ptrs, PTRS >> 2);
    this.f32.set(w, WTS >> 2);
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      for (let j = 0; j < k; j++) this.f32.set(inputs[j].subarray(off, off + m), ptrs[j] >> 2);
      fn(PTRS, WTS, k, O, m);
      out.set(this.f32.subarray(O >> 2, (O >> 2) + m), off);
    }
    return out;
  }

  // ------------------------------------------------------------------ sparse

  /**
   * Indices i where a[i] != b[i] and !(|a[i] - b[i]| <= threshold) (NaN differences are kept,
   * equal infinities are not), with values a[i] - b[i] (f32). Indices are u32: at most 2^32 elements.
   */
  sparseExtract(a: Float32Array, b: Float32Array, threshold = 0): { indices: Uint32Array; values: Float32Array } {
    if (a.length !== b.length) throw new ArgumentError(`sparseExtract: arrays must have the same length (got ${a.length} and ${b.length})`);
    if (a.length > 0x100000000) throw new ArgumentError('sparseExtract: more than 2^32 elements');
    const n = a.length;
    const k = this.fn('sparse_extract_f32');
    const piece = this.pieceElems(16);
    const A = this.SCRATCH, B = align64(A + piece * 4), I = align64(B + piece * 4), V = align64(I + piece * 4);
    const idxParts: Uint32Array[] = [], valParts: Float32Array[] = [];
    let total = 0;
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.f32.set(a.subarray(off, off + m), A >> 2);
      this.f32.set(b.subarray(off, off + m), B >> 2);
      const c = k(A, B, m, threshold, I, V);
      if (c) {
        const idx = this.u32.slice(I >> 2, (I >> 2) + c);
        if (off) for (let j = 0; j < c; j++) idx[j] += off;
        idxParts.push(idx);
        valParts.push(this.f32.slice(V >> 2, (V >> 2) + c));
        total += c;
      }
    }
    const indices = new Uint32Array(total), values = new Float32Array(total);
    let o = 0;
    for (let j = 0; j < idxParts.length; j++) {
      indices.set(idxParts[j], o);
      values.set(valParts[j], o);
      o += idxParts[j].length;
    }
    return { indices, values };
  }

  /** target[indices[j]] += values[j] in f32, in order (in place; returns target). */
  scatterAdd(target: Float32Array, indices: Uint32Array, values: Float32Array): Float32Array {
    if (indices.length !== values.length) throw new ArgumentError(`scatterAdd: ${indices.length} indices but ${values.length} values`);
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (i >= target.length) throw new ArgumentError(`scatterAdd: index ${i} out of range (length ${target.length})`);
      target[i] = target[i] + values[j];
    }
    return target;
  }

  /** Indices of the elements (elementSize bytes) whose bytes differ between a and b. */
  changedIndices(a: Uint8Array, b: Uint8Array, elementSize: number): Uint32Array;
  /** With `limit`: null as soon as more than `limit` elements differ (a dense change stops early). */
  changedIndices(a: Uint8Array, b: Uint8Array, elementSize: number, limit: number): Uint32Array | null;
  changedIndices(a: Uint8Array, b: Uint8Array, elementSize: number, limit = Infinity): Uint32Array | null {
    if (!(Number.isInteger(elementSize) && elementSize >= 1 && elementSize <= 4096)) throw new ArgumentError(`changedIndices: bad elementSize ${elementSize}`);
    if (a.length !== b.length) throw new ArgumentError(`changedIndices: lengths differ (${a.length} and ${b.length})`);
    if (a.length % elementSize) throw new ArgumentError(`changedIndices: ${a.length} bytes is not a whole number of ${elementSize}-byte elements`);
    const n = a.length / elementSize;
    if (n > 0x100000000) throw new ArgumentError('changedIndices: more than 2^32 elements');
    const k = this.fn('changed_indices');
    const piece = this.pieceElems(2 * elementSize + 4);
    const A = this.SCRATCH, B = align64(A + piece * elementSize), I = align64(B + piece * elementSize);
    const parts: Uint32Array[] = [];
    let total = 0;
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.u8.set(a.subarray(off * elementSize, (off + m) * elementSize), A);
      this.u8.set(b.subarray(off * elementSize, (off + m) * elementSize), B);
      const c = k(A, B, m, elementSize, I);
      if (total + c > limit) return null;
      if (c) {
        const idx = this.u32.slice(I >> 2, (I >> 2) + c);
        if (off) for (let j = 0; j < c; j++) idx[j] += off;
        parts.push(idx);
        total += c;
      }
    }
    const out = new Uint32Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** The elements at `indices`, concatenated. */
  gather(bytes: Uint8Array, elementSize: number, indices: Uint32Array): Uint8Array {
    const n = Math.floor(bytes.length / elementSize);
    const out = new Uint8Array(indices.length * elementSize);
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (i >= n) throw new ArgumentError(`gather: index ${i} out of range (${n} elements)`);
      const s = i * elementSize;
      if (elementSize === 1) out[j] = bytes[s];
      else out.set(bytes.subarray(s, s + elementSize), j * elementSize);
    }
    return out;
  }

  /** bytes[indices[j]] = values[j] (elements of elementSize bytes), in place, in order. */
  scatter(bytes: Uint8Array, elementSize: number, indices: Uint32Array, values: Uint8Array): Uint8Array {
    if (values.length !== indices.length * elementSize) throw new ArgumentError(`scatter: ${values.length} value bytes for ${indices.length} indices of ${elementSize} bytes`);
    const n = Math.floor(bytes.length / elementSize);
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (i >= n) throw new ArgumentError(`scatter: index ${i} out of range (${n} elements)`);
      if (elementSize === 1) bytes[i] = values[j];
      else bytes.set(values.subarray(j * elementSize, (j + 1) * elementSize), i * elementSize);
    }
    return bytes;
  }

  // ------------------------------------------------------------------ low rank, int8

  /** W += R·C in place (W rows×cols, R rows×rank, C rank×cols, row-major f32). */
  lowRankApply(W: Float32Array, rows: number, cols: number, R: Float32Array, C: Float32Array, rank: number): Float32Array {
    for (const [v, nm] of [[rows, 'rows'], [cols, 'cols'], [rank, 'rank']] as const) {
      if (!(Number.isInteger(v) && v >= 0)) throw new ArgumentError(`lowRankApply: ${nm} must be a non-negative integer (got ${v})`);
    }
    if (W.length !== rows * cols || R.length !== rows * rank || C.length !== rank * cols) {
      throw new ArgumentError(`lowRankApply: shapes do not match (W ${W.length}, R ${R.length}, C ${C.length} for ${rows}x${cols} rank ${rank})`);
    }
    if (rows === 0 || cols === 0 || rank === 0) return W;
    const k = this.fn('lowrank_apply_f32');
    const half = Math.floor(this.scratchBytes / 2);
    // column block: the rank×cb panel of C takes at most half of SCRATCH
    let cb = Math.min(cols, Math.max(16, Math.floor(half / (rank * 4) / 16) * 16));
    if (rank * cb * 4 > half) cb = Math.max(1, Math.floor(half / (rank * 4)));
    if (cb < 1) throw new ArgumentError(`lowRankApply: rank ${rank} too large for the kernel scratch`);
    const rb = Math.max(1, Math.min(rows, Math.floor(Math.min(half, this.chunkBytes * 4) / ((cb + rank) * 4))));
    const CP = this.SCRATCH, WP = align64(CP + rank * cb * 4), RP = align64(WP + rb * cb * 4);
    const f = this.f32;
    for (let c0 = 0; c0 < cols; c0 += cb) {
      const cw = Math.min(cb, cols - c0);
      for (let r = 0; r < rank; r++) f.set(C.subarray(r * cols + c0, r * cols + c0 + cw), (CP >> 2) + r * cw);
      for (let r0 = 0; r0 < rows; r0 += rb) {
        const rh = Math.min(rb, rows - r0);
        for (let i = 0; i < rh; i++) f.set(W.subarray((r0 + i) * cols + c0, (r0 + i) * cols + c0 + cw), (WP >> 2) + i * cw);
        f.set(R.subarray(r0 * rank, (r0 + rh) * rank), RP >> 2);
        k(WP, cw, RP, rank, CP, cw, rh, cw, rank);
        for (let i = 0; i < rh; i++) W.set(f.subarray((WP >> 2) + i * cw, (WP >> 2) + (i + 1) * cw), (r0 + i) * cols + c0);
      }
    }
    return W;
  }

  /** Blockwise absmax int8: q = round_half_even(x * 127 / max|block|), scales[b] = max|block| / 127. */
  quantizeInt8(values: Float32Array, blockSize = 64): { q: Int8Array; scales: Float32Array } {
    if (!(Number.isInteger(blockSize) && blockSize >= 1 && blockSize <= 1 << 20)) throw new ArgumentError(`quantizeInt8: bad blockSize ${blockSize}`);
    const n = values.length;
    const nb = Math.ceil(n / blockSize);
    const q = new Int8Array(n), scales = new Float32Array(nb);
    const k = this.fn('quantize_int8');
    const piece = Math.max(1, Math.floor(this.pieceElems(5 + 4 / blockSize, 1) / blockSize)) * blockSize;
    const X = this.SCRATCH, Q = align64(X + piece * 4), S = align64(Q + piece);
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.f32.set(values.subarray(off, off + m), X >> 2);
      k(X, m, blockSize, Q, S);
      q.set(new Int8Array(this.memory.buffer, Q, m), off);
      scales.set(this.f32.subarray(S >> 2, (S >> 2) + Math.ceil(m / blockSize)), off / blockSize);
    }
    return { q, scales };
  }

  dequantizeInt8(q: Int8Array, scales: Float32Array, blockSize = 64): Float32Array {
    if (!(Number.isInteger(blockSize) && blockSize >= 1 && blockSize <= 1 << 20)) throw new ArgumentError(`dequantizeInt8: bad blockSize ${blockSize}`);
    const n = q.length;
    if (scales.length !== Math.ceil(n / blockSize)) throw new ArgumentError(`dequantizeInt8: ${scales.length} scales for ${n} values in blocks of ${blockSize}`);
    const out = new Float32Array(n);
    const k = this.fn('dequantize_int8');
    const piece = Math.max(1, Math.floor(this.pieceElems(5 + 4 / blockSize, 1) / blockSize)) * blockSize;
    const Q = this.SCRATCH, O = align64(Q + piece), S = align64(O + piece * 4);
    for (let off = 0; off < n; off += piece) {
      const m = Math.min(piece, n - off);
      this.u8.set(new Uint8Array(q.buffer, q.byteOffset + off, m), Q);
      this.f32.set(scales.subarray(off / blockSize, Math.ceil((off + m) / blockSize)), S >> 2);
      k(Q, S, m, blockSize, O);
      out.set(this.f32.subarray(O >> 2, (O >> 2) + m), off);
    }
    return out;
  }
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
