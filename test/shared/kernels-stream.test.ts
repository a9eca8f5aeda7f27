import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { platform } from './platform.ts';
import { estimateL2, type Kernels } from '../../src/core/kernels.ts';
import type { DType } from '../../src/core/dtypes.ts';
import {
  instances, label, bytesOf, unaligned, rng, randomF32, edgyF32, randomSplits, sameObj, refStats, refCompare,
} from './kernels-helpers.ts';

const t = suite('kernels: streaming reductions');
const HASH_GIT_THETA = 'c61d557840462f09ffb0237938abf0b0';

/** Each dtype's values as JS numbers (the reference view) and its raw bytes. */
function tensor(dtype: DType, n: number, seed: number): { bytes: Uint8Array; values: number[] } {
  const r = rng(seed);
  const f = edgyF32(n, seed);
  switch (dtype) {
    case 'F32': return { bytes: bytesOf(f), values: Array.from(f) };
    case 'F64': {
      const d = Float64Array.from(f, (x, i) => (i % 3 ? x * 1.000000123 : x));
      return { bytes: bytesOf(d), values: Array.from(d) };
    }
    case 'I8': { const a = Int8Array.from({ length: n }, () => (r.u32() & 255) - 128); return { bytes: bytesOf(a), values: Array.from(a) }; }
    case 'U16': { const a = Uint16Array.from({ length: n }, () => r.u32() & 0xffff); return { bytes: bytesOf(a), values: Array.from(a) }; }
    case 'I32': { const a = Int32Array.from({ length: n }, () => r.u32() | 0); return { bytes: bytesOf(a), values: Array.from(a) }; }
    case 'I64': {
      const a = BigInt64Array.from({ length: n }, () => (BigInt(r.u32()) << 20n) - (1n << 51n));
      return { bytes: bytesOf(a), values: Array.from(a, Number) };
    }
    case 'BOOL': { const a = Uint8Array.from({ length: n }, () => r.u32() & 1); return { bytes: a, values: Array.from(a) }; }
    default: throw new Error(dtype);
  }
}

async function f16tensor(k: Kernels, dtype: 'F16' | 'BF16', n: number, seed: number) {
  const bytes = k.fromF32(dtype, edgyF32(n, seed));
  return { bytes, values: Array.from(k.toF32(dtype, bytes)) };
}

const DTYPES_TESTED: DType[] = ['F32', 'F64', 'I8', 'U16', 'I32', 'I64', 'BOOL'];
const NS = [0, 1, 3, 4, 5, 17, 1000, 40001];

t('stats match a 4-lane f64 reference exactly for every dtype, length and instance', async () => {
  const { all, simd } = await instances();
  const cases: { dtype: DType; n: number; bytes: Uint8Array; values: number[] }[] = [];
  for (const dtype of DTYPES_TESTED) for (const n of NS) cases.push({ dtype, n, ...tensor(dtype, n, n + dtype.length) });
  for (const dtype of ['F16', 'BF16'] as const) for (const n of NS) cases.push({ dtype, n, ...(await f16tensor(simd, dtype, n, n)) });
  for (const k of all) {
    for (const c of cases) {
      const want = refStats(c.values);
      const got = k.stats(c.dtype, unaligned(c.bytes));
      assert.is(sameObj(got as any, want), null, `${label(k)} ${c.dtype} n=${c.n}`);
    }
  }
  // derived helpers
  const s = simd.stats('F32', bytesOf(Float32Array.of(1, 2, 3, 4, NaN)));
  assert.is(s.mean, 2.5);
  assert.is(s.std, Math.sqrt(1.25));
  assert.is(s.l2, Math.sqrt(30));
  assert.is(s.nan, 1);
  const none = simd.stats('F32', bytesOf(Float32Array.of(NaN, Infinity)));
  assert.ok(Number.isNaN(none.min) && Number.isNaN(none.max) && Number.isNaN(none.maxabs) && Number.isNaN(none.mean));
  assert.is(none.inf, 1);
});

