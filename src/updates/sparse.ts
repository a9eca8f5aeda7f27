import { dtypeSize } from '../core/dtypes.ts';
import type { UpdateStep } from '../theta/metadata.ts';
import type { UpdateType } from './types.ts';
import { applyResidual, encodeResidual, MAX_SPARSE_ELEMENTS, tensorElements, type Residual } from './common.ts';

/**
 * Only the elements whose bits changed: their indices (u32) and their new values (raw elements
 * of the tensor's dtype), so the update is exact for every dtype.
 */
export const sparse: UpdateType = {
  name: 'sparse',
  incremental: true,
  description: 'indices and new values of the changed elements',
  async encode(ctx) {
    if (!ctx.prev || tensorElements(ctx) > MAX_SPARSE_ELEMENTS) return null;
    const prev = await ctx.prev();
    const r = await encodeResidual(ctx.kernels, ctx.store, dtypeSize(ctx.dtype), prev, ctx.next, ctx.next.length);
    if (r === null) return null;
    if (r === 'none') return { update: 'sparse', count: 0 };
    return { update: 'sparse', count: r.count, indices: r.indices, values: r.values };
  },
  async apply(step: UpdateStep, prev, ctx) {
    const out = prev!.slice();
    if (!step.count) return out;
    return applyResidual(ctx, step as unknown as Residual, out);
  },
};
