import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  instances, label, bytesOf, unaligned, rng, randomF32, edgyF32, sameF32, roundHalfEven,
} from './kernels-helpers.ts';

const t = suite('kernels: array ops');
const LENGTHS = [0, 1, 3, 4, 5, 15, 16, 17, 31, 33, 64, 1000, 4099, 70001];
const fr = Math.fround;

t('delta, apply, multiply and scale match plain f32 loops bit for bit', async () => {
  for (const k of (await instances()).all) {
    for (const n of LENGTHS) {
      const a = edgyF32(n, n + 1), b = edgyF32(n, n + 2);
      const map = (f: (x: number, y: number) => number) => Float32Array.from(a, (x, i) => f(x, b[i]));
      assert.is(sameF32(k.delta(a, b), map((x, y) => x - y)), null, `${label(k)} delta n=${n}`);
      assert.is(sameF32(k.apply(a, b), map((x, y) => x + y)), null, `${label(k)} apply n=${n}`);
      assert.is(sameF32(k.multiply(a, b), map((x, y) => x * y)), null, `${label(k)} multiply n=${n}`);
      assert.is(sameF32(k.scale(a, 0.3), Float32Array.from(a, (x) => x * fr(0.3))), null, `${label(k)} scale n=${n}`);
      // apply(delta(a, b), b) == a for finite values whose difference is exact-ish is not guaranteed;
      // out may alias an input:
      const c = a.slice();
      k.delta(c, b, c);
      assert.is(sameF32(c, map((x, y) => x - y)), null, 'in place');
    }
  }
});

t('weighted sum of k inputs matches a left-to-right f32 loop (k = 1, 2, 3, 5)', async () => {
  for (const k of (await instances()).all) {
    for (const n of [0, 1, 17, 1000, 20011]) {
      for (const m of [1, 2, 3, 5]) {
        const xs = Array.from({ length: m }, (_, j) => edgyF32(n, 100 * j + n));
        const w = [0.5, -0.25, 1.5, 3, 1e-3].slice(0, m);
        const want = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          let acc = fr(xs[0][i] * fr(w[0]));
          for (let j = 1; j < m; j++) acc = fr(acc + fr(xs[j][i] * fr(w[j])));
          want[i] = acc;
        }
        assert.is(sameF32(k.weightedSum(xs, w), want), null, `${label(k)} n=${n} k=${m}`);
      }
    }
  }
});

t('sparseExtract finds |a-b| > threshold (and NaN changes) and scatterAdd puts them back', async () => {
  for (const k of (await instances()).all) {
    for (const n of [0, 1, 5, 16, 33, 5000, 70001]) {
      const r = rng(n + 3);
      const b = randomF32(n, n);
      const a = b.slice();
      for (let i = 0; i < n; i++) {
        const u = r.int(20);
        if (u === 0) a[i] += r.normal();
        else if (u === 1) a[i] += 1e-9;
        else if (u === 2) a[i] = NaN;
        else if (u === 3) { a[i] = Infinity; b[i] = Infinity; }
      }
      for (const th of [0, 1e-6]) {
        const wantI: number[] = [], wantV: number[] = [];
        for (let i = 0; i < n; i++) {
          const d = fr(a[i] - b[i]);
          if (a[i] !== b[i] && !(Math.abs(d) <= fr(th))) { wantI.push(i); wantV.push(d); }
        }
        const { indices, values } = k.sparseExtract(a, b, th);
        assert.equal(Array.from(indices), wantI, `${label(k)} n=${n} th=${th} indices`);
        assert.is(sameF32(values, Float32Array.from(wantV)), null, 'values');
        if (th === 0) {
          const back = k.scatterAdd(b.slice(), indices, values);
          for (let i = 0; i < n; i++) assert.ok(back[i] === a[i] || (back[i] !== back[i] && a[i] !== a[i]) || Math.abs(back[i] - a[i]) <= Math.max(Math.abs(a[i]), Math.abs(b[i])) * 2 ** -22, `restore ${i}`);
        }
      }
    }
  }
});