t('stats min/max keep IEEE order at the edges: signed zeros, subnormals, the largest finite values, ±Inf/NaN skipped', async () => {
  const { all } = await instances();
  const F = 3.4028234663852886e38, D = 1e-45;
  const cases: [number[], number, number, number][] = [
    // values (padded past one SIMD unit), min, max, maxabs
    [[-0, -0, -0, -0, -0], -0, -0, 0],
    [[0, -0, 0, 0, 0, 0, 0, 0, 0], -0, 0, 0],
    [[-0, 0, NaN, Infinity, -Infinity, 0, 0, 0], -0, 0, 0],
    [[D, -D, 0, -0, D, D, D, D], -D, D, D],
    [[F, -F, 1, 2, -Infinity, Infinity, 3, 4], -F, F, F],
    [[-1, -2, -3, -4, -5, -6, -7, -8, -9], -9, -1, 9],
    [[5, 4, 3, 2, 1, 0.5, 0.25, 0.125, 7], 0.125, 7, 7],
  ];
  for (const k of all) {
    for (const [values, mn, mx, ma] of cases) {
      for (const lead of [0, 1, 3]) { // shift which SIMD lane each value lands in
        const v = [...Array(lead).fill(NaN), ...values];
        const s = k.stats('F32', bytesOf(Float32Array.from(v)));
        assert.ok(Object.is(s.min, Math.fround(mn)) && Object.is(s.max, Math.fround(mx)) && Object.is(s.maxabs, Math.fround(ma)),
          `${label(k)} ${JSON.stringify(v.map(String))}: min ${s.min} max ${s.max} maxabs ${s.maxabs}`);
      }
    }
  }
});

t('streamed stats and compare do not depend on chunking, even when chunks split elements', async () => {
  const { all } = await instances();
  for (const dtype of ['F32', 'F64', 'I8', 'I64'] as DType[]) {
    const { bytes } = tensor(dtype, 30011, 7);
    const { bytes: other } = tensor(dtype, 30011, 8);
    const ref = JSON.stringify(all[0].stats(dtype, bytes));
    const refC = JSON.stringify(all[0].compare(dtype, bytes, other));
    for (const k of all) {
      for (const maxPiece of [1, 3, 13, 1000, 65537]) {
        if (maxPiece < 13 && k !== all[0]) continue;
        const acc = k.statsAccumulator(dtype);
        const cmp = k.compareAccumulator(dtype);
        let p = 0;
        for (const piece of randomSplits(bytes, maxPiece, maxPiece)) {
          acc.update(piece);
          cmp.update(piece, other.subarray(p, p + piece.length));
          p += piece.length;
        }
        assert.is(JSON.stringify(acc.result()), ref, `${label(k)} ${dtype} pieces<=${maxPiece}`);
        assert.is(JSON.stringify(cmp.result()), refC, `${label(k)} compare ${dtype} pieces<=${maxPiece}`);
      }
    }
  }
  const acc = all[0].statsAccumulator('F32');
  acc.update(new Uint8Array(6));
  assert.throws(() => acc.result(), (e: any) => e.code === 'E_ARGUMENT', 'a partial trailing element is an error');
});

t('compare matches the numpy-rule reference (NaN, ±Inf, -0, rtol/atol)', async () => {
  const { all } = await instances();
  for (const k of all) {
    for (const n of NS) {
      const a = edgyF32(n, n + 11), b = a.slice();
      const r = rng(n);
      for (let i = 0; i < n; i++) {
        const u = r.int(8);
        if (u === 0) b[i] = randomF32(1, i)[0];
        else if (u === 1) b[i] = a[i] * (1 + 5e-6);
        else if (u === 2) b[i] = a[i] + 2e-8;
      }
      for (const [rtol, atol] of [[1e-5, 1e-8], [0, 0], [1e-3, 1e-3]]) {
        const want = refCompare(Array.from(a), Array.from(b), rtol, atol);
        const got = k.compare('F32', unaligned(bytesOf(a)), bytesOf(b), { rtol, atol });
        assert.is(sameObj(got as any, want), null, `${label(k)} n=${n} rtol=${rtol}`);
      }
    }
  }
});

t('histogram counts match a reference loop (f32 and f64 paths, out-of-range and NaN ignored)', async () => {
  const { all } = await instances();
  for (const k of all) {
    for (const [dtype, n] of [['F32', 20011], ['F64', 999], ['I8', 300], ['BF16', 77]] as [DType, number][]) {
      const { bytes, values } = dtype === 'BF16' ? await f16tensor(k, 'BF16', n, 3) : tensor(dtype, n, 3);
      for (const [bins, lo, hi] of [[10, -2, 2], [1, 0, 1], [256, -128, 128], [7, -0.3, 0.9]]) {
        const want = new Array(bins).fill(0);
        const scale = bins / (hi - lo);
        for (const v of values) if (v >= lo && v < hi) want[Math.min(bins - 1, Math.floor((v - lo) * scale))]++;
        assert.equal(k.histogram(dtype, bytes, bins, lo, hi), want, `${label(k)} ${dtype} bins=${bins}`);
      }
    }
  }
  assert.throws(() => all[0].histogram('F32', new Uint8Array(4), 0, 0, 1), (e: any) => e.code === 'E_ARGUMENT');
  assert.throws(() => all[0].histogram('F32', new Uint8Array(4), 4, 1, 1), (e: any) => e.code === 'E_ARGUMENT');
});

