import type { MergeStrategy } from '../types.ts';
import { electAndMerge, taskVectors } from './ties.ts';

/**
 * A counter-based generator: a uniform number in [0, 1) for (seed, model, element), the same on
 * every runtime (32-bit integer mixing only), and independent of how the tensor is processed.
 */
export function dareUniform(seed: number, model: number, index: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(model + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (index >>> 0), 0x27d4eb2d);
  h ^= Math.floor(index / 4294967296);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** Drop each entry with probability 1 − density, rescale the survivors by 1/density. */
export function dareDrop(tau: Float32Array, density: number, seed: number, model: number): Float32Array {
  const out = new Float32Array(tau.length);
  if (density <= 0) return out;
  const scale = 1 / density;
  for (let i = 0; i < tau.length; i++) if (dareUniform(seed, model, i) < density) out[i] = tau[i] * scale;
  return out;
}

/** DARE (Yu et al. 2023): random drop and rescale of each task vector, then a linear or TIES combination. */
export const dare: MergeStrategy = {
  name: 'dare',
  description: 'DARE: drop each change entry with probability 1−density (seeded), rescale by 1/density, then combine linearly or with TIES sign election',
  params: [
    { name: 'density', description: 'probability of keeping an entry', default: 0.5, min: 0, max: 1 },
    { name: 'lambda', description: 'scale of the combined task vector', default: 1, min: -100, max: 100 },
    { name: 'seed', description: 'seed of the drop pattern', default: 0, min: 0, max: 4294967295 },
    { name: 'combine', description: 'how the dropped task vectors are combined', default: 'linear', choices: ['linear', 'ties'] },
  ],
  needsBase: true,
  merge(input, p, k) {
    const { base, taus } = taskVectors(input, k);
    const dropped = taus.map((t, m) => dareDrop(t, p.density as number, p.seed as number, m));
    const lambda = p.lambda as number;
    if (p.combine === 'ties') return { values: k.weightedSum([base, electAndMerge(dropped)], [1, lambda]) };
    return { values: k.weightedSum([base, ...dropped], [1, ...dropped.map(() => lambda)]) };
  },
};