t('changedIndices is bitwise exact for element sizes 1, 2, 3, 4, 8 (NaN payloads, -0, unaligned)', async () => {
  for (const k of (await instances()).all) {
    for (const es of [1, 2, 3, 4, 8]) {
      for (const n of [0, 1, 7, 16, 63, 64, 65, 1000, 30001]) {
        const r = rng(es * 1000 + n);
        const a = new Uint8Array(n * es);
        for (let i = 0; i < a.length; i++) a[i] = r.u32() & 255;
        const b = a.slice();
        const want: number[] = [];
        for (let i = 0; i < n; i++) {
          if (r.int(50) === 0) {
            b[i * es + r.int(es)] ^= 1 << r.int(8); // one flipped bit anywhere in the element
            want.push(i);
          }
        }
        assert.equal(Array.from(k.changedIndices(unaligned(a, 1), unaligned(b, 2), es)), want, `${label(k)} es=${es} n=${n}`);
      }
    }
    // -0 vs +0 and different NaN payloads are changes
    const x = new Float32Array([0, NaN, 1]), y = new Float32Array([-0, NaN, 1]);
    new Uint32Array(y.buffer)[1] = 0x7fc00001;
    assert.equal(Array.from(k.changedIndices(bytesOf(x), bytesOf(y), 4)), [0, 1]);
  }
});

t('gather/scatter (host) and the Wasm gather/scatter/scatter_add kernels match reference loops', async () => {
  const { simd, scalar } = await instances();
  for (const k of [simd, scalar]) {
    for (const es of [1, 2, 4, 8, 6]) {
      const n = 997, r = rng(es);
      const bytes = new Uint8Array(n * es);
      for (let i = 0; i < bytes.length; i++) bytes[i] = r.u32() & 255;
      const idx = Uint32Array.from({ length: 200 }, () => r.int(n));
      const want = new Uint8Array(idx.length * es);
      idx.forEach((i, j) => want.set(bytes.subarray(i * es, i * es + es), j * es));
      assert.equal(Array.from(k.gather(unaligned(bytes), es, idx)), Array.from(want), `gather es=${es}`);
      const vals = new Uint8Array(idx.length * es).map(() => r.u32() & 255);
      const wantS = bytes.slice();
      idx.forEach((i, j) => wantS.set(vals.subarray(j * es, j * es + es), i * es));
      assert.equal(Array.from(k.scatter(bytes.slice(), es, idx, vals)), Array.from(wantS), `scatter es=${es}`);
      // the Wasm kernels on Wasm-resident data
      const { fn, scratch, memory } = k.raw;
      const m = new Uint8Array(memory.buffer);
      const SRC = scratch, IDX = scratch + 65536, OUT = scratch + 131072, VALS = scratch + 196608;
      m.set(bytes, SRC);
      new Uint32Array(memory.buffer, IDX, idx.length).set(idx);
      fn('gather')(SRC, es, IDX, idx.length, OUT);
      assert.equal(Array.from(m.subarray(OUT, OUT + want.length)), Array.from(want), `wasm gather es=${es}`);
      m.set(vals, VALS);
      fn('scatter')(SRC, es, IDX, idx.length, VALS);
      assert.equal(Array.from(m.subarray(SRC, SRC + bytes.length)), Array.from(wantS), `wasm scatter es=${es}`);
    }
    const tgt = randomF32(300, 1), idx = Uint32Array.from([5, 7, 5, 299, 0]), v = Float32Array.from([1, 2, 3, 1e-8, -0.5]);
    const want = tgt.slice();
    idx.forEach((i, j) => (want[i] = fr(want[i] + v[j])));
    assert.is(sameF32(k.scatterAdd(tgt.slice(), idx, v), want), null, 'scatterAdd');
    const { fn, scratch, memory } = k.raw;
    new Float32Array(memory.buffer, scratch, 300).set(tgt);
    new Uint32Array(memory.buffer, scratch + 4096, 5).set(idx);
    new Float32Array(memory.buffer, scratch + 8192, 5).set(v);
    fn('scatter_add_f32')(scratch, scratch + 4096, scratch + 8192, 5);
    assert.is(sameF32(new Float32Array(memory.buffer, scratch, 300).slice(), want), null, 'wasm scatter_add');
  }
});

t('lowRankApply (W += R·C) matches a k-ordered f32 loop, including column-blocked huge C', async () => {
  const { all } = await instances();
  const cases = [[1, 1, 1], [3, 5, 2], [37, 101, 5], [16, 64, 16], [9, 130, 0], [3, 40000, 8]];
  for (const k of all) {
    for (const [rows, cols, rank] of cases) {
      if (rows * cols > 100000 && k.variant === 'scalar') continue;
      const W = randomF32(rows * cols, rows), R = randomF32(rows * rank, cols), C = randomF32(rank * cols, rank + 1);
      const want = W.slice();
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
        let a = want[i * cols + j];
        for (let r = 0; r < rank; r++) a = fr(a + fr(R[i * rank + r] * C[r * cols + j]));
        want[i * cols + j] = a;
      }
      assert.is(sameF32(k.lowRankApply(W, rows, cols, R, C, rank), want), null, `${label(k)} ${rows}x${cols} r${rank}`);
    }
  }
  assert.throws(() => all[0].lowRankApply(new Float32Array(6), 2, 3, new Float32Array(2), new Float32Array(4), 1), (e: any) => e.code === 'E_ARGUMENT');
});

