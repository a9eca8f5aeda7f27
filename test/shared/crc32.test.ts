import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32, crc32Js } from '../../src/core/crc32.ts';
import { getKernels, Kernels } from '../../src/core/kernels.ts';

test('crc32: the check value, Wasm (SIMD and scalar builds) equal to JS, continuation over pieces', async () => {
  const enc = new TextEncoder();
  assert.is(crc32Js(enc.encode('123456789')), 0xcbf43926);
  assert.is(crc32(new Uint8Array(0)), 0);
  const k = await getKernels();
  const scalar = await Kernels.create({ variant: 'scalar' });
  let s = 12345;
  const data = new Uint8Array(3_000_017).map(() => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24));
  for (const n of [0, 1, 7, 8, 9, 4095, 4096, 4097, 65537, data.length]) {
    const want = crc32Js(data.subarray(0, n));
    assert.is(k.crc32(data.subarray(0, n)), want, `simd n=${n}`);
    assert.is(scalar.crc32(data.subarray(0, n)), want, `scalar n=${n}`);
  }
  // unaligned start and piecewise continuation
  const whole = crc32Js(data.subarray(3));
  let c = 0;
  for (let off = 3; off < data.length; off += 100_003) c = k.crc32(data.subarray(off, Math.min(data.length, off + 100_003)), c);
  assert.is(c, whole);
});

test.run();
