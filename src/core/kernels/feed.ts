/**
 * Streaming into the kernels: byte chunks of any length (a chunk may end inside an element; the
 * partial element is carried over) are fed in whole lane-aligned units. Every kernel call except
 * the last one of a tensor starts at a multiple of UNIT_ELEMS (16) elements, so the per-lane
 * summation order is fixed by element index and results do not depend on chunk sizes.
 */
import { ArgumentError } from '../errors.ts';
import { type DType, DTYPES } from '../dtypes.ts';
import { type KernelMemory, UNIT_ELEMS, align64 } from './memory.ts';
import type { ConvName, NumKind } from './convert.ts';

/**
 * Feeds `k` parallel byte streams of equal length to a kernel in whole lane-aligned units,
 * carrying partial units (and partial elements) across `update` calls.
 */
export class UnitFeeder {
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

/**
 * A streaming accumulator over `streams` parallel tensors of `dtype`, converted to `kind`
 * and reduced by `kernel(statePtr, ptrs..., n)`. Returns the feeder and state handling.
 */
export function numericStream(mem: KernelMemory, dtype: DType, kind: NumKind, conv: ConvName | null, streams: number, stateBytes: number, init: (st: Uint8Array) => void,
  kernel: (st: number, ptrs: number[], n: number) => void) {
  const esize = DTYPES[dtype].size;
  const wsize = kind === 'f32' ? 4 : 8;
  const perElem = streams * (esize + (conv ? wsize : 0));
  const piece = Math.max(UNIT_ELEMS, Math.floor(Math.min(mem.pieceElems(esize), Math.floor((mem.scratchBytes - 1024) / perElem)) / UNIT_ELEMS) * UNIT_ELEMS);
  const inPtrs: number[] = [];
  const workPtrs: number[] = [];
  let p = mem.SCRATCH;
  for (let s = 0; s < streams; s++) {
    inPtrs.push(p);
    p = align64(p + piece * esize);
    workPtrs.push(conv ? p : inPtrs[s]);
    if (conv) p = align64(p + piece * wsize);
  }
  mem.reach(p);
  const convFn = conv ? mem.x[conv] : null;
  const state = new Uint8Array(stateBytes);
  init(state);
  const ST = mem.STATE;
  const feeder = new UnitFeeder(esize, inPtrs, piece, UNIT_ELEMS, () => mem.u8, (n) => {
    if (convFn) for (let s = 0; s < streams; s++) convFn(inPtrs[s], workPtrs[s], n);
    kernel(ST, workPtrs, n);
  });
  return {
    update: (chunks: Uint8Array[]) => {
      mem.u8.set(state, ST);
      feeder.update(chunks);
      state.set(mem.u8.subarray(ST, ST + stateBytes));
    },
    /** Loads the state, processes the carried tail; the caller reads STATE. State is not committed. */
    finish: (what: string) => {
      mem.u8.set(state, ST);
      feeder.finish(what);
    },
  };
}