t('int8 absmax quantize/dequantize match the reference per block (sizes 1, 7, 64, 100)', async () => {
  for (const k of (await instances()).all) {
    for (const bs of [1, 7, 64, 100]) {
      for (const n of [0, 1, 63, 64, 65, 1000, 20000]) {
        const x = randomF32(n, bs * n + 1, 3);
        if (n > 70) { x.fill(0, 0, 64); x[65] = NaN; x[130] = Infinity; }
        const { q, scales } = k.quantizeInt8(x, bs);
        const nb = Math.ceil(n / bs);
        assert.is(scales.length, nb);
        for (let b = 0; b < nb; b++) {
          let m = 0, hasNaN = false;
          for (let i = b * bs; i < Math.min(n, (b + 1) * bs); i++) { if (x[i] !== x[i]) hasNaN = true; m = Math.max(m, Math.abs(x[i])); }
          if (hasNaN) m = NaN;
          const inv = m > 0 ? fr(127 / m) : 0;
          assert.ok(Object.is(scales[b], fr(m / 127)) || (m !== m && scales[b] !== scales[b]), `scale ${b}`);
          for (let i = b * bs; i < Math.min(n, (b + 1) * bs); i++) {
            const p = fr(x[i] * inv);
            const want = p === p ? Math.max(-127, Math.min(127, roundHalfEven(p))) : 0;
            if (q[i] !== want) assert.unreachable(`${label(k)} bs=${bs} n=${n} i=${i}: q=${q[i]} want ${want}`);
          }
        }
        const back = k.dequantizeInt8(q, scales, bs);
        const want = Float32Array.from(q, (v, i) => fr(v * scales[Math.floor(i / bs)]));
        assert.is(sameF32(back, want), null, 'dequantize');
        for (let i = 0; i < n; i++) {
          const s = scales[Math.floor(i / bs)];
          if (Number.isFinite(s)) assert.ok(Math.abs(back[i] - x[i]) <= s * 0.5 + Math.abs(x[i]) * 2 ** -21 + 1e-30, `error bound ${i}`);
        }
      }
    }
  }
});

t('dot, l2Distance, cosine and allclose agree with reference loops on f32 and f64', async () => {
  const { simd, scalar } = await instances();
  for (const k of [simd, scalar]) {
    const a = randomF32(1003, 1), b = randomF32(1003, 2);
    let dot = [0, 0, 0, 0], d2 = [0, 0, 0, 0], na = [0, 0, 0, 0], nb = [0, 0, 0, 0];
    for (let i = 0; i < a.length; i++) { dot[i & 3] += a[i] * b[i]; d2[i & 3] += (a[i] - b[i]) ** 2; na[i & 3] += a[i] ** 2; nb[i & 3] += b[i] ** 2; }
    const s = (v: number[]) => v[0] + v[1] + v[2] + v[3];
    assert.is(k.dot(a, b), s(dot));
    assert.is(k.l2Distance(a, b), Math.sqrt(s(d2)));
    assert.is(k.cosine(a, b), s(dot) / Math.sqrt(s(na)) / Math.sqrt(s(nb)));
    assert.ok(k.allclose(a, a.slice()));
    const c = a.slice(); c[500] *= 1 + 1e-4;
    assert.not.ok(k.allclose(c, a));
    assert.ok(k.allclose(c, a, 1e-3));
    assert.not.ok(k.allclose(Float32Array.of(NaN), Float32Array.of(NaN)), 'NaN is never close');
    assert.ok(k.allclose(Float32Array.of(Infinity), Float32Array.of(Infinity)), 'equal infinities are close');
    assert.not.ok(k.allclose(Float32Array.of(1), Float32Array.of(Infinity)), 'finite vs inf is not close');
    const a64 = Float64Array.from(a), b64 = Float64Array.from(b);
    assert.is(k.dot(a64, b64), s(dot));
    assert.ok(Number.isNaN(k.cosine(new Float32Array(4), a.subarray(0, 4))), 'zero norm gives NaN cosine');
  }
});

t.run();
