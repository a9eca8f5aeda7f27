// A TF.js model directory (model.json + weight shards) tracked in a real git repository as one model:
// `git theta track` on the model binds its shards, weights spanning shards are stored per weight,
// only changed weights add objects, checkout is byte-identical, `git theta diff` shows the model's
// weights (between revisions, against the index and the work tree), branches changing different
// weights merge with `git merge`, and the edges (model.json bound to the filter, a lone shard).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as nodeFs from 'node:fs';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { concat } from '../../src/core/io.ts';
import { writeTfjs, type TfjsWriteTensor } from '../../src/formats/tfjs.ts';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { diffRevisions, listModels } from '../../src/repo/index.ts';
import { lcgFloats } from '../shared/test-data.ts';
import { cleanup, filesUnder, git, inlineBytesBetween, run, sha256, theta, thetaOk, thetaRepo } from './helpers.ts';

const t = suite('tfjs directory in git');

const floats = lcgFloats;

/** kernel: 8000 bytes across 3000-byte shards, after a 3-byte bool weight (so pieces are unaligned). */
function model(kernelBump = 0, outBump = 0): TfjsWriteTensor[] {
  const kernel = floats(2000, 7);
  for (let i = 0; i < 20; i++) kernel[i * 100] += kernelBump; // spread over all three of its shards
  const out = floats(500, 10);
  if (outBump) out[499] += outBump;
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer);
  return [
    { name: 'emb/flag', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { name: 'dense/kernel', dtype: 'F32', shape: [40, 50], data: bytes(kernel) },
    { name: 'dense/bias', dtype: 'F32', shape: [50], data: bytes(floats(50, 8)) },
    { name: 'q/codes', dtype: 'U8', shape: [600], data: bytes(floats(150, 9)), quantization: { dtype: 'uint8', scale: 0.01, min: -1 } },
    { name: 'out/kernel', dtype: 'F32', shape: [50, 10], data: bytes(out) },
  ];
}

async function writeModel(dir: string, ws: TfjsWriteTensor[]): Promise<Record<string, string>> {
  mkdirSync(dir, { recursive: true });
  const hashes: Record<string, string> = {};
  await writeTfjs(ws, async (p) => {
    const parts: Uint8Array[] = [];
    return {
      async write(b) { parts.push(b.slice()); },
      async close() { const all = concat(parts); writeFileSync(join(dir, p), all); hashes[p] = sha256(all); },
    };
  }, { shardBytes: 3000 });
  return hashes;
}

function fileHashes(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, sha256(readFileSync(join(dir, f)))]));
}

const l2 = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));
const f32 = (w: TfjsWriteTensor) => new Float32Array(w.data.buffer, w.data.byteOffset, w.data.length / 4);

