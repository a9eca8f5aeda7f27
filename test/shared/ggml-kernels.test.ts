// The quantization Wasm kernels (assembly/ggml-dequant.ts, assembly/ggml-quant.ts through
// src/core/ggml-kernels.ts), SIMD and scalar builds: dequantizing equals llama.cpp's `gguf` values
// (ggml-blocks.data.ts) and the TypeScript reference decoders (ggml-reference.ts) bit for bit on
// random blocks, hand-checked blocks, tensors larger than the kernels' scratch; quantizing every
// writable type (Q2_K and Q3_K included) round-trips within stated error bounds.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GGML_BLOCK_SHAPES, GGML_DEQUANTIZABLE, GGML_WRITABLE, quantKernels, type QuantKernels } from '../../src/core/ggml-kernels.ts';
import { f32ToF16Bits } from '../../src/core/quantize-ggml.ts';
import { simdSupported } from '../../src/core/wasm.ts';
import { GGML_BLOCKS } from './ggml-blocks.data.ts';
import { referenceAffine, referenceDequantize } from './ggml-reference.ts';
import { edgyF32, rng } from './kernels-helpers.ts';
import { expectCode } from './assertions.ts';
import { base64Floats, hexBytes } from './test-data.ts';

const S = suite('ggml kernels');

const variants: QuantKernels[] = [quantKernels('scalar'), ...(simdSupported() ? [quantKernels('simd')] : [])];

/** Bits of each value, NaNs all the same (a NaN's payload is not part of the contract). */
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length), (u, i) => (Number.isNaN(a[i]) ? 'NaN' : u));

/** Offsets of each type's f16 scales (f32 for Q8_K) inside a block. */
const SCALE_AT: Record<string, number[]> = {
  Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0], Q8_1: [0, 2],
  Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], Q8_K: [],
};

/** Random blocks; scales random halves of every kind (normal, subnormal, zero, ±Inf, NaN) when `wild`. */
function randomBlocks(type: string, blocks: number, seed: number, wild: boolean): Uint8Array {
  const r = rng(seed);
  const size = GGML_BLOCK_SHAPES[type][1];
  const b = new Uint8Array(blocks * size);
  for (let i = 0; i < b.length; i++) b[i] = r.u32() & 255;
  const dv = new DataView(b.buffer);
  for (let k = 0; k < blocks; k++) {
    for (const at of SCALE_AT[type]) {
      const h = wild ? r.u32() & 0xffff : f32ToF16Bits((r.float() - 0.5) * 0.1);
      dv.setUint16(k * size + at, h, true);
    }
    if (type === 'Q8_K') dv.setFloat32(k * size, wild ? new Float32Array(new Uint32Array([r.u32()]).buffer)[0] : (r.float() - 0.5) * 0.1, true);
  }
  return b;
}

S('llama.cpp\'s gguf values, bit for bit, in both builds', () => {
  for (const k of variants) {
    for (const [type, [blocks, values]] of Object.entries(GGML_BLOCKS)) {
      assert.equal(bits(k.dequantize(type, hexBytes(blocks))), bits(base64Floats(values)), `${k.variant} ${type}`);
    }
  }
});

S('random blocks (any scale bits: subnormal, zero, Inf, NaN) equal the TypeScript reference in both builds', () => {
  for (const type of GGML_DEQUANTIZABLE) {
    for (const wild of [false, true]) {
      const bytes = randomBlocks(type, 40, 7 + type.length + (wild ? 100 : 0), wild);
      const want = bits(referenceDequantize(type, bytes));
      for (const k of variants) assert.equal(bits(k.dequantize(type, bytes)), want, `${k.variant} ${type} wild=${wild}`);
    }
  }
});

