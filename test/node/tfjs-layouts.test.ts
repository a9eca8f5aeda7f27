// TF.js layouts as shipped: a face-api style bare `*-weights_manifest.json` with extension-less
// shards and uint8-quantized weights, and a directory holding several models side by side
// (`<name>.json` + `<name>.bin`). `track <dir>` binds one pattern per directory and says what it
// bound in one line per model; diffs of quantized weights equal a numpy reference of the
// dequantized values; checkouts are byte-identical; inspect and log take shards and directories.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { lcgFloats } from '../shared/test-data.ts';
import { cleanup, git, inlineBytesBetween, objectFiles, sha256, tempDir, theta, thetaOk, thetaRepo } from './helpers.ts';

const PYTHON = '/usr/bin/python3';
const T = suite('tfjs layouts people ship');

interface W { name: string; shape: number[]; dtype: 'float32'; data: Uint8Array; quantization?: { dtype: 'uint8'; scale: number; min: number } }

/** Writes the weights end to end into shards of `shardBytes` named by `shardName(i)`; returns the manifest array. */
function writeShards(dir: string, ws: W[], shardBytes: number, shardName: (i: number) => string) {
  const all = new Uint8Array(ws.reduce((n, w) => n + w.data.length, 0));
  let at = 0;
  for (const w of ws) { all.set(w.data, at); at += w.data.length; }
  const paths: string[] = [];
  for (let i = 0; i * shardBytes < all.length; i++) {
    paths.push(shardName(i));
    writeFileSync(join(dir, shardName(i)), all.subarray(i * shardBytes, (i + 1) * shardBytes));
  }
  return [{ paths, weights: ws.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype, ...(w.quantization ? { quantization: w.quantization } : {}) })) }];
}

const codes = (n: number, seed: number) => new Uint8Array(lcgFloats(n, seed).map((x) => Math.floor((x + 1) * 127.5) & 255));
const f32 = (n: number, seed: number) => new Uint8Array(lcgFloats(n, seed).buffer);

function faceApi(bump: boolean): W[] {
  const filters = codes(3 * 3 * 32 * 64, 3);
  if (bump) for (let i = 0; i < filters.length; i += 97) filters[i] = (filters[i] + 1) & 255;
  return [
    { name: 'conv0/filters', shape: [3, 3, 3, 32], dtype: 'float32', data: codes(864, 1), quantization: { dtype: 'uint8', scale: 0.00654, min: -0.8 } },
    { name: 'conv0/bias', shape: [32], dtype: 'float32', data: f32(32, 2) },
    { name: 'conv32_down/conv/filters', shape: [3, 3, 32, 64], dtype: 'float32', data: filters, quantization: { dtype: 'uint8', scale: 0.0021, min: -0.27 } },
    { name: 'fc/weights', shape: [64, 10], dtype: 'float32', data: f32(640, 4) },
  ];
}

function hashes(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, sha256(readFileSync(join(dir, f)))]));
}

/** numpy: the statistics of the change of the dequantized uint8 weights (q·scale + min as float32). */
function numpyReference(a: Uint8Array, b: Uint8Array, scale: number, min: number) {
  const dir = tempDir('theta-ref-');
  try {
    writeFileSync(join(dir, 'a'), a);
    writeFileSync(join(dir, 'b'), b);
    const py = `
import numpy as np, json, sys
d = sys.argv[1]; scale = float(sys.argv[2]); mn = float(sys.argv[3])
q = lambda n: (np.fromfile(d + '/' + n, np.uint8).astype(np.float64) * scale + mn).astype(np.float32).astype(np.float64)
a, b = q('a'), q('b')
l2 = float(np.sqrt(((b - a) ** 2).sum()))
print(json.dumps(dict(l2=l2, relative=l2 / float(np.sqrt((a * a).sum())), maxabs=float(np.abs(b - a).max()),
                      cosine=float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())), mean=float(b.mean()), min=float(b.min()))))
`;
    const r = spawnSync(PYTHON, ['-c', py, dir, String(scale), String(min)], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`this test needs NumPy for ${PYTHON}: install python3-numpy (apt-get install -y python3-numpy) (${r.stderr ?? r.error})`);
    return JSON.parse(r.stdout) as { l2: number; relative: number; maxabs: number; cosine: number; mean: number; min: number };
  } finally {
    cleanup(dir);
  }
}

