// TF.js weight shards tracked one by one: a shard split into weights (and pieces of weights that span
// shards) by the model.json next to it, byte-exact rebuild from the skeleton, shards with no manifest,
// bytes past the weights, and the shards of one model put back together into whole weights for diffs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { concat, memorySink, readerFromChunks } from '../../src/core/io.ts';
import { getFormat } from '../../src/formats/index.ts';
import { writeTfjs, type TfjsWriteTensor } from '../../src/formats/tfjs.ts';
import { findTfjsManifest, tfjsShard, RAW_WINDOW_BYTES } from '../../src/formats/tfjs-shard.ts';
import type { FileAccess, StreamedTensor } from '../../src/formats/types.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { cleanCheckpoint } from '../../src/theta/clean.ts';
import { diffModels } from '../../src/theta/diff.ts';
import type { ModelMetadata } from '../../src/theta/metadata.ts';
import { rebuildTensor } from '../../src/theta/rebuild.ts';
import { smudgeCheckpoint } from '../../src/theta/smudge.ts';
import { ShardLayoutError, tfjsModelTensors } from '../../src/theta/tfjs-model.ts';
import { lcgFloats, memoryFiles } from './test-data.ts';

const test = suite('tfjs-shard');

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

const floats = (n: number, seed: number) => new Uint8Array(lcgFloats(n, seed).buffer);

/** A model whose 3-byte bool weight puts every later float off 4-byte alignment, in 3000-byte shards. */
function weights(bump = 0): TfjsWriteTensor[] {
  const kernel = floats(2000, 7);
  if (bump) {
    const v = new Float32Array(kernel.buffer);
    for (let i = 0; i < 20; i++) v[i * 7] += bump;
  }
  return [
    { name: 'emb/flag', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { name: 'dense/kernel', dtype: 'F32', shape: [40, 50], data: kernel },
    { name: 'dense/bias', dtype: 'F32', shape: [50], data: floats(50, 8) },
    { name: 'q/codes', dtype: 'U8', shape: [600], data: floats(150, 9), quantization: { dtype: 'uint8', scale: 0.01, min: -1 } },
    { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
    { name: 'out/kernel', dtype: 'F32', shape: [50, 10], data: floats(500, 10) },
  ];
}

async function writeModel(dir: string, ws: TfjsWriteTensor[], shardBytes = 3000): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  await writeTfjs(ws, async (p) => {
    const parts: Uint8Array[] = [];
    return { async write(b) { parts.push(b.slice()); }, async close() { out.set(dir ? `${dir}/${p}` : p, concat(parts)); } };
  }, { shardBytes });
  return out;
}


/** Open a shard from 7-byte pieces (a pipe), read every tensor, and rebuild it from the skeleton. */
async function roundTrip(path: string, files: Map<string, Uint8Array>) {
  const bytes = files.get(path)!;
  const chunks = (async function* () { for (let i = 0; i < bytes.length; i += 7) yield bytes.slice(i, i + 7); })();
  const reader = await tfjsShard.open(readerFromChunks(chunks, path), { fileName: path, files: memoryFiles(files) });
  const tensors: (Omit<StreamedTensor, 'chunks' | 'bytes'> & { data: Uint8Array })[] = [];
  for await (const t of reader.tensors()) tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength, data: await t.bytes() });
  const skeleton = reader.skeleton();
  const sink = memorySink();
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  await tfjsShard.rebuild(skeleton, (n) => (async function* () { yield byName.get(n)!; })(), sink);
  assert.ok(equalBytes(sink.bytes(), bytes), `${path} rebuilt byte for byte`);
  return { reader, tensors };
}