S('hand-checked blocks', () => {
  const half = (x: number) => [f32ToF16Bits(x) & 255, f32ToF16Bits(x) >> 8];
  for (const k of variants) {
    // Q8_0: d = 0.5, codes −128, −1, 0, 127, then zeros
    const q80 = new Uint8Array(34);
    q80.set([...half(0.5), 0x80, 0xff, 0x00, 0x7f]);
    assert.equal(Array.from(k.dequantize('Q8_0', q80).subarray(0, 5)), [-64, -0.5, 0, 63.5, 0], `${k.variant} Q8_0`);
    // Q4_0: d = 0.25, byte 0 = 0x9f: value 0 = (15 − 8)·0.25, value 16 = (9 − 8)·0.25; other bytes 0x88: 0
    const q40 = new Uint8Array(18).fill(0x88);
    q40.set([...half(0.25), 0x9f]);
    const v40 = k.dequantize('Q4_0', q40);
    assert.equal([v40[0], v40[1], v40[16], v40[17]], [1.75, 0, 0.25, 0], `${k.variant} Q4_0`);
    // Q5_1: d = 1, m = −16, qh bit 0 and bit 16 set, qs[0] = 0x21: value 0 = (1 | 16) − 16 = 1, value 16 = (2 | 16) − 16 = 2
    const q51 = new Uint8Array(24);
    q51.set([...half(1), ...half(-16), 0x01, 0x00, 0x01, 0x00, 0x21]);
    const v51 = k.dequantize('Q5_1', q51);
    assert.equal([v51[0], v51[1], v51[16]], [1, -16, 2], `${k.variant} Q5_1`);
    // Q4_K: d = 1, dmin = 0.5; sub-block 0 scale 3, min 2 (x = 3q − 1); sub-block 1 scale 5, min 0;
    // qs[0] = 0x74: value 0 = 3·4 − 1 = 11, value 32 = 5·7 = 35
    const q4k = new Uint8Array(144);
    q4k.set([...half(1), ...half(0.5), 3, 5, 0, 0, 2, 0, 0, 0]);
    q4k[16] = 0x74;
    const v4k = k.dequantize('Q4_K', q4k);
    assert.equal([v4k[0], v4k[1], v4k[32], v4k[33]], [11, -1, 35, 0], `${k.variant} Q4_K`);
    // Q6_K: d = 2, scales[0] = −3; ql[0] = 0x05, qh[0] = 0b10: value 0 = q (5 | 2 << 4 = 37) − 32 = 5 → 2·(−3)·5 = −30
    const q6k = new Uint8Array(210);
    q6k[0] = 0x05;
    q6k[128] = 0b10;
    q6k[192] = 0xfd;
    q6k.set(half(2), 208);
    assert.is(k.dequantize('Q6_K', q6k)[0], -30, `${k.variant} Q6_K`);
    // Q2_K: d = 0.5, dmin = 1; scales[0] = 0x36 (scale 6, min 3); qs[0] = 0b11: value 0 = 0.5·6·3 − 3 = 6, value 32 (shift 2) = −3·dmin·... sub-block 2 scale 0 min 0 → 0
    const q2k = new Uint8Array(84);
    q2k[0] = 0x36;
    q2k[16] = 0b11;
    q2k.set([...half(0.5), ...half(1)], 80);
    const v2k = k.dequantize('Q2_K', q2k);
    assert.equal([v2k[0], v2k[1], v2k[32]], [6, -3, 0], `${k.variant} Q2_K`);
    // Q3_K: d = 0.5; scale 0 = 33 (low nibble 1 in scales[0], high bits 2 in scales[8]) → 1;
    // qs[32] = 0b10, hmask[0] bit 0 set: value 0 = 0.5·1·2 = 1; value 1: q 0, hbit 0 → −4 · 0.5 = −2
    const q3k = new Uint8Array(110);
    q3k[0] = 1;
    q3k[32] = 0b10;
    q3k[96] = 1;
    q3k[104] = 2;
    q3k.set(half(0.5), 108);
    const v3k = k.dequantize('Q3_K', q3k);
    assert.equal([v3k[0], v3k[1]], [1, -2], `${k.variant} Q3_K`);
  }
});

