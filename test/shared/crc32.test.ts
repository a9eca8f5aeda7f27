import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32, crc32Js } from '../../src/core/crc32.ts';
import { getKernels, Kernels } from '../../src/core/kernels.ts';

function lcgBytes(n: number, seed: number): Uint8Array {
  let s = seed;
  return new Uint8Array(n).map(() => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24));
}

test('crc32: the check value, Wasm (SIMD and scalar builds) equal to JS, continuation over pieces', async () => {
  const enc = new TextEncoder();
  assert.is(crc32Js(enc.encode('123456789')), 0xcbf43926);
  assert.is(crc32(new Uint8Array(0)), 0);
  const k = await getKernels();
  const scalar = await Kernels.create({ variant: 'scalar' });
  const data = lcgBytes(3_000_017, 12345);
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

// assembly/crc32.ts reduces long inputs modulo Q(x^128), Q(x) = x^300 + x^155 + x^117 + x^89 + 1.
// That is only correct if P divides Q; check the division itself, not just sample outputs.
test('crc32: the kernel\'s five-term polynomial is a multiple of the CRC-32 polynomial', () => {
  const P = 0x04c11db7; // x^32 + ..., the x^32 implied (normal bit order)
  const mulmod = (a: number, b: number) => {
    let r = 0;
    for (let i = 31; i >= 0; i--) {
      const top = r >>> 31;
      r = (r << 1) >>> 0;
      if (top) r = (r ^ P) >>> 0;
      if ((b >>> i) & 1) r = (r ^ a) >>> 0;
    }
    return r;
  };
  const xpow = (n: number) => { let r = 1; for (let i = 0; i < n; i++) r = mulmod(r, 2); return r; };
  assert.is((xpow(300) ^ xpow(155) ^ xpow(117) ^ xpow(89) ^ 1) >>> 0, 0);
  // and the same in 16-byte blocks: Q(x^128) = Q(x)^128
  const y = xpow(128);
  const ypow = (n: number) => { let r = 1; for (let i = 0; i < n; i++) r = mulmod(r, y); return r; };
  assert.is((ypow(300) ^ ypow(155) ^ ypow(117) ^ ypow(89) ^ 1) >>> 0, 0);
});

test('crc32: long inputs (sparse reduction) equal the tables at every length class, start, register and split', async () => {
  const variants = [await getKernels(), await Kernels.create({ variant: 'scalar' })];
  const data = lcgBytes(1 << 20, 99);
  // 9600 bytes = 600 blocks is where the reduction starts; the history moves every 1748 blocks
  const lengths = [9583, 9599, 9600, 9601, 9615, 9616, 9617, 9632, 27_967, 27_968, 27_969, 32_768, 60_000, 200_001, 1 << 20];
  for (const k of variants) {
    for (const n of lengths) {
      for (const off of [0, 1, 5]) {
        const bytes = data.subarray(off, Math.min(data.length, off + n));
        for (const start of [0, 0xffffffff, 0x9e3779b9]) {
          assert.is(k.crc32(bytes, start), crc32Js(bytes, start), `${k.variant} n=${bytes.length} off=${off} start=${start}`);
        }
      }
    }
    // any single flipped bit changes the result (the CRC's own guarantee, through the fast path)
    const good = k.crc32(data);
    for (const bit of [0, 7, 8 * 4800, 8 * 9600 + 3, 8 * 500_000 + 1, 8 * (data.length - 4800) - 1, 8 * data.length - 1]) {
      const bad = data.slice();
      bad[bit >>> 3] ^= 1 << (bit & 7);
      assert.is.not(k.crc32(bad), good, `${k.variant} bit ${bit}`);
    }
  }
});

test.run();
