import type { Kernels } from '../../core/kernels.ts';
import { isMergeDType, taskArithmeticBytes, weightedSumBytes } from '../../core/merge-kernels.ts';
import type { MergeStrategy } from '../types.ts';

/** The tensor's values as float32: a view for aligned F32 bytes (strategies never write to their inputs), else converted. */
export function floats(k: Kernels, input: { dtype: import('../../core/dtypes.ts').DType }, bytes: Uint8Array): Float32Array {
  if (input.dtype === 'F32' && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return k.toF32(input.dtype, bytes);
}

/** Bytes of merged float32 values in the tensor's dtype (a view when it is F32). */
export function toDtypeBytes(k: Kernels, dtype: import('../../core/dtypes.ts').DType, values: Float32Array): Uint8Array {
  return dtype === 'F32' ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength) : k.fromF32(dtype, values);
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
    const m = input.models.length;
    const w = m === 2 ? [p.alpha as number, 1 - (p.alpha as number)] : input.models.map(() => 1 / m);
    // float dtypes: one fused pass over the bytes (convert, sum, convert back); others as f32 values
    if (isMergeDType(input.dtype)) return { bytes: weightedSumBytes(k, input.dtype, input.models, w, input.out) };
    return { values: k.weightedSum(input.models.map((x) => floats(k, input, x)), w) };
  },
};

/** base + λ·Σ(θᵢ − base). */
export const taskArithmetic: MergeStrategy = {
  name: 'task-arithmetic',
  description: 'base + lambda·Σ(model − base): add up every side\'s change',
  params: [{ name: 'lambda', description: 'scale of the summed task vectors', default: 1, min: -100, max: 100 }],
  needsBase: true,
  merge(input, p, k) {
    const lambda = p.lambda as number;
    if (isMergeDType(input.dtype)) return { bytes: taskArithmeticBytes(k, input.dtype, input.base!, input.models, lambda, input.out) };
    const base = floats(k, input, input.base!);
    // Σ λ(θᵢ − base) + base, with each task vector formed exactly as θᵢ − base in f32
    const deltas = input.models.map((m) => k.delta(floats(k, input, m), base));
    const sum = k.weightedSum([base, ...deltas], [1, ...deltas.map(() => lambda)]);
    return { values: sum };
  },
};