S('a tensor larger than the kernels\' scratch goes through in pieces, with the same values', () => {
  const bytes = randomBlocks('Q8_0', 40000, 3, false); // 1.36 MB of blocks, 5.1 MB of values
  const want = bits(referenceDequantize('Q8_0', bytes));
  for (const k of variants) assert.equal(bits(k.dequantize('Q8_0', bytes)), want, k.variant);
  const x = new Float32Array(256 * 5000).map((_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  const a = quantKernels('scalar').quantize('Q4_K', x);
  const piecewise = new Uint8Array(a.length);
  for (let b = 0; b < 5000; b += 1000) piecewise.set(quantKernels('scalar').quantize('Q4_K', x.subarray(b * 256, (b + 1000) * 256)), b * 144);
  assert.ok(a.every((v, i) => v === piecewise[i]), 'blocks do not depend on how the tensor is split');
});

S('TF.js affine, uint8 and uint16, equals the TypeScript reference (f64 arithmetic) in both builds', () => {
  const r = rng(5);
  for (const [bits_, n] of [[8, 1037], [16, 515]] as const) {
    const bytes = new Uint8Array(n * (bits_ / 8)).map(() => r.u32() & 255);
    for (const [scale, min] of [[0.1, -1], [0.0037811, -0.4123], [1 / 3, 7.25]]) {
      const want = bits(referenceAffine(bits_, scale, min, bytes));
      for (const k of variants) assert.equal(bits(k.dequantizeAffine(bits_, scale, min, bytes)), want, `${k.variant} uint${bits_} ${scale}`);
    }
  }
});

/** Values like weights: normal-ish, sub-blocks of different magnitudes and signs, a few outliers. */
function weights(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return new Float32Array(n).map((_, i) => r.normal() * (0.2 + ((i >> 4) % 9) * 0.3) * 0.05 + (((i >> 5) % 3) - 1) * 0.01 + (i % 331 === 0 ? 0.3 : 0));
}

/**
 * Stated bounds of the requantization error, as a fraction of the super-block's (or block's)
 * largest magnitude: RMS and max over values like weights.
 */
const BOUNDS: Record<string, [number, number]> = {
  Q8_0: [0.003, 0.0045], Q4_0: [0.05, 0.13], Q4_1: [0.045, 0.08], Q5_0: [0.025, 0.065], Q5_1: [0.025, 0.07],
  Q2_K: [0.1, 0.5], Q3_K: [0.06, 0.25], Q4_K: [0.03, 0.08], Q5_K: [0.015, 0.05], Q6_K: [0.008, 0.025], Q8_K: [0.003, 0.0085],
};

S('quantize → dequantize of every writable type is within the stated error, the same bytes in both builds', () => {
  assert.equal(GGML_WRITABLE.slice().sort(), Object.keys(BOUNDS).sort());
  for (const type of GGML_WRITABLE) {
    const [per] = GGML_BLOCK_SHAPES[type];
    const x = weights(256 * 12, 11);
    const q = variants[0].quantize(type, x);
    for (const k of variants.slice(1)) assert.ok(k.quantize(type, x).every((v, i) => v === q[i]), `${type}: ${k.variant} bytes differ`);
    const back = variants[0].dequantize(type, q);
    const [rmsB, maxB] = BOUNDS[type];
    for (let b = 0; b < x.length / per; b++) {
      const blk = x.subarray(b * per, (b + 1) * per);
      const amax = blk.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      let sq = 0;
      let mx = 0;
      for (let j = 0; j < per; j++) {
        const e = Math.abs(back[b * per + j] - blk[j]);
        sq += e * e;
        mx = Math.max(mx, e);
      }
      const rms = Math.sqrt(sq / per);
      assert.ok(rms <= rmsB * amax, `${type} block ${b}: rms ${rms} > ${rmsB}·${amax}`);
      assert.ok(mx <= maxB * amax, `${type} block ${b}: max ${mx} > ${maxB}·${amax}`);
    }
  }
});

S('SIMD and scalar builds write the same bytes for edge values (NaN, ±Inf, subnormals, ±0)', () => {
  if (variants.length < 2) return;
  const x = edgyF32(256 * 16, 29);
  x.fill(-0, 0, 16).fill(0, 16, 20); // a block of zeros of both signs
  for (const type of GGML_WRITABLE) {
    const [a, b] = variants.map((k) => k.quantize(type, x));
    assert.ok(a.every((v, i) => v === b[i]), `${type}: the builds differ`);
  }
  for (const bits_ of [8, 16] as const) {
    const [a, b] = variants.map((k) => k.quantizeAffine(bits_, 0.01, -1, x));
    assert.ok(a.every((v, i) => v === b[i]), `affine uint${bits_}: the builds differ`);
  }
});

S('Q2_K and Q3_K: the scale search does better than the plain range scale; zeros stay zero', () => {
  for (const type of ['Q2_K', 'Q3_K']) {
    const x = weights(256 * 8, 19);
    const back = quantKernels('scalar').dequantize(type, quantKernels('scalar').quantize(type, x));
    let sq = 0;
    for (let i = 0; i < x.length; i++) sq += (back[i] - x[i]) ** 2;
    // the plain scale: each sub-block's range over the codes, rounded at the stored precision of a float
    let plain = 0;
    const levels = type === 'Q2_K' ? 3 : 7;
    for (let s = 0; s < x.length; s += 16) {
      const blk = x.subarray(s, s + 16);
      const lo = type === 'Q2_K' ? Math.min(0, ...blk) : -Math.max(...blk.map(Math.abs));
      const hi = type === 'Q2_K' ? Math.max(...blk) : Math.max(...blk.map(Math.abs));
      const step = (hi - lo) / levels;
      for (const v of blk) plain += (v - (lo + Math.round((v - lo) / step) * step)) ** 2;
    }
    assert.ok(sq < plain, `${type}: squared error ${sq} is not below the plain range quantizer's ${plain}`);
    const z = quantKernels('scalar').dequantize(type, quantKernels('scalar').quantize(type, new Float32Array(256)));
    assert.ok(z.every((v) => v === 0), `${type}: zeros`);
  }
});

S('affine quantize: round to nearest, clamped; NaN gives code 0', () => {
  for (const k of variants) {
    const q = k.quantizeAffine(8, 0.5, -1, new Float32Array([-1, -0.74, -0.76, 200, -50, NaN]));
    assert.equal(Array.from(q), [0, 1, 0, 255, 0, 0], k.variant);
    const w = k.quantizeAffine(16, 2, 1, new Float32Array([515, 1e9]));
    assert.equal(Array.from(w), [1, 1, 255, 255], k.variant);
  }
});

S('errors: unknown types, partial blocks', async () => {
  const k = variants[0];
  await expectCode((async () => k.dequantize('IQ2_XXS', new Uint8Array(66)))(), 'E_ARGUMENT');
  await expectCode((async () => k.quantize('Q8_1', new Float32Array(32)))(), 'E_ARGUMENT');
  await expectCode((async () => k.dequantize('Q4_0', new Uint8Array(19)))(), 'E_ARGUMENT');
  await expectCode((async () => k.quantize('Q4_K', new Float32Array(32)))(), 'E_ARGUMENT');
  await expectCode((async () => k.quantizeAffine(8, 0, 0, new Float32Array(1)))(), 'E_ARGUMENT');
});

S.run();
