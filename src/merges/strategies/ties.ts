import type { Kernels } from '../../core/kernels.ts';
import type { MergeInput, MergeStrategy } from '../types.ts';
import { floats } from './linear.ts';

/**
 * Keep the `keep` largest |x| of a vector (ties at the threshold: lower index first), zero the rest.
 * Selection by quickselect on a copy of the magnitudes: O(n).
 */
export function trimTopK(x: Float32Array, density: number): Float32Array {
  const n = x.length;
  const keep = Math.min(n, Math.ceil(density * n - 1e-9));
  const out = new Float32Array(n);
  if (keep <= 0) return out;
  if (keep >= n) {
    out.set(x);
    return out;
  }
  const mags = new Float32Array(n);
  for (let i = 0; i < n; i++) mags[i] = Math.abs(x[i]);
  const t = kthLargest(mags, keep);
  let above = 0;
  for (let i = 0; i < n; i++) if (Math.abs(x[i]) > t) above++;
  let atT = keep - above; // how many elements equal to the threshold still fit
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[i]);
    if (a > t) out[i] = x[i];
    else if (a === t && atT > 0) {
      out[i] = x[i];
      atT--;
    }
  }
  return out;
}

/** The k-th largest value (1-based) of `a` (reordered in place). */
function kthLargest(a: Float32Array, k: number): number {
  let lo = 0, hi = a.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) {
        const tmp = a[i]; a[i] = a[j]; a[j] = tmp;
        i++; j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target];
  }
  return a[target];
}

/**
 * Sign election and disjoint mean (TIES steps 2–3): the sign of Σ τᵢ per element; the mean of the
 * entries that agree with it (zeros never count; no agreeing entry → 0).
 */
export function electAndMerge(taus: Float32Array[]): Float32Array {
  const n = taus[0].length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const t of taus) s += t[i];
    if (s === 0 || Number.isNaN(s)) continue;
    let sum = 0, count = 0;
    for (const t of taus) {
      const v = t[i];
      if (v !== 0 && (v > 0) === (s > 0)) {
        sum += v;
        count++;
      }
    }
    out[i] = count ? sum / count : 0;
  }
  return out;
}

export function taskVectors(input: MergeInput, k: Kernels): { base: Float32Array; taus: Float32Array[] } {
  const base = floats(k, input, input.base!);
  return { base, taus: input.models.map((m) => k.delta(floats(k, input, m), base)) };
}

/** TIES-merging (Yadav et al. 2023): trim, elect sign, disjoint mean, scale by λ, add to base. */
export const ties: MergeStrategy = {
  name: 'ties',
  description: 'TIES: keep each change\'s top-density entries by magnitude, elect a sign per entry, average the agreeing entries, scale by lambda, add to base',
  params: [
    { name: 'density', description: 'fraction of each task vector kept (by magnitude)', default: 0.2, min: 0, max: 1 },
    { name: 'lambda', description: 'scale of the merged task vector', default: 1, min: -100, max: 100 },
  ],
  needsBase: true,
  merge(input, p, k) {
    const { base, taus } = taskVectors(input, k);
    const merged = electAndMerge(taus.map((t) => trimTopK(t, p.density as number)));
    return { values: k.weightedSum([base, merged], [1, p.lambda as number]) };
  },
};