const close = (got: number, want: number, what: string) =>
  assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want) + 1e-9, `${what}: ${got} vs numpy ${want}`);

T('face-api: a bare weights manifest with extension-less shards, quantized weights diffed on their values', async () => {
  const dir = await thetaRepo([]);
  try {
    const w = join(dir, 'weights');
    mkdirSync(w);
    const shard = (i: number) => `tiny_face_detector_model-shard${i + 1}`;
    const manifest = writeShards(w, faceApi(false), 8000, shard);
    writeFileSync(join(w, 'tiny_face_detector_model-weights_manifest.json'), JSON.stringify(manifest));
    const v1 = hashes(w);

    // inspect the manifest, and a shard (shows its model)
    const ins = JSON.parse(await thetaOk(dir, 'inspect', 'weights/tiny_face_detector_model-weights_manifest.json', '--json'));
    const f = ins.tensors.find((t: { name: string }) => t.name === 'conv0/filters');
    assert.is(f.dtype, 'uint8→float32 (affine)');
    assert.is(f.storage_dtype, 'U8');
    assert.ok(f.stats.min >= -0.8 - 1e-6, 'statistics of the dequantized values');
    const viaShard = await theta(dir, ['inspect', 'weights/tiny_face_detector_model-shard2']);
    assert.is(viaShard.code, 0, viaShard.stderr);
    assert.match(viaShard.stderr, /is a weight shard of the TF\.js model .*tiny_face_detector_model-weights_manifest\.json/);
    assert.match(viaShard.stdout, /conv32_down\/conv\/filters/);

    // track the directory: one pattern for the shards, one line for the model
    const tr = await theta(dir, ['track', 'weights']);
    assert.is(tr.code, 0, tr.stderr);
    assert.is(tr.stderr.split('\n').filter((l) => l.includes('TF.js model')).length, 1);
    assert.match(tr.stderr, /tracking TF\.js model weights\/tiny_face_detector_model-weights_manifest\.json: its 3 weight shards as "weights\/\*-shard\*"/);
    assert.match(readFileSync(join(dir, '.gitattributes'), 'utf8'), /^weights\/\*-shard\* filter=theta diff=theta merge=theta theta-format=tfjs-shard$/m);

    await git(dir, 'add', '.gitattributes', 'weights');
    await git(dir, 'commit', '-q', '-m', 'v1');
    assert.match(await git(dir, 'show', 'HEAD:weights/tiny_face_detector_model-shard1'), /"format": "tfjs-shard"/);

    writeShards(w, faceApi(true), 8000, shard);
    const objects = join(dir, '.git', 'lfs', 'objects');
    const before = objectFiles(objects);
    await git(dir, 'add', 'weights');
    await git(dir, 'commit', '-q', '-m', 'v2');
    // the commit stores about the bytes of the one changed weight (3·3·32·64 uint8 codes)
    // objects in the store, plus the small ones that ride inline in the shards' metadata
    let stored = (await inlineBytesBetween(dir, 'HEAD~1', 'HEAD', (await git(dir, 'ls-files', 'weights')).split('\n').filter(Boolean))).bytes;
    for (const [oid, b] of objectFiles(objects)) if (!before.has(oid)) stored += b.length;
    assert.ok(stored > 0 && stored <= 1.1 * 18432 + 8192, `v2 stored ${stored} bytes for an 18432-byte weight`);

    const out = JSON.parse(await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json'));
    assert.is(out.files.length, 1);
    assert.is(out.files[0].path, 'weights/tiny_face_detector_model-weights_manifest.json');
    const t = out.files[0].tensors.find((x: { name: string }) => x.name === 'conv32_down/conv/filters');
    assert.is(t.dtype, 'uint8→float32 (affine)');
    assert.equal(t.shape, [3, 3, 32, 64]);
    const q = faceApi(false)[2], q2 = faceApi(true)[2];
    const ref = numpyReference(q.data, q2.data, q.quantization!.scale, q.quantization!.min);
    close(t.l2, ref.l2, 'l2');
    close(t.relative, ref.relative, 'relative');
    close(t.maxabs, ref.maxabs, 'max|Δ|');
    close(t.cosine, ref.cosine, 'cosine');
    assert.is(out.files[0].tensors.length, 1, 'only the changed weight without --all');

    // log by a shard names the model
    const log = JSON.parse(await thetaOk(dir, 'log', 'weights/tiny_face_detector_model-shard1', '--json'));
    assert.is(log.length, 2);
    assert.is(log[0].changed, 1);

    // checkout gives back every file byte for byte
    await git(dir, 'checkout', '-q', 'HEAD~1', '--', 'weights');
    assert.equal(hashes(w), v1);
  } finally {
    cleanup(dir);
  }
});

T('a directory of several models: one pattern, one line per model, later models covered, each listed', async () => {
  const dir = await thetaRepo([]);
  try {
    const m = join(dir, 'models');
    mkdirSync(m);
    const model = (name: string, seed: number, bump = 0) => {
      const ws: W[] = [
        { name: `${name}/kernel`, shape: [20, 30], dtype: 'float32', data: f32(600, seed) },
        { name: `${name}/codes`, shape: [256], dtype: 'float32', data: codes(256, seed + 1), quantization: { dtype: 'uint8', scale: 0.01, min: -1 } },
      ];
      if (bump) ws[1].data[5] = (ws[1].data[5] + bump) & 255;
      const man = writeShards(m, ws, 1 << 20, () => `${name}.bin`);
      writeFileSync(join(m, `${name}.json`), JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: man }));
    };
    for (const [i, n] of ['blazeface', 'facemesh', 'iris'].entries()) model(n, 10 * i + 1);
    const tr = await theta(dir, ['track', 'models']);
    assert.is(tr.code, 0, tr.stderr);
    const lines = tr.stderr.split('\n').filter((l) => l.includes('TF.js model'));
    assert.is(lines.length, 3, tr.stderr);
    for (const l of lines) assert.match(l, /its 1 weight shard as "models\/\*\.bin"/);
    const attrs = readFileSync(join(dir, '.gitattributes'), 'utf8').trim().split('\n');
    assert.equal(attrs, ['models/*.bin filter=theta diff=theta merge=theta theta-format=tfjs-shard']);

    // a model added later is covered by the same pattern
    model('handpose', 41);
    assert.match(await git(dir, 'check-attr', 'filter', '--', 'models/handpose.bin'), /filter: theta/);
    await git(dir, 'add', '.gitattributes', 'models');
    await git(dir, 'commit', '-q', '-m', 'v1');
    assert.match(await git(dir, 'show', 'HEAD:models/handpose.bin'), /"format": "tfjs-shard"/);

    // inspect of the directory lists each model
    const ins = JSON.parse(await thetaOk(dir, 'inspect', 'models', '--json'));
    assert.equal(ins.models.map((x: { path: string }) => x.path.split('/').pop()), ['blazeface.json', 'facemesh.json', 'handpose.json', 'iris.json']);

    model('facemesh', 11, 3);
    model('iris', 21, 5);
    await git(dir, 'add', 'models');
    await git(dir, 'commit', '-q', '-m', 'v2');
    const out = JSON.parse(await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json'));
    assert.equal(out.files.map((f: { path: string }) => f.path), ['models/facemesh.json', 'models/iris.json']);
    for (const f of out.files) assert.equal(f.tensors.map((t: { name: string }) => t.name), [`${f.path.slice(7, -5)}/codes`]);
    const iris = out.files[1].tensors[0];
    close(iris.maxabs, 0.05, 'five codes of 0.01');

    // log of the directory: each model
    const log = JSON.parse(await thetaOk(dir, 'log', 'models', '--json'));
    assert.is(log.models.length, 4);
    assert.equal(log.models.map((x: { log: { changed: number }[] }) => x.log[0].changed), [0, 1, 0, 1]);

    // a manifest named before it exists is refused, not bound
    const early = await theta(dir, ['track', 'later/model.json']);
    assert.is(early.code, 1);
    assert.match(early.stderr, /does not exist yet/);
    assert.is(early.stderr.trim().split('\n').length, 1);
  } finally {
    cleanup(dir);
  }
});

T.run();