t('content hash: same digest however chunked, in both builds; sensitive to every bit and to length', async () => {
  const { all, simd, scalar } = await instances();
  const r = rng(1);
  const data = Uint8Array.from({ length: 100003 }, () => r.u32() & 255);
  const want = simd.contentHash(data);
  assert.match(want, /^[0-9a-f]{32}$/);
  for (const k of all) {
    for (const maxPiece of [1, 63, 64, 65, 4097]) {
      if (maxPiece === 1 && k !== simd) continue;
      const h = k.contentHasher();
      for (const p of randomSplits(data, maxPiece + 5, maxPiece)) h.update(p);
      assert.is(h.digest(), want, `${label(k)} pieces<=${maxPiece}`);
    }
  }
  for (const n of [0, 1, 63, 64, 65, 128, 1000]) assert.is(scalar.contentHash(data.subarray(0, n)), simd.contentHash(unaligned(data.subarray(0, n))), `n=${n}`);
  // zero padding cannot collide: all-zero inputs of every length 0..200 are distinct
  const seen = new Set<string>();
  for (let n = 0; n <= 200; n++) seen.add(simd.contentHash(new Uint8Array(n)));
  assert.is(seen.size, 201);
  // avalanche: flipping any single input bit changes about half of the 128 output bits
  const base = data.subarray(0, 300);
  const hb = BigInt('0x' + simd.contentHash(base));
  let total = 0, minBits = 128, trials = 0;
  for (let bit = 0; bit < base.length * 8; bit += 7) {
    const m = base.slice();
    m[bit >> 3] ^= 1 << (bit & 7);
    let x = hb ^ BigInt('0x' + simd.contentHash(m)), c = 0;
    while (x) { c += Number(x & 1n); x >>= 1n; }
    total += c; minBits = Math.min(minBits, c); trials++;
  }
  const mean = total / trials;
  assert.ok(mean > 60 && mean < 68, `mean flipped bits ${mean}`);
  assert.ok(minBits >= 40, `min flipped bits ${minBits}`);
  // digest() can be called repeatedly and more data can follow
  const h = simd.contentHasher();
  h.update(data.subarray(0, 10));
  assert.is(h.digest(), simd.contentHash(data.subarray(0, 10)));
  h.update(data.subarray(10, 100));
  assert.is(h.digest(), simd.contentHash(data.subarray(0, 100)));
});

t('LSH: identical signatures across builds and chunkings; estimates L2 distance; buckets', async () => {
  const { all, simd, scalar } = await instances();
  const n = 50001;
  const a = randomF32(n, 1);
  const ref = simd.lshSignature('F32', bytesOf(a));
  assert.is(ref.length, 16);
  for (const k of all) {
    const acc = k.lshAccumulator('F32');
    for (const p of randomSplits(bytesOf(a), 9, 3001)) acc.update(p);
    assert.equal(acc.signature(), ref, label(k));
  }
  assert.equal(scalar.lshSignature('F32', bytesOf(a), { size: 5, seed: 99, buckets: 64 }), simd.lshSignature('F32', bytesOf(a), { size: 5, seed: 99, buckets: 64 }));
  // signature values are f32
  for (const v of ref) assert.is(Math.fround(v), v);
  // the same tensor in other dtypes goes through f32
  assert.equal(simd.lshSignature('F64', bytesOf(Float64Array.from(a))), ref);
  // non-finite values count as zero, so signatures stay finite (JSON-safe)
  const e = edgyF32(1000, 3);
  const z = e.map((x) => (Number.isFinite(x) ? x : 0));
  assert.equal(simd.lshSignature('F32', bytesOf(e)), simd.lshSignature('F32', bytesOf(z)));
  // estimate of ||a - b|| over many seeds: unbiased in the mean square
  let ratio2 = 0;
  const seeds = 40;
  for (let s = 0; s < seeds; s++) {
    const b = a.slice();
    const r = rng(s + 100);
    for (let i = 0; i < n; i++) if (r.int(10) === 0) b[i] += r.normal() * 0.1;
    let d2 = 0;
    for (let i = 0; i < n; i++) d2 += (a[i] - b[i]) ** 2;
    const sa = simd.lshSignature('F32', bytesOf(a), { seed: s }), sb = simd.lshSignature('F32', bytesOf(b), { seed: s });
    ratio2 += estimateL2(sa, sb) ** 2 / d2;
  }
  ratio2 /= seeds;
  assert.ok(ratio2 > 0.85 && ratio2 < 1.15, `mean squared-estimate ratio ${ratio2}`);
  assert.is(simd.estimateL2(ref, ref), 0);
  // buckets: floor((p + b) / w) with b in [0, w): ids are floor(p/w) or one more; deterministic
  const w = 0.5;
  const ids = simd.lshBuckets(ref, w, 7);
  assert.equal(ids, scalar.lshBuckets(ref, w, 7));
  ids.forEach((id, i) => assert.ok(id === Math.floor(ref[i] / w) || id === Math.floor(ref[i] / w) + 1, `bucket ${i}`));
  assert.not.equal(simd.lshBuckets(ref, w, 7), simd.lshBuckets(ref, w, 8), 'offsets depend on the seed');
  assert.throws(() => simd.lshAccumulator('F32', { buckets: 100 }), (e: any) => e.code === 'E_ARGUMENT');
});

