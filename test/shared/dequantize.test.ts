// Dequantization of every ggml block type we decode (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K,
// Q8_K) against the values llama.cpp's own Python reference gives for the same blocks
// (ggml-blocks.data.ts, from scripts/ggml-blocks-oracle.py), bit for bit, in any chunking; TF.js
// affine; the labels shown for quantized types.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dequantizeBytes, dequantizerFor, quantLabel, sameQuant, type QuantInfo } from '../../src/formats/dequantize.ts';
import { getKernels } from '../../src/core/kernels.ts';
import { GGML_DEQUANTIZABLE } from '../../src/core/ggml-kernels.ts';
import { diffModels, type DiffTensor } from '../../src/theta/diff.ts';
import { GGML_BLOCKS } from './ggml-blocks.data.ts';
import { expectCode } from './assertions.ts';
import { base64Floats, hexBytes } from './test-data.ts';

const D = suite('dequantize');

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

D('every ggml block type equals llama.cpp\'s reference, bit for bit', () => {
  assert.equal(Object.keys(GGML_BLOCKS).sort(), GGML_DEQUANTIZABLE.filter((k) => k !== 'Q8_1').sort());
  for (const [type, [blocks, values]] of Object.entries(GGML_BLOCKS)) {
    const got = dequantizeBytes({ scheme: `ggml:${type}`, shape: [] }, hexBytes(blocks))!;
    const want = base64Floats(values);
    assert.is(got.length, want.length, type);
    assert.equal(bits(got), bits(want), type);
  }
});

D('streaming in uneven pieces gives the same values', () => {
  for (const [type, [blocks, values]] of Object.entries(GGML_BLOCKS)) {
    const bytes = hexBytes(blocks);
    const d = dequantizerFor({ scheme: `ggml:${type}` })!();
    const parts: number[] = [];
    for (let at = 0; at < bytes.length; at += 7) parts.push(...d.push(bytes.subarray(at, at + 7)));
    parts.push(...d.finish());
    assert.equal(bits(new Float32Array(parts)), bits(base64Floats(values)), type);
  }
});

D('a partial block is an error; unknown schemes have no dequantizer', async () => {
  const d = dequantizerFor({ scheme: 'ggml:Q8_0' })!();
  d.push(new Uint8Array(40));
  await expectCode((async () => d.finish())(), 'E_FORMAT');
  assert.is(dequantizerFor({ scheme: 'ggml:IQ2_XXS' }), undefined);
  assert.is(dequantizerFor({ scheme: 'tfjs:uint8' }), undefined); // no scale/min
});

D('TF.js affine: q·scale + min as float32', () => {
  const v = dequantizeBytes({ scheme: 'tfjs:uint8', shape: [3], scale: 0.1, min: -1 }, new Uint8Array([0, 10, 255]))!;
  assert.equal(Array.from(v), [0, 10, 255].map((q) => Math.fround(q * 0.1 - 1)));
  const w = dequantizeBytes({ scheme: 'tfjs:uint16', shape: [1], scale: 2, min: 1 }, new Uint8Array([1, 1]))!;
  assert.equal(Array.from(w), [257 * 2 + 1]);
});

D('labels and equality', () => {
  assert.is(quantLabel('ggml:Q4_K'), 'Q4_K');
  assert.is(quantLabel('tfjs:uint8'), 'uint8→float32 (affine)');
  assert.ok(sameQuant({ scheme: 'tfjs:uint8', shape: [2], scale: 1, min: 0 }, { scheme: 'tfjs:uint8', shape: [2], scale: 1, min: 0 }));
  assert.not.ok(sameQuant({ scheme: 'tfjs:uint8', shape: [2], scale: 1, min: 0 }, { scheme: 'tfjs:uint8', shape: [2], scale: 1, min: 0.5 }));
  assert.not.ok(sameQuant(undefined, { scheme: 'ggml:Q8_0', shape: [32] }));
});

D.run();

const Q = suite('diff of quantized tensors');

const tensor = (name: string, bytes: Uint8Array, quant?: QuantInfo): DiffTensor => ({
  name, dtype: 'U8', shape: [bytes.length], hash: Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('').padEnd(32, '0').slice(0, 32),
  lsh: [], ...(quant ? { quant } : {}), load: async () => bytes,
});

Q('numbers of the dequantized values; a re-quantized weight with the same bytes is modified; older metadata without quant', async () => {
  const kernels = await getKernels();
  const q = (scale: number, min: number): QuantInfo => ({ scheme: 'tfjs:uint8', shape: [4], scale, min });
  const a = new Uint8Array([0, 10, 20, 30]);
  const b = new Uint8Array([0, 10, 20, 40]);
  const d = await diffModels([tensor('w', a, q(0.5, -1))], [tensor('w', b, q(0.5, -1))], { kernels });
  const [t] = d.tensors;
  assert.is(t.status, 'modified');
  assert.is(t.dtype, 'uint8→float32 (affine)');
  assert.is(t.storage_dtype, 'U8');
  assert.is(t.maxabs, 5); // (40 − 30) · 0.5, not 10
  const va = [0, 10, 20, 30].map((x) => x * 0.5 - 1), vb = [0, 10, 20, 40].map((x) => x * 0.5 - 1);
  assert.ok(Math.abs(t.l2! - 5) < 1e-6);
  assert.ok(Math.abs(t.relative! - 5 / Math.hypot(...va)) < 1e-6);
  assert.ok(Math.abs(t.cosine! - va.reduce((s, x, i) => s + x * vb[i], 0) / (Math.hypot(...va) * Math.hypot(...vb))) < 1e-6);

  const re = await diffModels([tensor('w', a, q(0.5, -1))], [tensor('w', a, q(0.25, -1))], { kernels });
  assert.is(re.tensors[0].status, 'modified', 'same bytes, other scale: other values');
  assert.is(re.tensors[0].old_dtype, undefined, 'same layout');
  assert.ok(re.tensors[0].maxabs! > 0);

  const old = await diffModels([tensor('w', a)], [tensor('w', a, q(0.5, -1))], { kernels });
  assert.is(old.tensors[0].status, 'unchanged', 'metadata written before quant was recorded');
  assert.is(old.tensors[0].dtype, 'uint8→float32 (affine)');
});

Q.run();
