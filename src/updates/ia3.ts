import { dtypeSize, elementCount } from '../core/dtypes.ts';
import { ArgumentError } from '../core/errors.ts';
import type { ObjectRef, UpdateStep } from '../theta/metadata.ts';
import type { UpdateType } from './types.ts';
import type { Kernels } from '../core/kernels.ts';
import type { DType } from '../core/dtypes.ts';
import { applyResidual, encodeResidual, MAX_SPARSE_ELEMENTS, sideFloat32, tensorElements, type Residual } from './common.ts';
import { f32Bytes, f32Object } from './low-rank.ts';

/**
 * IA3: W = W₀ ⊙ v with v side-loaded as `<tensor>/ia3`, broadcast against W the NumPy way
 * (shapes aligned on the right, size-1 dimensions repeated). Exact through a residual.
 */
export const ia3: UpdateType = {
  name: 'ia3',
  incremental: true,
  description: 'W = W0 ⊙ v (broadcast) from side data <tensor>/ia3, plus an exact residual',
  async encode(ctx) {
    const v = sideFloat32(ctx.kernels, ctx, 'ia3');
    if (!v || !ctx.prev || tensorElements(ctx) > MAX_SPARSE_ELEMENTS) return null;
    broadcastStrides(v.shape, ctx.shape, ctx.name); // validates
    const prev = await ctx.prev();
    const candidate = compute(ctx.kernels, ctx.dtype, prev, ctx.shape, v.shape, v.values, ctx.name);
    const r = await encodeResidual(ctx.kernels, ctx.store, dtypeSize(ctx.dtype), candidate, ctx.next, ctx.next.length / 2);
    if (r === null) return null;
    const step: UpdateStep = { update: 'ia3', shape: v.shape, v: await ctx.store.put(f32Bytes(v.values)) };
    if (r !== 'none') step.residual = r;
    return step;
  },
  async apply(step, prev, ctx) {
    const vshape = step.shape as number[];
    const v = await f32Object(ctx.store, step.v as ObjectRef, elementCount(vshape), ctx.name);
    const out = compute(ctx.kernels, ctx.dtype, prev!, ctx.shape, vshape, v, ctx.name);
    return applyResidual(ctx, step.residual as Residual | undefined, out);
  },
};

/** Strides into v for each dimension of W (0 where v broadcasts). */
function broadcastStrides(vshape: number[], wshape: number[], name: string): number[] {
  if (vshape.length > wshape.length) throw new ArgumentError(`tensor '${name}': ia3 vector of shape ${JSON.stringify(vshape)} has more dimensions than the tensor ${JSON.stringify(wshape)}`);
  const strides = new Array(wshape.length).fill(0);
  let s = 1;
  for (let i = 1; i <= vshape.length; i++) {
    const vd = vshape[vshape.length - i];
    const wd = wshape[wshape.length - i];
    if (vd !== 1 && vd !== wd) {
      throw new ArgumentError(`tensor '${name}': ia3 vector of shape ${JSON.stringify(vshape)} does not broadcast to ${JSON.stringify(wshape)}`, { tensor: name });
    }
    strides[wshape.length - i] = vd === 1 ? 0 : s;
    s *= vd;
  }
  return strides;
}

function compute(kernels: Kernels, dtype: DType, prev: Uint8Array, wshape: number[], vshape: number[], v: Float32Array, name: string): Uint8Array {
  const W = kernels.toF32(dtype, prev);
  const strides = broadcastStrides(vshape, wshape, name);
  // expand v to W's shape (an odometer over W's dimensions), then multiply with the kernel
  const full = new Float32Array(W.length);
  const nd = wshape.length;
  const idx = new Array(nd).fill(0);
  let off = 0;
  for (let i = 0; i < full.length; i++) {
    full[i] = v[off];
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      off += strides[d];
      if (idx[d] < wshape[d]) break;
      off -= strides[d] * wshape[d];
      idx[d] = 0;
    }
  }
  return kernels.fromF32(dtype, kernels.multiply(W, full));
}
