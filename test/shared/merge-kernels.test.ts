// The fused merge pipelines (src/core/merge-kernels.ts, assembly/ties.ts) against the element-wise
// kernels and the plain TypeScript TIES steps they replace: the same bits, in the SIMD and scalar
// builds, for any piece size, every float dtype, unaligned inputs and an output that is an input.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DType } from '../../src/core/dtypes.ts';
import type { Kernels } from '../../src/core/kernels.ts';
import { taskArithmeticBytes, tiesBytes, weightedSumBytes, type TiesStats } from '../../src/core/merge-kernels.ts';
import { electAndMerge, trimTopK } from '../../src/merges/index.ts';
import { bytesOf, edgyF32, instances, label, randomF32, rng, unaligned } from './kernels-helpers.ts';
import { platform } from './platform.ts';

const t = suite('merge kernels');
const FLOATS: DType[] = ['F32', 'F16', 'BF16', 'F64'];

/** Bytes equal, except that any NaN equals any NaN (payloads are not part of the contract). */
function sameBytes(dtype: DType, got: Uint8Array, want: Uint8Array): string | null {
  if (got.length !== want.length) return `length ${got.length} != ${want.length}`;
  const es = dtype === 'F64' ? 8 : dtype === 'F32' ? 4 : 2;
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const g = dv(got), w = dv(want);
  const isNaN = (d: DataView, i: number) =>
    es === 8 ? Number.isNaN(d.getFloat64(i, true)) : es === 4 ? Number.isNaN(d.getFloat32(i, true))
      : dtype === 'F16' ? (d.getUint16(i, true) & 0x7fff) > 0x7c00 : (d.getUint16(i, true) & 0x7fff) > 0x7f80;
  for (let i = 0; i < got.length; i += es) {
    let same = true;
    for (let b = 0; b < es; b++) if (got[i + b] !== want[i + b]) same = false;
    if (!same && !(isNaN(g, i) && isNaN(w, i))) return `element ${i / es}: bytes ${Array.from(got.subarray(i, i + es))} != ${Array.from(want.subarray(i, i + es))}`;
  }
  return null;
}

/** Task vectors around a base: random, quantized (many equal magnitudes, ties at the threshold) or edgy (NaN, ±Inf, ±0, subnormals). */
function models(kind: 'random' | 'quantized' | 'edgy', n: number, k: number, seed: number): { base: Float32Array; ms: Float32Array[] } {
  const r = rng(seed);
  const base = kind === 'edgy' ? edgyF32(n, seed) : randomF32(n, seed);
  const ms = Array.from({ length: k }, (_, j) => {
    const m = new Float32Array(n);
    const e = edgyF32(n, seed + 100 + j);
    for (let i = 0; i < n; i++) {
      if (kind === 'quantized') m[i] = base[i] + (r.int(9) - 4) / 8;
      else if (kind === 'edgy') m[i] = r.int(3) === 0 ? e[i] : base[i] + e[i] * 0.01;
      else m[i] = base[i] + r.normal() * 0.01;
    }
    return m;
  });
  return { base, ms };
}

/** What the strategies computed before the fused kernels: values via toF32, kernels, JS trim and election, fromF32. */
function oldTies(k: Kernels, dtype: DType, base: Uint8Array, ms: Uint8Array[], density: number, lambda: number): Uint8Array {
  const b = k.toF32(dtype, base);
  const taus = ms.map((m) => k.delta(k.toF32(dtype, m), b));
  return k.fromF32(dtype, k.weightedSum([b, electAndMerge(taus.map((x) => trimTopK(x, density)))], [1, lambda]));
}

