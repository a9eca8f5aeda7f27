import type { Kernels } from '../../core/kernels.ts';
import type { MergeStrategy } from '../types.ts';

export function floats(k: Kernels, input: { dtype: import('../../core/dtypes.ts').DType }, bytes: Uint8Array): Float32Array {
  return k.toF32(input.dtype, bytes);
}

/**
 * α·ours + (1−α)·theirs for two models (the reference divides by two again; we do not: merging
 * A with A gives A). With more models (merge-models) it is the plain mean.
 */
export const average: MergeStrategy = {
  name: 'average',
  description: 'weighted average: alpha·ours + (1−alpha)·theirs (mean of all models for more than two)',
  params: [{ name: 'alpha', description: 'weight of ours (the first model)', default: 0.5, min: 0, max: 1 }],
  needsBase: false,
  merge(input, p, k) {
    const xs = input.models.map((m) => floats(k, input, m));
    const w = xs.length === 2 ? [p.alpha as number, 1 - (p.alpha as number)] : xs.map(() => 1 / xs.length);
    return { values: k.weightedSum(xs, w) };
  },
};

/** base + λ·Σ(θᵢ − base). */
export const taskArithmetic: MergeStrategy = {
  name: 'task-arithmetic',
  description: 'base + lambda·Σ(model − base): add up every side\'s change',
  params: [{ name: 'lambda', description: 'scale of the summed task vectors', default: 1, min: -100, max: 100 }],
  needsBase: true,
  merge(input, p, k) {
    const base = floats(k, input, input.base!);
    const lambda = p.lambda as number;
    // Σ λ(θᵢ − base) + base, with each task vector formed exactly as θᵢ − base in f32
    const deltas = input.models.map((m) => k.delta(floats(k, input, m), base));
    const sum = k.weightedSum([base, ...deltas], [1, ...deltas.map(() => lambda)]);
    return { values: sum };
  },
};
