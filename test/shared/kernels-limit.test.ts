import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';

test('changedIndices with a limit: the same indices up to it, null past it (dense changes stop early)', async () => {
  const k = await getKernels();
  const n = 3_000_001;
  const a = new Uint8Array(n * 4);
  const b = a.slice();
  const changed = [0, 17, 1_048_575, 1_048_576, 2_999_999, 3_000_000];
  for (const i of changed) b[i * 4 + 1] ^= 1;
  assert.equal(Array.from(k.changedIndices(a, b, 4)), changed);
  assert.equal(Array.from(k.changedIndices(a, b, 4, 6)!), changed);
  assert.is(k.changedIndices(a, b, 4, 5), null);
  assert.equal(Array.from(k.changedIndices(a, a, 4, 0)!), []);
  const dense = new Uint8Array(n * 4).fill(7);
  assert.is(k.changedIndices(a, dense, 4, 100), null);
});

test.run();