t('kernels-digest: SIMD == scalar, and identical bytes in Node, Deno and Chromium', async () => {
  const { simd, scalar } = await instances();
  async function outputs(k: Kernels): Promise<Uint8Array[]> {
    const a = edgyF32(5003, 1), b = edgyF32(5003, 2);
    const fin = randomF32(5003, 3), fin2 = randomF32(5003, 4);
    const out: Uint8Array[] = [];
    const push = (x: ArrayBufferView) => {
      // canonicalise NaNs so payload differences between SIMD and scalar lanes cannot matter
      if (x instanceof Float32Array) x = Float32Array.from(x, (v) => (v !== v ? NaN : v));
      out.push(new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength)));
    };
    const text = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
    push(k.fromF32('F16', a)); push(k.fromF32('BF16', a)); push(k.toF32('F16', k.fromF32('F16', a)));
    push(k.delta(a, b)); push(k.apply(a, b)); push(k.multiply(a, b)); push(k.scale(a, 1.7)); push(k.weightedSum([a, b, fin], [0.2, 0.3, 0.5]));
    const sp = k.sparseExtract(fin, fin2, 0.5); push(sp.indices); push(sp.values);
    push(k.changedIndices(bytesOf(a), bytesOf(b), 4));
    push(k.lowRankApply(fin.slice(0, 50 * 100), 50, 100, fin2.slice(0, 50 * 3), fin2.slice(200, 500), 3));
    const q = k.quantizeInt8(fin, 64); push(q.q); push(q.scales); push(k.dequantizeInt8(q.q, q.scales, 64));
    out.push(text(k.stats('F32', bytesOf(a)))); out.push(text(k.stats('F64', bytesOf(Float64Array.from(fin)))));
    out.push(text(k.compare('F32', bytesOf(fin), bytesOf(fin2))));
    out.push(text(k.histogram('F32', bytesOf(fin), 33, -3, 3)));
    out.push(text(k.contentHash(bytesOf(a))));
    out.push(text(k.lshSignature('F32', bytesOf(fin))));
    out.push(text(k.lshBuckets(k.lshSignature('F32', bytesOf(fin), { seed: 5 }), 4, 5)));
    return out;
  }
  const so = await outputs(simd), co = await outputs(scalar);
  assert.is(so.length, co.length);
  so.forEach((x, i) => assert.equal(Array.from(x), Array.from(co[i]), `output ${i}: SIMD and scalar differ`));
  const all = new Uint8Array(so.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of so) { all.set(x, o); o += x.length; }
  const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', all)), (x) => x.toString(16).padStart(2, '0')).join('');
  platform().report('kernels-digest', hex);
  // pinned values: the content hash is stored in committed metadata and must never change silently
  assert.is(simd.contentHash(new Uint8Array(0)), '24b821cb8e752c91f62982df681554f6');
  assert.is(scalar.contentHash(new TextEncoder().encode('git-theta')), HASH_GIT_THETA);
  assert.is(simd.contentHash(new TextEncoder().encode('git-theta')), HASH_GIT_THETA);
  assert.match(hex, /^[0-9a-f]{64}$/);
});

t.run();