t('weightedSumBytes and taskArithmeticBytes: the bits of toF32, delta, weightedSum, fromF32', async () => {
  for (const k of (await instances()).all) {
    for (const dtype of FLOATS) {
      for (const n of [0, 1, 17, 1000, 20011]) {
        for (const m of [1, 2, 3, 5]) {
          const xs = Array.from({ length: m + 1 }, (_, j) => k.fromF32(dtype, edgyF32(n, 7 * j + n)));
          const w = [0.5, -0.25, 1.5, 3, 1e-3].slice(0, m);
          const f = xs.map((x) => k.toF32(dtype, x));
          const want = k.fromF32(dtype, k.weightedSum(f.slice(0, m), w));
          const what = `${label(k)} ${dtype} n=${n} k=${m}`;
          assert.is(sameBytes(dtype, weightedSumBytes(k, dtype, xs.slice(0, m).map((x) => unaligned(x)), w), want), null, `weighted sum ${what}`);
          const deltas = f.slice(1).map((x) => k.delta(x, f[0]));
          const wantTa = k.fromF32(dtype, k.weightedSum([f[0], ...deltas], [1, ...deltas.map(() => 0.7)]));
          const out = xs[1].slice();
          const got = taskArithmeticBytes(k, dtype, xs[0], [out, ...xs.slice(2)], 0.7, out);
          assert.ok(got === out, 'written into out');
          assert.is(sameBytes(dtype, got, wantTa), null, `task arithmetic into its first model ${what}`);
        }
      }
    }
  }
});

t('tiesBytes: the bits of trimTopK, electAndMerge and weightedSum (1-4 models, every density, ties at the threshold, NaN/Inf)', async () => {
  const stats: TiesStats = { bracket: 0, histogram: 0 };
  for (const k of (await instances()).some) {
    for (const kind of ['random', 'quantized', 'edgy'] as const) {
      for (const n of [1, 5, 16, 33, 1000, 20011]) {
        for (const nm of [1, 2, 3, 4]) {
          const { base, ms } = models(kind, n, nm, n + nm);
          for (const density of [0, 0.1, 0.2, 0.5, 0.99, 1]) {
            const want = oldTies(k, 'F32', bytesOf(base), ms.map(bytesOf), density, 0.7);
            for (const select of ['auto', 'histogram'] as const) {
              const got = tiesBytes(k, 'F32', bytesOf(base), ms.map(bytesOf), density, 0.7, undefined, { select, stats });
              assert.is(sameBytes('F32', got, want), null, `${label(k)} ${kind} n=${n} models=${nm} density=${density} ${select}`);
            }
          }
        }
      }
    }
  }
  assert.ok(stats.bracket > 0 && stats.histogram > 0, `both selection paths ran (${JSON.stringify(stats)})`);
});

t('tiesBytes: every float dtype, unaligned inputs, into its first model, large enough for many pieces', async () => {
  const { simd, scalar, chunked } = await instances();
  for (const k of [simd, scalar, chunked[1], chunked[3]]) {
    for (const dtype of FLOATS) {
      for (const kind of ['random', 'quantized'] as const) {
        const { base, ms } = models(kind, 70001, 2, 5);
        const bb = k.fromF32(dtype, base), mb = ms.map((m) => k.fromF32(dtype, m));
        const want = oldTies(k, dtype, bb, mb, 0.2, 1.3);
        const stats: TiesStats = { bracket: 0, histogram: 0 };
        assert.is(sameBytes(dtype, tiesBytes(k, dtype, unaligned(bb), mb.map((m) => unaligned(m, 1)), 0.2, 1.3, undefined, { stats }), want), null, `${label(k)} ${dtype} ${kind} unaligned`);
        if (kind === 'random') assert.is(stats.histogram, 0, `${label(k)} ${dtype}: the sampled bracket held the threshold`);
        const out = mb[0].slice();
        const got = tiesBytes(k, dtype, bb, [out, mb[1]], 0.2, 1.3, out);
        assert.ok(got === out, 'written into out');
        assert.is(sameBytes(dtype, got, want), null, `${label(k)} ${dtype} ${kind} into its first model`);
      }
    }
  }
});

