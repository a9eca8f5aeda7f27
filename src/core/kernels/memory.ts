/**
 * One kernel instance and its Wasm memory layout; every host file in this folder works on it.
 *
 * ## Wasm memory layout (one instance per `Kernels`; SCRATCH grown as calls reach into it)
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
 * Set-up grows the memory only up to SCRATCH: growing all of it there (32 MiB) cost every process
 * that creates the kernels ~3-5 ms plus a garbage collection for the external memory (issue 18's
 * start-up). Each call lays out its part of SCRATCH and calls `reach(end)` before writing to it:
 * the first growth takes FIRST_SCRATCH_BYTES (what calls cut at the default 1 MiB chunkBytes use),
 * a call reaching further grows SCRATCH whole. A growth replaces the views (u8, f32, ...): hosts read
 * them from the KernelMemory after their `reach`, never keep one across calls.
 */
import { ArgumentError } from '../errors.ts';
import { type KernelExports, type KernelVariant, kernelExports } from '../wasm.ts';

/** Elements per lane-aligned unit: every non-final kernel call starts at a multiple of this. */
export const UNIT_ELEMS = 16;
/** Default largest input piece per kernel call. 1 MiB keeps a piece and its outputs in L2. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;
/** Default data scratch; at most MAX_SCRATCH_BYTES so the module stays small in browsers. */
export const DEFAULT_SCRATCH_BYTES = 32 << 20;
export const MAX_SCRATCH_BYTES = 64 << 20;

/** SCRATCH grown by the first call that reaches into it (then all of scratchBytes when a call needs more). */
export const FIRST_SCRATCH_BYTES = 2 << 20;

const STATE_BYTES = 64 << 10;
export const TAIL_OFFSET = 60 << 10;
const POOL_BYTES = 16 << 10;
export const SMALL_BYTES = 256 << 10;

export interface KernelsOptions {
  variant?: KernelVariant;
  /** Largest input piece per kernel call (tests vary it; results never depend on it). */
  chunkBytes?: number;
  scratchBytes?: number;
}

export const align64 = (n: number) => Math.ceil(n / 64) * 64;

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A kernel instance with its regions placed and its memory grown; the views over that memory. */
export class KernelMemory {
  readonly x: KernelExports;
  readonly memory: WebAssembly.Memory;
  readonly chunkBytes: number;
  readonly scratchBytes: number;
  readonly STATE: number;
  readonly POOL: number;
  readonly SMALL: number;
  readonly SCRATCH: number;
  /** The seed whose LSH sign pool is in POOL (-1: none yet); lsh.ts keeps it. */
  poolSeed = -1;
  /** Views over the whole memory, replaced when `reach` grows it. */
  u8!: Uint8Array;
  f32!: Float32Array;
  f64!: Float64Array;
  u32!: Uint32Array;
  dv!: DataView;
  /** The end of the memory the views cover (at least SCRATCH). */
  private end = 0;

  constructor(inst: WebAssembly.Instance, opts: KernelsOptions) {
    this.x = kernelExports(inst);
    this.memory = this.x.memory;
    const scratch = opts.scratchBytes ?? DEFAULT_SCRATCH_BYTES;
    if (!(scratch >= 1 << 20 && scratch <= MAX_SCRATCH_BYTES)) {
      throw new ArgumentError(`scratchBytes must be between 1 MiB and ${MAX_SCRATCH_BYTES} (got ${scratch})`);
    }
    const chunk = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!(Number.isInteger(chunk) && chunk >= 1)) throw new ArgumentError(`chunkBytes must be a positive integer (got ${chunk})`);
    this.chunkBytes = chunk;
    this.scratchBytes = scratch;
    const base = this.x.heapBase();
    this.STATE = base;
    this.POOL = base + STATE_BYTES;
    this.SMALL = this.POOL + POOL_BYTES;
    this.SCRATCH = this.SMALL + SMALL_BYTES;
    // STATE, POOL and SMALL now (kernels write them directly); SCRATCH when a call reaches into it
    this.growTo(this.SCRATCH);
  }

  /**
   * Makes the memory reach `end` (an address in SCRATCH, past a call's layout): the first growth
   * takes FIRST_SCRATCH_BYTES of SCRATCH, a later one all of it. Growing replaces the views.
   */
  reach(end: number): void {
    if (end <= this.end) return;
    const whole = this.SCRATCH + this.scratchBytes;
    this.growTo(Math.max(end, this.end > this.SCRATCH ? whole : Math.min(whole, this.SCRATCH + FIRST_SCRATCH_BYTES)));
  }

  private growTo(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / 65536));
    this.end = end;
    const b = this.memory.buffer;
    if (this.u8?.buffer === b) return;
    this.u8 = new Uint8Array(b);
    this.f32 = new Float32Array(b);
    this.f64 = new Float64Array(b);
    this.u32 = new Uint32Array(b);
    this.dv = new DataView(b);
  }

  /** Elements per piece when `parts` buffers of `bytesPerElem` bytes each share SCRATCH. */
  pieceElems(bytesPerElem: number, unit = UNIT_ELEMS): number {
    const byChunk = Math.floor(this.chunkBytes / bytesPerElem);
    const byScratch = Math.floor((this.scratchBytes - 64 * 8) / bytesPerElem);
    return Math.max(unit, Math.floor(Math.min(byChunk, byScratch) / unit) * unit);
  }
}
