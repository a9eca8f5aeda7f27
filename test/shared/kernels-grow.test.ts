// The kernels' SCRATCH grows as calls reach into it (core/kernels/memory.ts `reach`), not at set-up.
// Every kind of call runs first on a fresh instance, so its own layout is what grows the memory,
// and must give exactly what it gives on an instance whose SCRATCH was grown whole beforehand.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Kernels } from '../../src/core/kernels.ts';
import { bytesOf, randomF32 } from './kernels-helpers.ts';

type Run = (k: Kernels) => unknown;

const f32 = randomF32(600_000, 1);
const g32 = randomF32(600_000, 2);
const f16 = (k: Kernels) => k.fromF32('F16', f32);
const bigBytes = bytesOf(randomF32(900_000, 3)); // 3.6 MB: more than the first growth
const calls: Record<string, Run> = {
  'crc32 of 3.6 MB': (k) => k.crc32(bigBytes),
  'content hash': (k) => k.contentHash(bigBytes),
  'stats of F16': (k) => k.stats('F16', f16(k)),
  'stats accumulator of BF16': (k) => { const a = k.statsAccumulator('BF16'); a.update(k.fromF32('BF16', g32)); return a.result(); },
  'compare of F16 (two converted streams)': (k) => { const a = k.compareAccumulator('F16'); const x = f16(k); a.update(x, x.slice().reverse()); return a.result(); },
  'histogram of F16': (k) => k.histogram('F16', f16(k), 64, -1, 1),
  'lsh signature': (k) => k.lshSignature('F32', bytesOf(f32)),
  'toF32 of F16': (k) => Array.from(k.toF32('F16', f16(k)).subarray(0, 1000)),
  'delta, scale': (k) => { const d = k.delta(f32, g32); return [d[12345], k.scale(d, 3)[99]]; },
  'weighted sum of 40 inputs': (k) => Array.from(k.weightedSum(Array.from({ length: 40 }, (_, i) => (i % 2 ? f32 : g32)), Array.from({ length: 40 }, (_, i) => i / 40)).subarray(0, 100)),
  'sparse extract': (k) => { const b = f32.slice(); b[7] += 1; b[599_999] -= 2; const s = k.sparseExtract(f32, b); return [Array.from(s.indices), Array.from(s.values)]; },
  'changed indices of 4096-byte elements': (k) => { const a = new Uint8Array(4096 * 700); const b = a.slice(); b[4096 * 650 + 5] = 1; return Array.from(k.changedIndices(a, b, 4096)); },
  'int8 quantization in blocks of 2^20': (k) => { const q = k.quantizeInt8(f32, 1 << 20); return [Array.from(q.scales), Array.from(k.dequantizeInt8(q.q, q.scales, 1 << 20).subarray(0, 50))]; },
  'low-rank apply': (k) => { const rows = 700, cols = 900, rank = 8; const W = randomF32(rows * cols, 4); return Array.from(k.lowRankApply(W, rows, cols, randomF32(rows * rank, 5), randomF32(rank * cols, 6), rank).subarray(0, 100)); },
};

test('kernel calls on a fresh instance (SCRATCH grown by the call itself) equal those on one grown whole', async () => {
  const whole = await Kernels.create();
  void whole.raw; // (raw grows SCRATCH whole: its users lay it out themselves)
  for (const [name, run] of Object.entries(calls)) {
    const fresh = await Kernels.create();
    assert.equal(run(fresh), run(whole), name);
    // and again on the grown instance: views taken before a growth are not kept
    assert.equal(run(fresh), run(whole), `${name}, twice`);
  }
});

test('kernel calls of every kind in a row on one fresh instance, small first, equal those on one grown whole', async () => {
  const whole = await Kernels.create({ scratchBytes: 8 << 20 });
  void whole.raw;
  const fresh = await Kernels.create({ scratchBytes: 8 << 20 });
  const acc = fresh.statsAccumulator('F32');
  acc.update(bytesOf(f32.subarray(0, 100)));
  for (const [name, run] of Object.entries(calls)) assert.equal(run(fresh), run(whole), name);
  // an accumulator made before the memory grew still works after it
  acc.update(bytesOf(f32.subarray(100)));
  const ref = whole.statsAccumulator('F32');
  ref.update(bytesOf(f32));
  assert.equal(acc.result(), ref.result());
});

test.run();
