/**
 * Low-rank updates (assembly/lowrank.ts): W += R·C in place, in column and row blocks that fit SCRATCH.
 */
import { ArgumentError } from '../errors.ts';
import { type KernelMemory, align64 } from './memory.ts';

/** W += R·C in place (W rows×cols, R rows×rank, C rank×cols, row-major f32). */
export function lowRankApply(mem: KernelMemory, W: Float32Array, rows: number, cols: number, R: Float32Array, C: Float32Array, rank: number): Float32Array {
  for (const [v, nm] of [[rows, 'rows'], [cols, 'cols'], [rank, 'rank']] as const) {
    if (!(Number.isInteger(v) && v >= 0)) throw new ArgumentError(`lowRankApply: ${nm} must be a non-negative integer (got ${v})`);
  }
  if (W.length !== rows * cols || R.length !== rows * rank || C.length !== rank * cols) {
    throw new ArgumentError(`lowRankApply: shapes do not match (W ${W.length}, R ${R.length}, C ${C.length} for ${rows}x${cols} rank ${rank})`);
  }
  if (rows === 0 || cols === 0 || rank === 0) return W;
  const k = mem.x.lowrank_apply_f32;
  const half = Math.floor(mem.scratchBytes / 2);
  // column block: the rank×cb panel of C takes at most half of SCRATCH
  let cb = Math.min(cols, Math.max(16, Math.floor(half / (rank * 4) / 16) * 16));
  if (rank * cb * 4 > half) cb = Math.max(1, Math.floor(half / (rank * 4)));
  if (cb < 1) throw new ArgumentError(`lowRankApply: rank ${rank} too large for the kernel scratch`);
  const rb = Math.max(1, Math.min(rows, Math.floor(Math.min(half, mem.chunkBytes * 4) / ((cb + rank) * 4))));
  const CP = mem.SCRATCH, WP = align64(CP + rank * cb * 4), RP = align64(WP + rb * cb * 4);
  mem.reach(RP + rb * rank * 4);
  const f = mem.f32;
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
