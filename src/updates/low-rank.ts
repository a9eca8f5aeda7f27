import { dtypeSize } from '../core/dtypes.ts';
import { ArgumentError, ThetaError } from '../core/errors.ts';
import type { ObjectRef, UpdateStep } from '../theta/metadata.ts';
import type { UpdateType } from './types.ts';
import { applyResidual, encodeResidual, matrixShape, MAX_SPARSE_ELEMENTS, sideFloat32, tensorElements, type Residual } from './common.ts';

/**
 * W = W₀ + R·C with R (rows×r) and C (r×cols) side-loaded as `<tensor>/R` and `<tensor>/C`.
 * Computed in float32; elements whose bits our arithmetic does not reproduce (a different
 * summation order than the trainer's) are stored as an exact residual, so checkout is byte-exact.
 */
export const lowRank: UpdateType = {
  name: 'low-rank',
  incremental: true,
  description: 'W = W0 + R·C from side data <tensor>/R and <tensor>/C, plus an exact residual',
  async encode(ctx) {
    const R = sideFloat32(ctx.kernels, ctx, 'R');
    const C = sideFloat32(ctx.kernels, ctx, 'C');
    if (!R || !C || !ctx.prev || tensorElements(ctx) > MAX_SPARSE_ELEMENTS) return null;
    const [rows, cols] = matrixShape(ctx.shape);
    const rank = R.shape[R.shape.length - 1];
    if (R.shape.length !== 2 || C.shape.length !== 2 || R.shape[0] !== rows || C.shape[0] !== rank || C.shape[1] !== cols) {
      throw new ArgumentError(
        `tensor '${ctx.name}': low-rank side data has R ${JSON.stringify(R.shape)} and C ${JSON.stringify(C.shape)}, expected [${rows}, r] and [r, ${cols}]`,
        { tensor: ctx.name },
      );
    }
    const prev = await ctx.prev();
    const candidate = compute(ctx.kernels, ctx.dtype, prev, rows, cols, R.values, C.values, rank);
    const r = await encodeResidual(ctx.kernels, ctx.store, dtypeSize(ctx.dtype), candidate, ctx.next, ctx.next.length / 2);
    if (r === null) return null; // R·C does not explain this change: store it another way
    const step: UpdateStep = {
      update: 'low-rank',
      rank,
      R: await ctx.store.put(f32Bytes(R.values)),
      C: await ctx.store.put(f32Bytes(C.values)),
    };
    if (r !== 'none') step.residual = r;
    return step;
  },
  async apply(step, prev, ctx) {
    const [rows, cols] = matrixShape(ctx.shape);
    const rank = step.rank as number;
    const R = await f32Object(ctx.store, step.R as ObjectRef, rows * rank, ctx.name);
    const C = await f32Object(ctx.store, step.C as ObjectRef, rank * cols, ctx.name);
    const out = compute(ctx.kernels, ctx.dtype, prev!, rows, cols, R, C, rank);
    return applyResidual(ctx, step.residual as Residual | undefined, out);
  },
};

function compute(
  kernels: import('../core/kernels.ts').Kernels, dtype: import('../core/dtypes.ts').DType, prev: Uint8Array,
  rows: number, cols: number, R: Float32Array, C: Float32Array, rank: number,
): Uint8Array {
  // R·C first (summed over k in order, in float32, from zero), then added to W: the order in which
  // PyTorch's `W += R @ C` rounds, so the residual is empty for updates made that way.
  const product = kernels.lowRankApply(new Float32Array(rows * cols), rows, cols, R, C, rank);
  return kernels.fromF32(dtype, kernels.apply(kernels.toF32(dtype, prev), product));
}

export function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export async function f32Object(store: { get(oid: string): Promise<Uint8Array> }, ref: ObjectRef, n: number, name: string): Promise<Float32Array> {
  const b = await store.get(ref.oid);
  if (b.length !== n * 4) throw new ThetaError('E_OBJECT_CORRUPT', `tensor '${name}': object ${ref.oid} has ${b.length} bytes, expected ${n * 4}`, { tensor: name });
  const copy = b.byteOffset % 4 ? b.slice() : b;
  return new Float32Array(copy.buffer, copy.byteOffset, n);
}