test('a shard is split by its model.json into whole weights and pieces of weights that span shards', async () => {
  const files = await writeModel('m', weights());
  files.set('m/notes.json', new TextEncoder().encode('{"not": "a manifest"}'));
  const seen: Record<string, { dtype: string; shape: number[] }> = {};
  for (const path of [...files.keys()].filter((p) => p.endsWith('.bin')).sort()) {
    const { reader, tensors } = await roundTrip(path, files);
    assert.is(reader.layout.modelJson, 'm/model.json');
    assert.is(tensors.reduce((n, t) => n + t.byteLength, 0), files.get(path)!.length, 'tensors cover the shard');
    for (const t of tensors) seen[t.name] = { dtype: t.dtype, shape: t.shape };
  }
  // 3 + 8000 + 200 + 600 + 2000 bytes in shards of 3000: the kernel spans shards 1-3, out/kernel 3-4
  assert.equal(Object.keys(seen).sort(), ['dense/bias', 'dense/kernel#0', 'dense/kernel#2997', 'dense/kernel#5997', 'emb/flag', 'out/kernel#0', 'out/kernel#197', 'q/codes']);
  assert.equal(seen['emb/flag'], { dtype: 'BOOL', shape: [3] });
  assert.equal(seen['dense/bias'], { dtype: 'F32', shape: [50] }, 'a whole weight keeps its layout');
  assert.equal(seen['q/codes'], { dtype: 'U8', shape: [600] }, 'quantized weights are their stored codes');
  assert.equal(seen['dense/kernel#0'], { dtype: 'U8', shape: [2997] }, 'a piece that is not whole elements is bytes');
  assert.equal(seen['dense/kernel#2997'], { dtype: 'U8', shape: [3000] });
  assert.equal(seen['out/kernel#0'], { dtype: 'U8', shape: [197] });

  // without the 3-byte weight in front, the shards cut between whole floats
  const aligned = await writeModel('a', weights().slice(1));
  const { tensors } = await roundTrip('a/group1-shard1of4.bin', aligned);
  assert.equal(tensors.map((t) => [t.name, t.dtype, t.shape]), [['dense/kernel#0', 'F32', [750]]], 'a piece of whole elements keeps the dtype');
  const second = await roundTrip('a/group1-shard2of4.bin', aligned);
  assert.equal(second.tensors.map((t) => [t.name, t.dtype, t.shape]), [['dense/kernel#3000', 'F32', [750]]]);
});

test('the manifest is found a directory above the shard, and two manifests listing one shard are an error', async () => {
  const files = await writeModel('', weights(), 1 << 20);
  const bin = [...files.keys()].find((p) => p.endsWith('.bin'))!;
  // move the shard into weights/ and point model.json at it
  const moved = new Map<string, Uint8Array>();
  moved.set(`top/weights/${bin}`, files.get(bin)!);
  const json = JSON.parse(new TextDecoder().decode(files.get('model.json')!));
  json.weightsManifest[0].paths = [`weights/${bin}`];
  moved.set('top/model.json', new TextEncoder().encode(JSON.stringify(json)));
  const { reader, tensors } = await roundTrip(`top/weights/${bin}`, moved);
  assert.is(reader.layout.modelJson, 'top/model.json');
  assert.equal(tensors.map((t) => t.name), ['emb/flag', 'dense/kernel', 'dense/bias', 'q/codes', 'out/kernel']);

  moved.set('top/weights/other.json', new TextEncoder().encode(JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0], paths: [bin] }] })));
  const hit = await findTfjsManifest(`top/weights/${bin}`, memoryFiles(moved));
  assert.is(hit?.path, 'top/weights/other.json', 'the nearest directory wins');
  moved.set('top/weights/third.json', moved.get('top/weights/other.json')!);
  try {
    await findTfjsManifest(`top/weights/${bin}`, memoryFiles(moved));
    assert.unreachable('two manifests in one directory');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_FORMAT');
    assert.match((e as Error).message, /more than one model\.json/);
  }
});

test('a shard with no manifest, or a missing neighbour, is kept exactly in bounded windows; bytes past the weights are extra', async () => {
  const files = await writeModel('m', weights());
  const lone = new Map([['x/data.bin', files.get('m/group1-shard2of4.bin')!]]);
  const a = await roundTrip('x/data.bin', lone);
  assert.is(a.reader.layout.modelJson, null);
  assert.match(a.reader.layout.reason!, /no model\.json/);
  assert.equal(a.tensors.map((t) => t.name), ['#bytes@0']);
  assert.ok(RAW_WINDOW_BYTES >= 1 << 20);

  const gap = new Map(files);
  gap.delete('m/group1-shard1of4.bin');
  const b = await roundTrip('m/group1-shard2of4.bin', gap);
  assert.match(b.reader.layout.reason!, /group1-shard1of4\.bin, is missing/);
  assert.equal(b.tensors.map((t) => t.name), ['#bytes@0']);

  const longer = new Map(files);
  const last = files.get('m/group1-shard4of4.bin')!;
  longer.set('m/group1-shard4of4.bin', concat([last, new Uint8Array([9, 9, 9, 9, 9])]));
  const c = await roundTrip('m/group1-shard4of4.bin', longer);
  assert.equal(c.tensors.map((t) => t.name), ['out/kernel#197', `#extra@${last.length}`]);

  const shorter = new Map(files);
  shorter.set('m/group1-shard4of4.bin', last.slice(0, 100));
  const d = await roundTrip('m/group1-shard4of4.bin', shorter);
  assert.equal(d.tensors.map((t) => [t.name, t.byteLength]), [['out/kernel#197', 100]], 'a short shard ends in a short piece');
});

test('tfjs-shard is never sniffed and cannot write a lone shard', async () => {
  assert.is(getFormat('tfjs-shard'), tfjsShard);
  assert.is(tfjsShard.sniff(new Uint8Array([1, 2, 3]), 'x.bin'), false);
  try {
    await tfjsShard.write([], memorySink());
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_ARGUMENT');
  }
});