t('track binds the shards of a model.json, add stores them per weight, only changed weights add objects, checkout is exact', async () => {
  const dir = await thetaRepo([]);
  try {
    const v1 = await writeModel(join(dir, 'web'), model());
    const tr = await theta(dir, ['track', 'web/model.json']);
    assert.is(tr.code, 0, tr.stderr);
    assert.is(tr.stderr.split('\n').filter((l) => l.includes('TF.js model')).length, 1, 'one line per model');
    assert.match(tr.stderr, /tracking TF\.js model web\/model\.json: its 4 weight shards as "web\/\*\.bin"/);
    assert.match(readFileSync(join(dir, '.gitattributes'), 'utf8'), /^web\/\*\.bin filter=theta diff=theta merge=theta theta-format=tfjs-shard$/m);
    assert.match((await theta(dir, ['track', 'web'])).stderr, /already tracking TF\.js model web\/model\.json/, 'the directory names the same model');

    // another .bin beside the shards: the pattern matches the shards' names, not every .bin
    mkdirSync(join(dir, 'other'));
    await writeModel(join(dir, 'other'), model());
    writeFileSync(join(dir, 'other/pytorch_model.bin'), 'not a shard');
    assert.match((await theta(dir, ['track', 'other'])).stderr, /tracking TF\.js model other\/model\.json: its 4 weight shards as "other\/\*-shard\*"/);
    assert.not.match(readFileSync(join(dir, '.gitattributes'), 'utf8'), /other\/\*\.bin|pytorch_model/);
    rmSync(join(dir, 'other'), { recursive: true });
    writeFileSync(join(dir, '.gitattributes'), readFileSync(join(dir, '.gitattributes'), 'utf8').split('\n').filter((l) => !l.startsWith('other/')).join('\n'));

    await thetaOk(dir, 'add', '.gitattributes', 'web');
    await git(dir, 'commit', '-q', '-m', 'v1');
    assert.is(await git(dir, 'show', 'HEAD:web/model.json'), readFileSync(join(dir, 'web/model.json'), 'utf8'), 'model.json is an ordinary file');
    const shard1 = parseMetadata(await git(dir, 'show', 'HEAD:web/group1-shard1of4.bin'));
    assert.is(shard1.format, 'tfjs-shard');
    assert.equal(Object.keys(shard1.tensors).sort(), ['dense/kernel#0', 'emb/flag']);
    const shard3 = parseMetadata(await git(dir, 'show', 'HEAD:web/group1-shard3of4.bin'));
    assert.equal(Object.keys(shard3.tensors).sort(), ['dense/bias', 'dense/kernel#5997', 'out/kernel#0', 'q/codes']);
    assert.equal(shard3.tensors['dense/bias'].shape, [50]);
    const before = filesUnder(join(dir, '.git', 'lfs', 'objects')).length;

    // v2: one weight changed; it spans three shards, so three shard files change and nothing else
    await writeModel(join(dir, 'web'), model(0.5));
    assert.is(await git(dir, 'status', '--porcelain'), ' M web/group1-shard1of4.bin\n M web/group1-shard2of4.bin\n M web/group1-shard3of4.bin\n');
    await thetaOk(dir, 'add', 'web');
    await git(dir, 'commit', '-q', '-m', 'v2');
    // objects in the store, plus the small ones that ride inline in the shards' metadata
    const shards = [1, 2, 3, 4].map((i) => `web/group1-shard${i}of4.bin`);
    const added = filesUnder(join(dir, '.git', 'lfs', 'objects')).length - before + (await inlineBytesBetween(dir, 'HEAD~1', 'HEAD', shards)).objects;
    assert.ok(added >= 1 && added <= 6, `v2 added ${added} objects (the changed kernel's pieces only, each at most an index and a values object)`);
    const m2 = parseMetadata(await git(dir, 'show', 'HEAD:web/group1-shard3of4.bin'));
    for (const n of ['dense/bias', 'q/codes', 'out/kernel#0']) assert.equal(m2.tensors[n], shard3.tensors[n], `${n} reused as it was`);

    // checkout of v1 from the objects gives back every file byte for byte
    rmSync(join(dir, 'web'), { recursive: true });
    await git(dir, 'checkout', 'HEAD~1', '--', 'web');
    assert.equal(fileHashes(join(dir, 'web')), Object.fromEntries(Object.entries(v1).sort()));
    await git(dir, 'checkout', 'HEAD', '--', 'web');
    assert.is(await git(dir, 'status', '--porcelain'), '');
    // git theta checkout of the removed directory: shards from the objects, model.json by git
    rmSync(join(dir, 'web'), { recursive: true });
    await thetaOk(dir, 'checkout', 'HEAD~1', '--', 'web');
    assert.equal(fileHashes(join(dir, 'web')), Object.fromEntries(Object.entries(v1).sort()));
    await thetaOk(dir, 'checkout', 'HEAD', '--', 'web');
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t('git theta diff shows a TF.js model as one model, weight by weight, between revisions, the index and the work tree', async () => {
  const dir = await thetaRepo([]);
  try {
    await writeModel(join(dir, 'web'), model());
    await thetaOk(dir, 'track', 'web');
    await thetaOk(dir, 'add', '.gitattributes', 'web');
    await git(dir, 'commit', '-q', '-m', 'v1');
    await writeModel(join(dir, 'web'), model(0.5));
    const expected = l2(f32(model()[1]), f32(model(0.5)[1]));

    const check = (out: string, from: string, to: string) => {
      const files = JSON.parse(out).files;
      assert.is(files.length, 1, 'one model, not four shards');
      const [f] = files;
      assert.equal([f.path, f.format, f.from, f.to], ['web/model.json', 'tfjs', from, to]);
      assert.equal(f.summary, { added: 0, removed: 0, modified: 1, unchanged: 4 });
      const k = f.tensors.find((x: { name: string }) => x.name === 'dense/kernel');
      assert.equal([k.status, k.dtype, k.shape], ['modified', 'F32', [40, 50]]);
      assert.ok(Math.abs(k.l2 - expected) < 1e-5, `l2 ${k.l2} vs ${expected}`);
      assert.ok(Math.abs(k.maxabs - 0.5) < 1e-5);
    };
    check(await thetaOk(dir, 'diff', '--json'), 'index', 'worktree');
    await thetaOk(dir, 'add', 'web');
    check(await thetaOk(dir, 'diff', 'HEAD', '--json'), 'HEAD', 'worktree');
    await git(dir, 'commit', '-q', '-m', 'v2');
    check(await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json'), 'HEAD~1', 'HEAD');
    const text = await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD');
    assert.match(text, /^web\/model\.json \(tfjs, HEAD~1 -> HEAD\): 1 modified, 0 added, 0 removed, 4 unchanged$/m);
    assert.match(text, /modified\s+dense\/kernel\s+F32\[40,50\]/);
    // the repository library (isomorphic-git, as the page and Deno use it) gives the same JSON
    const lib = await diffRevisions({ fs: nodeFs, dir, from: 'HEAD~1', to: 'HEAD' });
    assert.is(JSON.stringify(lib), (await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json')).trim());
    const libApprox = await diffRevisions({ fs: nodeFs, dir, from: 'HEAD~1', to: 'HEAD', approx: true });
    assert.is(JSON.stringify(libApprox), (await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json', '--approx')).trim());
    const listed = await listModels({ fs: nodeFs, dir });
    assert.equal(listed.map((m) => [m.path, m.kind, m.format, m.size, m.tensors]), [['web/model.json', 'theta', 'tfjs', 10803, 5]], 'the library lists the model, not its shards');
    assert.is(JSON.stringify((await diffRevisions({ fs: nodeFs, dir, from: 'HEAD~1', to: 'HEAD', filepaths: ['web/model.json'] })).files.map((f) => f.path)), '["web/model.json"]');
    // a path after -- naming a shard still diffs its model
    assert.is(JSON.parse(await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json', '--', 'web/group1-shard2of4.bin')).files[0].path, 'web/model.json');
    // the log of the model counts its weights, not its shards' pieces
    const log = JSON.parse(await thetaOk(dir, 'log', 'web/model.json', '--json'));
    assert.equal(log.map((e: { subject: string; changed: number; added: number; removed: number; tensors: number }) => [e.subject, e.changed, e.added, e.removed, e.tensors]), [['v2', 1, 0, 0, 5], ['v1', 0, 5, 0, 5]]);
    assert.ok(log[0].bytesStored > 0 && log[0].bytesStored < 8000, `v2 stored ${log[0].bytesStored} bytes for a 8000-byte weight`);
    assert.is(log[0].fileSize, 3 + 8000 + 200 + 600 + 2000);
    assert.equal(JSON.parse(await thetaOk(dir, 'log', 'web', '--json')), log, 'the directory names the same model');

    const ins = JSON.parse(await thetaOk(dir, 'inspect', 'web', '--json'));
    assert.equal([ins.format, ins.tensors.length], ['tfjs', 5], 'inspect takes the model directory');

    // a model.json committed without re-adding its shards does not fit them: a warning, not wrong numbers
    const json = JSON.parse(readFileSync(join(dir, 'web/model.json'), 'utf8'));
    json.weightsManifest[0].weights.reverse();
    writeFileSync(join(dir, 'web/model.json'), JSON.stringify(json));
    await git(dir, 'add', 'web/model.json');
    await git(dir, 'commit', '-q', '-m', 'manifest only');
    const mismatch = await theta(dir, ['diff', 'HEAD~1', 'HEAD']);
    assert.is(mismatch.code, 0, mismatch.stderr);
    assert.match(mismatch.stderr, /web\/model\.json: shard web\/group1-shard1of4\.bin does not hold .* run 'git theta add web' again; showing its shards one by one/);
    await git(dir, 'reset', '-q', '--hard', 'HEAD~1');

    // git's own diff of a shard goes through textconv without failing
    const gd = await git(dir, 'diff', 'HEAD~1', 'HEAD', '--', 'web/group1-shard2of4.bin');
    assert.match(gd, /^-hash [0-9a-f]{32}$/m);
    assert.match(gd, /^\+hash [0-9a-f]{32}$/m);
  } finally {
    cleanup(dir);
  }
});

t('git merge of branches that change different weights of a TF.js model merges every shard', async () => {
  const dir = await thetaRepo([]);
  try {
    await writeModel(join(dir, 'web'), model());
    await thetaOk(dir, 'track', 'web/model.json');
    await thetaOk(dir, 'add', '.gitattributes', 'web');
    await git(dir, 'commit', '-q', '-m', 'base');
    await git(dir, 'checkout', '-q', '-b', 'other');
    await writeModel(join(dir, 'web'), model(0, 2)); // changes out/kernel (shard 4)
    await thetaOk(dir, 'add', 'web');
    await git(dir, 'commit', '-q', '-m', 'theirs');
    await git(dir, 'checkout', '-q', 'main');
    await writeModel(join(dir, 'web'), model(0.5)); // changes dense/kernel (shards 1-3)
    await thetaOk(dir, 'add', 'web');
    await git(dir, 'commit', '-q', '-m', 'ours');
    const r = await run('git', ['merge', '--no-edit', 'other'], dir);
    assert.is(r.code, 0, r.stderr + r.stdout);
    const want = await writeModel(join(dir, '..', `expected-${Date.now()}`), model(0.5, 2));
    assert.equal(fileHashes(join(dir, 'web')), Object.fromEntries(Object.entries(want).sort()), 'both changes in the merged files');
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t('a model.json bound to the filter is refused with what to do; a shard no model.json lists is still stored exactly', async () => {
  const dir = await thetaRepo(['lone/*.bin']);
  try {
    // `track` refuses a model.json that is not there yet (it would bind the JSON itself) ...
    const early = await theta(dir, ['track', 'web/model.json']);
    assert.is(early.code, 1);
    assert.match(early.stderr, /web\/model\.json does not exist yet/);
    // ... and a line written by hand that binds it is refused by add
    writeFileSync(join(dir, '.gitattributes'), readFileSync(join(dir, '.gitattributes'), 'utf8') + 'web/model.json filter=theta diff=theta merge=theta\n');
    await writeModel(join(dir, 'web'), model());
    const r = await theta(dir, ['add', 'web/model.json']);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /TF\.js model\.json: git-theta tracks the weight shards it lists/);
    assert.match(r.stderr, /git theta track web\/model\.json/);

    mkdirSync(join(dir, 'lone'));
    const bytes = readFileSync(join(dir, 'web/group1-shard2of4.bin'));
    writeFileSync(join(dir, 'lone/weights.bin'), bytes);
    writeFileSync(join(dir, '.gitattributes'), readFileSync(join(dir, '.gitattributes'), 'utf8') + 'lone/*.bin theta-format=tfjs-shard\n');
    const a = await theta(dir, ['add', 'lone/weights.bin']);
    assert.is(a.code, 0, a.stderr);
    assert.match(a.stderr, /lone\/weights\.bin: stored without splitting by weight: no model\.json/);
    await git(dir, 'commit', '-q', '-m', 'lone');
    assert.equal(Object.keys(parseMetadata(await git(dir, 'show', 'HEAD:lone/weights.bin')).tensors), ['#bytes@0']);
    rmSync(join(dir, 'lone/weights.bin'));
    await git(dir, 'checkout', '--', 'lone/weights.bin');
    assert.is(sha256(readFileSync(join(dir, 'lone/weights.bin'))), sha256(bytes));
  } finally {
    cleanup(dir);
  }
});

t('merge-models and convert read and write TF.js models (quantized weights merged as float32 with --keep-float)', async () => {
  const dir = await thetaRepo([]);
  try {
    await writeModel(join(dir, 'a'), model());
    await writeModel(join(dir, 'b'), model(0.5, 2));
    // by default the merge is model a with merged values: its model.json byte for byte
    const k = await theta(dir, ['merge-models', 'a/model.json', 'b', '--strategy', 'average', '-o', 'kept/merged.json']);
    assert.is(k.code, 0, k.stderr);
    assert.is(sha256(readFileSync(join(dir, 'kept/merged.json'))), sha256(readFileSync(join(dir, 'a/model.json'))));
    const r = await theta(dir, ['merge-models', 'a/model.json', 'b', '--strategy', 'average', '--keep-float', '-o', 'out/merged.json']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote out\/merged\.json \(tfjs, 5 tensors, average\)/);
    const json = JSON.parse(readFileSync(join(dir, 'out/merged.json'), 'utf8'));
    const ws = json.weightsManifest[0].weights;
    assert.equal(ws.map((w: { name: string; dtype: string }) => [w.name, w.dtype]), [['emb/flag', 'bool'], ['dense/kernel', 'float32'], ['dense/bias', 'float32'], ['q/codes', 'float32'], ['out/kernel', 'float32']]);
    // back through convert to safetensors, then read the merged kernel and check it against the inputs
    await thetaOk(dir, 'convert', 'out/merged.json', 'out/merged.safetensors');
    const ins = JSON.parse(await thetaOk(dir, 'inspect', 'out/merged.safetensors', '--json'));
    const kernel = ins.tensors.find((x: { name: string }) => x.name === 'dense/kernel');
    const [x, y] = [f32(model()[1]), f32(model(0.5, 2)[1])];
    const want = x.reduce((s, v, i) => s + (0.5 * v + 0.5 * y[i]), 0) / x.length;
    assert.ok(Math.abs(kernel.stats.mean - want) < 1e-6, `mean ${kernel.stats.mean} vs ${want}`);
    const q = ins.tensors.find((x: { name: string }) => x.name === 'q/codes');
    assert.equal([q.dtype, q.shape], ['F32', [600]], 'uint8-quantized weights come out as float32 values');
  } finally {
    cleanup(dir);
  }
});

t.run();
