// TF.js: model.json + shards built here from the published weights-manifest format, with a weight
// spanning shards, uint8/uint16/float16 quantization; byte-identical rebuild of every file; bad input.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { collect, memorySink, readerFromBytes, readerFromChunks, type ByteSink } from '../../src/core/io.ts';
import { openTfjs, rebuildTfjs, writeTfjs, tfjs, type TfjsTensor } from '../../src/formats/tfjs.ts';
import { dequantizeForStats } from '../../src/formats/convert.ts';
import { sniffFormat } from '../../src/formats/index.ts';
import { expectCode } from './assertions.ts';

const enc = new TextEncoder();
const f32 = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);
const i32 = (v: number[]) => new Uint8Array(new Int32Array(v).buffer);
const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

// weights: dense (6 floats = 24 B), q (uint8, 5 B), idx (int32 ×3 = 12 B), h (float16 ×2 = 4 B), u16 (uint16 ×3 = 6 B), mask (bool ×3)
const W = {
  dense: f32([1, -2, 3.5, 4, 5, 6]),
  q: new Uint8Array([0, 1, 2, 128, 255]),
  idx: i32([7, -8, 9]),
  h: new Uint8Array([0x00, 0x3c, 0x00, 0xc0]),
  u16: new Uint8Array([1, 0, 0, 1, 255, 255]),
  mask: new Uint8Array([1, 0, 1]),
};
const all = new Uint8Array([...W.dense, ...W.q, ...W.idx, ...W.h, ...W.u16, ...W.mask]);
// shards split inside 'dense' and inside 'idx'
const cut1 = 10, cut2 = 33;
const files: Record<string, Uint8Array> = {
  'model.json': enc.encode(JSON.stringify({
    format: 'layers-model',
    generatedBy: 'keras v2.11',
    convertedBy: 'TensorFlow.js Converter v4.2.0',
    modelTopology: { class_name: 'Sequential' },
    weightsManifest: [{
      paths: ['group1-shard1of3.bin', 'group1-shard2of3.bin', 'sub/group1-shard3of3.bin'],
      weights: [
        { name: 'dense/kernel', shape: [2, 3], dtype: 'float32' },
        { name: 'q', shape: [5], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
        { name: 'idx', shape: [3], dtype: 'int32' },
        { name: 'h', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
        { name: 'u16', shape: [3], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.25, min: 2, original_dtype: 'float32' } },
        { name: 'mask', shape: [3], dtype: 'bool' },
      ],
    }],
  }, null, 1)),
  'group1-shard1of3.bin': all.slice(0, cut1),
  'group1-shard2of3.bin': all.slice(cut1, cut2),
  'sub/group1-shard3of3.bin': all.slice(cut2),
};

function opener(fs: Record<string, Uint8Array>, chunk?: number) {
  const opened: string[] = [];
  return {
    opened,
    openShard: async (p: string) => {
      opened.push(p);
      if (!(p in fs)) throw new Error(`no file ${p}`);
      const b = fs[p];
      return chunk ? readerFromChunks((async function* () { for (let i = 0; i < b.length; i += chunk) yield b.slice(i, i + chunk); })(), p) : readerFromBytes(b, p);
    },
  };
}

function sinks() {
  const out = new Map<string, Uint8Array>();
  return { out, sinkFor: async (p: string): Promise<ByteSink> => { const s = memorySink(); return { write: (b) => s.write(b), close: async () => { out.set(p, s.bytes()); } }; } };
}

async function readAll(fs: Record<string, Uint8Array>, chunk?: number) {
  const o = opener(fs, chunk);
  const r = await openTfjs(readerFromBytes(fs['model.json'], 'model.json'), { fileName: 'model.json', openShard: o.openShard });
  const got = new Map<string, { t: TfjsTensor; bytes: Uint8Array }>();
  for await (const t of r.tensors()) got.set(t.name, { t, bytes: chunk ? await collect(t.chunks(chunk)) : await t.bytes() });
  return { r, got, opened: o.opened };
}

const T = suite('tfjs');

T('weights across shards, quantized dtypes, dequantized stats, every file rebuilt byte for byte', async () => {
  assert.is(sniffFormat(files['model.json'].subarray(0, 4096), 'model.json').id, 'tfjs');
  for (const chunk of [undefined, 3]) {
    const { r, got, opened } = await readAll(files, chunk);
    assert.equal(opened, ['group1-shard1of3.bin', 'group1-shard2of3.bin', 'sub/group1-shard3of3.bin']);
    assert.equal([...got.keys()], ['dense/kernel', 'q', 'idx', 'h', 'u16', 'mask']);
    assert.ok(equalBytes(got.get('dense/kernel')!.bytes, W.dense));
    assert.ok(equalBytes(got.get('idx')!.bytes, W.idx));
    assert.is(got.get('dense/kernel')!.t.dtype, 'F32');
    assert.equal(got.get('dense/kernel')!.t.shape, [2, 3]);
    assert.is(got.get('q')!.t.dtype, 'U8');
    assert.is(got.get('h')!.t.dtype, 'F16');
    assert.is(got.get('u16')!.t.dtype, 'U16');
    assert.is(got.get('mask')!.t.dtype, 'BOOL');
    assert.is(r.metadata!.format, 'layers-model');
    const sk = r.skeleton();
    const { out, sinkFor } = sinks();
    await rebuildTfjs(sk, (n) => (async function* () { const b = got.get(n)!.bytes; for (let i = 0; i < b.length; i += 4) yield b.subarray(i, i + 4); })(), sinkFor);
    assert.equal([...out.keys()].sort(), Object.keys(files).sort());
    for (const [p, b] of Object.entries(files)) assert.ok(equalBytes(out.get(p)!, b), `${p} differs`);
    // the single-sink rebuild writes model.json
    const m = memorySink();
    await tfjs.rebuild(sk, () => { throw new Error('not needed'); }, m);
    assert.ok(equalBytes(m.bytes(), files['model.json']));
  }
  // dequantization for statistics: q·scale + min
  const o = opener(files);
  const r = await openTfjs(files['model.json'], { openShard: o.openShard });
  for await (const t of r.tensors()) {
    const it = dequantizeForStats(t, 2);
    if (t.name === 'q') { const v: number[] = []; for await (const x of it!) v.push(...x); assert.equal(v, [-1, -0.5, 0, 63, 126.5]); }
    else if (t.name === 'u16') { const v: number[] = []; for await (const x of it!) v.push(...x); assert.equal(v, [2.25, 66, 16385.75]); }
    else assert.is(it, undefined, t.name);
  }
});

T('writer: shards of a given size, read back and rebuilt identically', async () => {
  const { out, sinkFor } = sinks();
  await writeTfjs([
    { name: 'a', dtype: 'F32', shape: [6], data: W.dense },
    { name: 'q', dtype: 'U8', shape: [5], data: W.q, quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
  ], sinkFor, { shardBytes: 8 });
  assert.equal([...out.keys()], ['model.json', 'group1-shard1of4.bin', 'group1-shard2of4.bin', 'group1-shard3of4.bin', 'group1-shard4of4.bin']);
  const fs = Object.fromEntries(out);
  const { got, r } = await readAll(fs);
  assert.ok(equalBytes(got.get('a')!.bytes, W.dense));
  assert.is(got.get('q')!.t.quantization!.scheme, 'tfjs:uint8');
  const again = sinks();
  await rebuildTfjs(r.skeleton(), (n) => (async function* () { yield got.get(n)!.bytes; })(), again.sinkFor);
  for (const [p, b] of out) assert.ok(equalBytes(again.out.get(p)!, b), p);
  await expectCode(tfjs.write([], memorySink()), 'E_ARGUMENT');
});

T('bad input: short or long shards, unsafe paths, bad manifests, bad UTF-8, missing openShard', async () => {
  const drain = async (fs: Record<string, Uint8Array>) => { await readAll(fs); };
  await expectCode(drain({ ...files, 'sub/group1-shard3of3.bin': files['sub/group1-shard3of3.bin'].slice(0, 4) }), 'E_TRUNCATED');
  await expectCode(drain({ ...files, 'sub/group1-shard3of3.bin': new Uint8Array([...files['sub/group1-shard3of3.bin'], 0]) }), 'E_FORMAT', 'trailing');
  await expectCode(drain({ ...files, 'group1-shard2of3.bin': new Uint8Array(0) }), 'E_FORMAT', 'empty-shard');
  const withManifest = (m: unknown) => ({ ...files, 'model.json': enc.encode(JSON.stringify({ weightsManifest: m })) });
  for (const p of ['../secret.bin', '/etc/passwd', 'a/../../b', 'C:\\x', 'a\\b', 'https://x/y']) {
    await expectCode(drain(withManifest([{ paths: [p], weights: [] }])), 'E_FORMAT', 'unsafe-path');
  }
  await expectCode(drain(withManifest([{ paths: ['a'], weights: [{ name: 'x', shape: [1], dtype: 'string' }] }])), 'E_FORMAT', 'dtype');
  await expectCode(drain(withManifest([{ paths: ['a'], weights: [{ name: 'x', shape: [2 ** 40, 2 ** 20], dtype: 'float32' }] }])), 'E_FORMAT', 'overflow');
  await expectCode(drain(withManifest([{ paths: ['a'], weights: [{ name: 'x', shape: [1], dtype: 'float32', quantization: { dtype: 'uint8' } }] }])), 'E_FORMAT', 'quantization');
  await expectCode(drain(withManifest([{ paths: ['a'], weights: [{ name: 'x', shape: [1], dtype: 'float32' }, { name: 'x', shape: [1], dtype: 'float32' }] }])), 'E_FORMAT', 'duplicate');
  await expectCode(drain(withManifest([{ paths: ['a', 'a'], weights: [] }])), 'E_FORMAT', 'duplicate');
  await expectCode(drain({ ...files, 'model.json': new Uint8Array([0x7b, 0xff, 0x7d]) }), 'E_FORMAT', 'utf8');
  await expectCode(drain({ ...files, 'model.json': enc.encode('{"modelTopology": {}}') }), 'E_FORMAT', 'manifest');
  await expectCode(drain({ ...files, 'model.json': enc.encode('{"weightsManifest": [') }), 'E_FORMAT', 'json');
  await expectCode(tfjs.open(readerFromBytes(files['model.json'])), 'E_ARGUMENT');
});

T.run();