t('tiesBytes: equal magnitudes are kept lowest index first, across piece boundaries', async () => {
  for (const k of (await instances()).all) {
    // every |tau| is 1: keep = 3 of 40 keeps elements 0, 1, 2 of each task vector
    const n = 40;
    const base = new Float32Array(n);
    const a = Float32Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1));
    const b = Float32Array.from({ length: n }, (_, i) => (i % 3 ? -1 : 1));
    const got = new Float32Array(tiesBytes(k, 'F32', bytesOf(base), [bytesOf(a), bytesOf(b)], 3 / 40, 1).buffer);
    // 0: -1 and 1 cancel; 1: 1 and -1 cancel; 2: -1 and -1 agree
    assert.equal(Array.from(got.slice(0, 4)), [0, 0, -1, 0], label(k));
    assert.ok(got.slice(3).every((x) => x === 0), label(k));
  }
});

t('merge kernels reject bad input with typed errors', async () => {
  const { simd: k } = await instances();
  const e = (f: () => unknown) => assert.throws(f, (x: any) => x.code === 'E_ARGUMENT');
  e(() => weightedSumBytes(k, 'F32', [new Uint8Array(8), new Uint8Array(4)], [1, 1]));
  e(() => weightedSumBytes(k, 'F32', [new Uint8Array(6)], [1]));
  e(() => weightedSumBytes(k, 'I32', [new Uint8Array(8)], [1]));
  e(() => weightedSumBytes(k, 'F32', [new Uint8Array(8)], [1, 2]));
  e(() => weightedSumBytes(k, 'F32', [new Uint8Array(8)], [1], new Uint8Array(4)));
  e(() => tiesBytes(k, 'F32', new Uint8Array(8), [new Uint8Array(8)], 1.5, 1));
  e(() => tiesBytes(k, 'F32', new Uint8Array(8), [], 0.5, 1));
  e(() => taskArithmeticBytes(k, 'BF16', new Uint8Array(8), [new Uint8Array(6)], 1));
});

/** A copy with every NaN element replaced by one canonical NaN (payloads may differ between the builds' lanes). */
function canonical(dtype: DType, x: Uint8Array): Uint8Array {
  const c = x.slice();
  const d = new DataView(c.buffer);
  if (dtype === 'F32') for (let i = 0; i < c.length; i += 4) { if (Number.isNaN(d.getFloat32(i, true))) d.setUint32(i, 0x7fc00000, true); }
  else if (dtype === 'F64') for (let i = 0; i < c.length; i += 8) { if (Number.isNaN(d.getFloat64(i, true))) { d.setUint32(i, 0, true); d.setUint32(i + 4, 0x7ff80000, true); } }
  else {
    const inf = dtype === 'F16' ? 0x7c00 : 0x7f80, nan = dtype === 'F16' ? 0x7e00 : 0x7fc0;
    for (let i = 0; i < c.length; i += 2) if ((d.getUint16(i, true) & 0x7fff) > inf) d.setUint16(i, nan, true);
  }
  return c;
}

t('merge-kernels-digest: SIMD == scalar, and identical bytes in Node, Deno and Chromium', async () => {
  const { simd, scalar } = await instances();
  const outputs = (k: Kernels) => {
    const out: Uint8Array[] = [];
    for (const kind of ['random', 'quantized', 'edgy'] as const) {
      const { base, ms } = models(kind, 5003, 3, 11);
      for (const dtype of FLOATS) {
        const bb = k.fromF32(dtype, base), mb = ms.map((m) => k.fromF32(dtype, m));
        for (const x of [
          tiesBytes(k, dtype, bb, mb.slice(0, 2), 0.2, 1), tiesBytes(k, dtype, bb, mb, 0.3, 0.8),
          weightedSumBytes(k, dtype, mb, [0.2, 0.3, 0.5]), taskArithmeticBytes(k, dtype, bb, mb, 0.9),
        ]) out.push(canonical(dtype, x));
      }
    }
    return out;
  };
  const so = outputs(simd), co = outputs(scalar);
  assert.is(so.length, co.length);
  so.forEach((x, i) => assert.ok(x.length === co[i].length && x.every((v, j) => v === co[i][j]), `output ${i}: SIMD and scalar differ`));
  const all = new Uint8Array(so.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of so) {
    all.set(x, o);
    o += x.length;
  }
  const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', all)), (x) => x.toString(16).padStart(2, '0')).join('');
  platform().report('merge-kernels-digest', hex);
});

t.run();