/** Clean every shard of a model into a store, as `git add` of the directory does. */
async function cleanModel(files: Map<string, Uint8Array>, store: ReturnType<typeof createMemoryStore>, previous = new Map<string, ModelMetadata>()) {
  const kernels = await getKernels();
  const metas = new Map<string, ModelMetadata>();
  for (const [path, bytes] of files) {
    if (!path.endsWith('.bin')) continue;
    const reader = await tfjsShard.open(readerFromChunks((async function* () { yield bytes; })(), path), { fileName: path, files: memoryFiles(files) });
    const meta = await cleanCheckpoint({ reader, previous: previous.get(path) ?? null, store, kernels, fileSize: bytes.length });
    meta.size = bytes.length;
    metas.set(path, meta);
    const sink = memorySink();
    await smudgeCheckpoint({ metadata: meta, format: tfjsShard, store, kernels, sink });
    assert.ok(equalBytes(sink.bytes(), bytes), `${path}: smudge gives the shard back`);
  }
  return metas;
}

test('the shards of one model.json are put back together into whole weights, and diffed weight by weight', async () => {
  const kernels = await getKernels();
  const store = createMemoryStore();
  const v1 = await writeModel('m', weights());
  const v2 = await writeModel('m', weights(0.5));
  const m1 = await cleanModel(v1, store);
  const m2 = await cleanModel(v2, store, m1);
  const manifest = (await findTfjsManifest('m/group1-shard1of4.bin', memoryFiles(v1)))!.manifest;
  const load = (_s: string, name: string, e: ModelMetadata['tensors'][string]) => rebuildTensor(name, e, store, kernels);
  const side = (metas: Map<string, ModelMetadata>) => tfjsModelTensors({ manifestPath: 'm/model.json', manifest, shard: async (p) => metas.get(p) ?? null }, load);

  const a = await side(m1);
  const ws = weights();
  assert.equal(a.map((t) => t.name), ws.map((w) => w.name));
  for (const [i, t] of a.entries()) {
    assert.is(t.dtype, ws[i].dtype);
    assert.equal(t.shape, ws[i].shape);
    assert.ok(equalBytes(await t.load(), ws[i].data), `${t.name} joined from its pieces`);
  }
  assert.is(a.find((t) => t.name === 'dense/kernel')!.composite, true);
  assert.is(a.find((t) => t.name === 'dense/bias')!.composite, undefined, 'a weight in one shard is its entry as it is');

  const d = await diffModels(a, await side(m2), { kernels });
  assert.equal(d.summary, { added: 0, removed: 0, modified: 1, unchanged: 5 });
  const k = d.tensors.find((t) => t.name === 'dense/kernel')!;
  assert.is(k.status, 'modified');
  // 20 elements moved by 0.5 each (f32 rounding aside): ‖Δ‖ = sqrt(20 · 0.25)
  assert.ok(Math.abs(k.l2! - Math.sqrt(5)) < 1e-4, `l2 ${k.l2}`);
  assert.ok(Math.abs(k.maxabs! - 0.5) < 1e-4, `maxabs ${k.maxabs}`);

  // the same weights from shards cut elsewhere: hashes differ, bytes do not, so nothing changed
  const resharded = await writeModel('m', weights(), 2500);
  const m3 = await cleanModel(resharded, store);
  const manifest3 = (await findTfjsManifest([...resharded.keys()].find((p) => p.endsWith('.bin'))!, memoryFiles(resharded)))!.manifest;
  assert.is(manifest3.groups[0].paths.length, 5);
  const c = await tfjsModelTensors({ manifestPath: 'm/model.json', manifest: manifest3, shard: async (p) => m3.get(p) ?? null }, load);
  const same = await diffModels(a, c, { kernels });
  assert.equal(same.summary, { added: 0, removed: 0, modified: 0, unchanged: 6 });
  const approx = await diffModels(a, await side(m2), { kernels, approx: true });
  assert.is(approx.tensors.find((t) => t.name === 'dense/kernel')!.l2, null, 'pieces give no signature to estimate from');

  // shards cleaned against another manifest (same shard names, weights in another order) do not fit this one
  const reordered = await writeModel('m', weights().reverse());
  const m4 = await cleanModel(reordered, store);
  assert.equal([...m4.keys()].sort(), [...m1.keys()].sort());
  try {
    await tfjsModelTensors({ manifestPath: 'm/model.json', manifest, shard: async (p) => m4.get(p) ?? null }, load);
    assert.unreachable('mismatched layout');
  } catch (e) {
    assert.instance(e, ShardLayoutError);
    assert.is((e as ShardLayoutError).code, 'E_SHARD_LAYOUT');
    assert.match((e as Error).message, /git theta add m/);
  }
});

test.run();
