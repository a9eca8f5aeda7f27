import { isMergeDType, weightedSumBytes } from '../../core/merge-kernels.ts';
import type { MergeStrategy } from '../types.ts';
import { floats } from './linear.ts';

/** Above this |cos| the two tensors are treated as parallel and interpolated linearly. */
export const SLERP_PARALLEL = 0.9995;

/** Spherical interpolation between ours (t = 0) and theirs (t = 1), per tensor. */
export const slerp: MergeStrategy = {
  name: 'slerp',
  description: 'spherical interpolation from ours (t=0) to theirs (t=1); linear when the two are nearly parallel',
  params: [{ name: 't', description: 'position between ours (0) and theirs (1)', default: 0.5, min: 0, max: 1 }],
  needsBase: false,
  minModels: 2,
  maxModels: 2,
  merge(input, p, k) {
    const a = floats(k, input, input.models[0]);
    const b = floats(k, input, input.models[1]);
    const t = p.t as number;
    const cos = k.cosine(a, b);
    let w: number[];
    if (!Number.isFinite(cos) || Math.abs(cos) > SLERP_PARALLEL) w = [1 - t, t];
    else {
      const theta = Math.acos(cos);
      const s = Math.sin(theta);
      w = [Math.sin((1 - t) * theta) / s, Math.sin(t * theta) / s];
    }
    if (isMergeDType(input.dtype)) return { bytes: weightedSumBytes(k, input.dtype, input.models, w, input.out) };
    return { values: k.weightedSum([a, b], w) };
  },
};
