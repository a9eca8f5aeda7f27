import type { Kernels } from '../../core/kernels.ts';
import { isMergeDType, tiesBytes } from '../../core/merge-kernels.ts';
import type { MergeInput, MergeStrategy } from '../types.ts';
import { floats } from './linear.ts';

/**
 * Keep the `keep` largest |x| of a vector (ties at the threshold: lower index first), zero the rest.
 * The threshold is found by a radix select on the float bits: for non-negative floats the order of
 * the values is the order of their bit patterns, so two histogram passes (high 16 bits, then the
 * low 15 bits within the chosen bucket) find the exact k-th largest magnitude in O(n).
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
  const aligned = x.byteOffset % 4 === 0 ? x : x.slice();
  const u = new Uint32Array(aligned.buffer, aligned.byteOffset, n);
  const hi = new Uint32Array(1 << 16);
  for (let i = 0; i < n; i++) hi[(u[i] & 0x7fffffff) >>> 15]++;
  let need = keep;
  let b1 = 0xffff;
  for (; b1 >= 0; b1--) {
    if (hi[b1] >= need) break;
    need -= hi[b1];
  }
  const lo = new Uint32Array(1 << 15);
  for (let i = 0; i < n; i++) {
    const m = u[i] & 0x7fffffff;
    if (m >>> 15 === b1) lo[m & 0x7fff]++;
  }
  let b2 = 0x7fff;
  for (; b2 >= 0; b2--) {
    if (lo[b2] >= need) break;
    need -= lo[b2];
  }
  const t = (b1 << 15) | b2; // the k-th largest magnitude's bits; `need` of the elements equal to it are kept
  for (let i = 0; i < n; i++) {
    const m = u[i] & 0x7fffffff;
    if (m > t) out[i] = x[i];
    else if (m === t && need > 0) {
      out[i] = x[i];
      need--;
    }
  }
  return out;
}

/**
 * Sign election and disjoint mean (TIES steps 2–3): the sign of Σ τᵢ per element; the mean of the
 * entries that agree with it (zeros never count; no agreeing entry → 0).
 */
export function electAndMerge(taus: Float32Array[]): Float32Array {
  const n = taus[0].length;
  const out = new Float32Array(n);
  if (taus.length === 2) {
    // the common case (ours, theirs), without the inner loop
    const a = taus[0], b = taus[1];
    for (let i = 0; i < n; i++) {
      const x = a[i], y = b[i];
      const s = x + y;
      if (s > 0) out[i] = x > 0 ? (y > 0 ? (x + y) / 2 : x) : y;
      else if (s < 0) out[i] = x < 0 ? (y < 0 ? (x + y) / 2 : x) : y;
    }
    return out;
  }
  const k = taus.length;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += taus[j][i];
    if (!(s > 0) && !(s < 0)) continue; // zero or NaN: no sign to elect
    let sum = 0, count = 0;
    for (let j = 0; j < k; j++) {
      const v = taus[j][i];
      if (s > 0 ? v > 0 : v < 0) {
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

/**
 * TIES-merging (Yadav et al. 2023): trim, elect sign, disjoint mean, scale by λ, add to base.
 * Float dtypes run in the Wasm kernels (core/merge-kernels.ts: the threshold selection, then one
 * fused pass), bit for bit what trimTopK, electAndMerge and weightedSum above give.
 */
export const ties: MergeStrategy = {
  name: 'ties',
  description: 'TIES: keep each change\'s top-density entries by magnitude, elect a sign per entry, average the agreeing entries, scale by lambda, add to base',
  params: [
    { name: 'density', description: 'fraction of each task vector kept (by magnitude)', default: 0.2, min: 0, max: 1 },
    { name: 'lambda', description: 'scale of the merged task vector', default: 1, min: -100, max: 100 },
  ],
  needsBase: true,
  merge(input, p, k) {
    if (isMergeDType(input.dtype)) return { bytes: tiesBytes(k, input.dtype, input.base!, input.models, p.density as number, p.lambda as number, input.out) };
    const { base, taus } = taskVectors(input, k);
    const merged = electAndMerge(taus.map((t) => trimTopK(t, p.density as number)));
    return { values: k.weightedSum([base, merged], [1, p.lambda as number]) };
  },
};
