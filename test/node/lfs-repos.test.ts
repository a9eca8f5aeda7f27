// Repositories git-lfs stores models in (the Hugging Face layout: `git lfs track`, pointers in git,
// whole files in .git/lfs/objects): `git theta diff`/`diff --json`/`log`/`inspect <rev>:<path>`
// and the library read every version, a sharded safetensors model and a GGUF included; a clone
// that has no LFS object yet fetches them from its remote.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { memorySink } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { writeGguf } from '../../src/formats/gguf.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { readerFromBytes } from '../../src/core/io.ts';
import { looksLikeMetadata } from '../../src/theta/metadata.ts';
import { diffRevisions, listModels, readModel } from '../../src/repo/index.ts';
import { cleanup, git, requireTool, run, sha256, startServe, tempDir, theta, thetaOk, filesUnder } from './helpers.ts';

const test = suite('git-lfs repositories');
const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) cleanup(d);
});

const f32 = (name: string, n: number, fill: (i: number) => number, shape = [n]): TensorToWrite =>
  ({ name, dtype: 'F32', shape, data: new Uint8Array(Float32Array.from({ length: n }, (_, i) => fill(i)).buffer) });

async function stBytes(tensors: TensorToWrite[]): Promise<Uint8Array> {
  const sink = memorySink();
  await safetensors.write(tensors, sink);
  return sink.bytes();
}

async function ggufBytes(tensors: TensorToWrite[]): Promise<Uint8Array> {
  const sink = memorySink();
  await writeGguf(tensors, sink, { metadata: { 'general.name': 'tiny' } });
  return sink.bytes();
}

/** Version `v` (0 or 1) of every model: v1 adds 1 to m.b (64 elements), to shard 2's z and to the GGUF's g2. */
async function writeModels(dir: string, v: number): Promise<void> {
  const w = (p: string, b: Uint8Array | string) => nodeFs.writeFileSync(join(dir, p), b);
  w('m.safetensors', await stBytes([f32('a', 16, (i) => i), f32('b', 64, (i) => Math.sin(i) + v, [8, 8]), f32('c', 4, () => 0.5)]));
  w('model-00001-of-00002.safetensors', await stBytes([f32('x', 32, (i) => i / 32), f32('y', 8, () => 2)]));
  w('model-00002-of-00002.safetensors', await stBytes([f32('z', 25, (i) => Math.cos(i) + 2 * v, [5, 5])]));
  w('model.safetensors.index.json', JSON.stringify({
    metadata: { total_size: 260 },
    weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00001-of-00002.safetensors', z: 'model-00002-of-00002.safetensors' },
  }, null, 2) + '\n');
  w('tiny.gguf', await ggufBytes([f32('g1', 10, () => 1), f32('g2', 12, (i) => i + 3 * v)]));
}

/** A git-lfs repository with two commits of the models (git-theta installed, nothing tracked by it). */
async function lfsRepo(): Promise<string> {
  requireTool('git-lfs', 'git-lfs');
  const dir = tempDir('theta-lfs-repo-');
  dirs.push(dir);
  await git(dir, 'init', '-q', '-b', 'main');
  await git(dir, 'lfs', 'install', '--local');
  await thetaOk(dir, 'install', '--local');
  await git(dir, 'lfs', 'track', '*.safetensors', '*.gguf');
  for (const v of [0, 1]) {
    await writeModels(dir, v);
    await git(dir, 'add', '.');
    await git(dir, 'commit', '-q', '-m', `v${v}`);
  }
  return dir;
}

type JsonDiff = { files: { path: string; format: string; from: string; to: string; summary: Record<string, number>; tensors: { name: string; status: string; l2?: number | null; maxabs?: number | null }[] }[] };

async function diffJson(dir: string, ...args: string[]): Promise<JsonDiff> {
  return JSON.parse(await thetaOk(dir, 'diff', '--json', ...args));
}

/** The sharded model is diffed as one model, under its index's path. */
function checkDiff(d: JsonDiff, sharded = true): void {
  assert.equal(d.files.map((f) => [f.path, f.format, f.summary.modified, f.summary.unchanged]), [
    ['m.safetensors', 'safetensors', 1, 2],
    sharded ? ['model.safetensors.index.json', 'safetensors-sharded', 1, 2] : ['model-00002-of-00002.safetensors', 'safetensors', 1, 0],
    ['tiny.gguf', 'gguf', 1, 1],
  ]);
  const b = d.files[0].tensors.find((t) => t.name === 'b')!;
  assert.is(b.status, 'modified');
  assert.ok(Math.abs(b.l2! - 8) < 1e-4, `‖Δb‖ = sqrt(64 × 1²) = 8, got ${b.l2}`);
  const z = d.files[1].tensors.find((t) => t.name === 'z')!;
  assert.ok(Math.abs(z.maxabs! - 2) < 1e-5, `max |Δz| = 2, got ${z.maxabs}`);
  const g2 = d.files[2].tensors.find((t) => t.name === 'g2')!;
  assert.ok(Math.abs(g2.l2! - Math.sqrt(12 * 9)) < 1e-4, `‖Δg2‖ = sqrt(12 × 3²), got ${g2.l2}`);
}

test('git theta diff / diff --json read git-lfs pointers at both revisions (safetensors, a shard, GGUF)', async () => {
  const dir = await lfsRepo();
  const pointer = await git(dir, 'cat-file', 'blob', 'HEAD:m.safetensors');
  assert.match(pointer, /^version https:\/\/git-lfs\.github\.com\/spec\/v1\noid sha256:/, 'git-lfs stored a pointer');
  checkDiff(await diffJson(dir, 'HEAD~1', 'HEAD'));
  const text = await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD');
  assert.match(text, /m\.safetensors \(safetensors, HEAD~1 -> HEAD\): 1 modified, 0 added, 0 removed, 2 unchanged/);
  assert.match(text, /tiny\.gguf \(gguf, HEAD~1 -> HEAD\): 1 modified/);
  // one revision: against the work tree (the real files git-lfs checked out), after changing one
  nodeFs.writeFileSync(join(dir, 'm.safetensors'), await stBytes([f32('a', 16, (i) => i), f32('b', 64, (i) => Math.sin(i) + 1, [8, 8]), f32('c', 4, () => 0.75)]));
  const wt = await diffJson(dir, 'HEAD', '--', 'm.safetensors');
  assert.equal(wt.files.map((f) => [f.path, f.to, f.summary.modified, f.tensors.find((t) => t.status === 'modified')?.name]), [['m.safetensors', 'worktree', 1, 'c']]);
  // --approx needs the signatures git-theta stores: a git-lfs file has none, and it says so
  const approx = await theta(dir, ['diff', 'HEAD~1', 'HEAD', '--approx']);
  assert.is(approx.code, 1);
  assert.match(approx.stderr, /--approx cannot answer for m\.safetensors at HEAD~1: git-lfs stores it as one file/);
});

test('git theta log and inspect <rev>:<path> read git-lfs versions; inspect reads a sharded model through its index', async () => {
  const dir = await lfsRepo();
  const log = JSON.parse(await thetaOk(dir, 'log', 'm.safetensors', '--json'));
  assert.equal(log.map((e: { subject: string; changed: number; added: number; tensors: number; storage: string }) => [e.subject, e.changed, e.added, e.tensors, e.storage]),
    [['v1', 1, 0, 3, 'lfs'], ['v0', 0, 3, 3, 'lfs']]);
  const ptr = await git(dir, 'cat-file', 'blob', 'HEAD:m.safetensors');
  assert.is(log[0].bytesStored, Number(/size (\d+)/.exec(ptr)![1]), 'a new git-lfs version stores its whole file');
  const text = await thetaOk(dir, 'log', 'tiny.gguf');
  assert.match(text, /1 changed, 0 added, 0 removed of 2 tensors; stored \d+ bytes \(file \d+ bytes\) as one git-lfs object/);

  // a sharded model's log is the model's: its tensors, named by the index, over commits touching any shard
  const slog = JSON.parse(await thetaOk(dir, 'log', 'model.safetensors.index.json', '--json'));
  assert.equal(slog.map((e: { subject: string; changed: number; added: number; tensors: number; storage: string }) => [e.subject, e.changed, e.added, e.tensors, e.storage]),
    [['v1', 1, 0, 3, 'lfs'], ['v0', 0, 3, 3, 'lfs']]);
  const shard2 = await git(dir, 'cat-file', 'blob', 'HEAD:model-00002-of-00002.safetensors');
  assert.is(slog[0].bytesStored, Number(/size (\d+)/.exec(shard2)![1]), 'v1 stored one new shard object');
  const only = await diffJson(dir, '--tensor', 'z', 'HEAD~1', 'HEAD', '--', 'model.safetensors.index.json');
  assert.equal(only.files.map((f) => [f.path, f.summary.modified, f.summary.unchanged, f.tensors.map((t) => t.name)]), [['model.safetensors.index.json', 1, 0, ['z']]]);
  const sharded = JSON.parse(await thetaOk(dir, 'inspect', 'HEAD~1:model.safetensors.index.json', '--json'));
  assert.is(sharded.format, 'safetensors-sharded');
  assert.equal(sharded.tensors.map((t: { name: string; shape: number[] }) => [t.name, t.shape]), [['x', [32]], ['y', [8]], ['z', [5, 5]]]);
  assert.is(sharded.tensors[1].stats.mean, 2);
  const g = JSON.parse(await thetaOk(dir, 'inspect', 'HEAD:tiny.gguf', '--json'));
  assert.is(g.format, 'gguf');
  assert.is(g.tensors.find((t: { name: string }) => t.name === 'g2').stats.min, 3, 'HEAD\'s g2 = i + 3');
  const old = JSON.parse(await thetaOk(dir, 'inspect', 'HEAD~1:tiny.gguf', '--json'));
  assert.is(old.tensors.find((t: { name: string }) => t.name === 'g2').stats.min, 0, 'HEAD~1\'s g2 = i');
  const missing = await theta(dir, ['inspect', 'HEAD:nope.safetensors']);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /nope\.safetensors is not in revision HEAD/);
});

test('a clone without the LFS objects (GIT_LFS_SKIP_SMUDGE) downloads them from its remote to diff, log and inspect', async () => {
  const origin = await lfsRepo();
  const clone = tempDir('theta-lfs-clone-');
  dirs.push(clone);
  const r = await run('git', ['clone', '-q', origin, clone], clone, { env: { GIT_LFS_SKIP_SMUDGE: '1' } });
  assert.is(r.code, 0, r.stderr);
  const objects = join(clone, '.git', 'lfs', 'objects');
  assert.is(nodeFs.existsSync(objects) ? filesUnder(objects).length : 0, 0, 'the clone starts with no LFS object');
  assert.match(nodeFs.readFileSync(join(clone, 'm.safetensors'), 'utf8'), /^version https:\/\/git-lfs/, 'the work tree holds pointers');
  checkDiff(await diffJson(clone, 'HEAD~1', 'HEAD'));
  assert.ok(filesUnder(objects).length >= 6, 'the objects were fetched into .git/lfs/objects');
  // the work tree's pointer is read as its object too (inspect, and diff against the work tree)
  const wt = JSON.parse(await thetaOk(clone, 'inspect', 'm.safetensors', '--json'));
  assert.equal(wt.tensors.map((t: { name: string }) => t.name), ['a', 'b', 'c']);
  const same = await diffJson(clone, 'HEAD', '--', 'm.safetensors');
  assert.equal(same.files.map((f) => [f.to, f.summary.unchanged, f.summary.modified]), [['worktree', 3, 0]]);
});

test('library: listModels, readModel (a sharded index included) and diffRevisions on a git-lfs repository agree with the CLI', async () => {
  const dir = await lfsRepo();
  const models = await listModels({ fs: nodeFs, dir });
  assert.equal(models.map((m) => [m.path, m.kind, m.format]), [
    ['m.safetensors', 'lfs', 'safetensors'],
    ['model-00001-of-00002.safetensors', 'lfs', 'safetensors'],
    ['model-00002-of-00002.safetensors', 'lfs', 'safetensors'],
    ['tiny.gguf', 'lfs', 'gguf'],
  ]);
  const names: string[] = [];
  for await (const t of readModel({ fs: nodeFs, dir, filepath: 'model.safetensors.index.json', ref: 'HEAD~1' })) {
    names.push(t.name);
    if (t.name === 'z') assert.ok(Math.abs(new Float32Array((await t.bytes()).slice().buffer)[0] - 1) < 1e-6, 'z[0] = cos(0) at HEAD~1');
  }
  assert.equal(names, ['x', 'y', 'z']);
  const lib = await diffRevisions({ fs: nodeFs, dir, from: 'HEAD~1', to: 'HEAD' });
  const cli = await diffJson(dir, 'HEAD~1', 'HEAD');
  checkDiff(lib as unknown as JsonDiff);
  assert.equal(JSON.parse(JSON.stringify(lib.files)), cli.files, 'the library and the CLI give the same JSON');
});


/** The tensors of a safetensors file in the work tree, as float arrays. */
async function floatsOf(file: string): Promise<Map<string, Float32Array>> {
  const r = await safetensors.open(readerFromBytes(new Uint8Array(nodeFs.readFileSync(file))));
  const out = new Map<string, Float32Array>();
  for await (const t of r.tensors()) out.set(t.name, new Float32Array((await t.bytes()).slice().buffer));
  return out;
}

const mTensors = (a: number, b: number, c: number) => [f32('a', 16, (i) => i + a), f32('b', 64, (i) => Math.sin(i) + b, [8, 8]), f32('c', 4, () => 0.5 + c)];

test('track --diff-only: git-lfs keeps storing the files; git diff shows tensors; git merge merges them and stores the result with git-lfs', async () => {
  const dir = await lfsRepo();
  const err = (await theta(dir, ['track', '--diff-only', '*.safetensors'])).stderr;
  assert.match(err, /"\*\.safetensors" stays in git-lfs; git-theta's diff and merge drivers now read it/);
  const attrs = nodeFs.readFileSync(join(dir, '.gitattributes'), 'utf8');
  assert.match(attrs, /^\*\.safetensors filter=lfs diff=theta merge=theta -text$/m);
  assert.match(attrs, /^\*\.gguf filter=lfs diff=lfs merge=lfs -text$/m, 'other patterns untouched');
  const again = await theta(dir, ['track', '--diff-only', '*.safetensors']);
  assert.match(again.stderr, /already uses git-theta's diff and merge drivers/);
  assert.is(nodeFs.readFileSync(join(dir, '.gitattributes'), 'utf8'), attrs, 'running it twice changes nothing');
  await git(dir, 'add', '.gitattributes');
  await git(dir, 'commit', '-q', '-m', 'diff with git-theta');

  // git diff: one line per tensor (textconv), the changed tensor shows as -/+
  const d = await git(dir, 'diff', 'HEAD~2', 'HEAD~1', '--', 'm.safetensors');
  assert.match(d, /^-b {2}F32\[8,8\]/m);
  assert.match(d, /^\+b {2}F32\[8,8\]/m);
  assert.not.match(d, /^[-+]a {2}F32/m, 'unchanged tensors are context');
  // textconv given a pointer (git-lfs told not to smudge) reads the object itself
  const skip = await run('git', ['diff', 'HEAD~2', 'HEAD~1', '--', 'm.safetensors'], dir, { env: { GIT_LFS_SKIP_SMUDGE: '1' } });
  assert.is(skip.stdout, d);

  // a merge of two branches that changed different tensors: merged, stored by git-lfs
  await git(dir, 'checkout', '-q', '-b', 'other');
  nodeFs.writeFileSync(join(dir, 'm.safetensors'), await stBytes(mTensors(10, 1, 0)));
  await git(dir, 'commit', '-q', '-am', 'other: a');
  await git(dir, 'checkout', '-q', 'main');
  nodeFs.writeFileSync(join(dir, 'm.safetensors'), await stBytes(mTensors(0, 1, 2)));
  await git(dir, 'commit', '-q', '-am', 'main: c');
  const m = await run('git', ['merge', '-q', '--no-edit', 'other'], dir);
  assert.is(m.code, 0, m.stderr);
  assert.match(m.stderr, /merged m\.safetensors: .*\(stored by git-lfs\)/);
  const ptr = await git(dir, 'cat-file', 'blob', 'HEAD:m.safetensors');
  const oid = /^oid sha256:([0-9a-f]{64})$/m.exec(ptr)![1];
  const file = nodeFs.readFileSync(join(dir, 'm.safetensors'));
  assert.is(sha256(file), oid, 'the merged file is the git-lfs object the pointer names');
  assert.ok(nodeFs.existsSync(join(dir, '.git/lfs/objects', oid.slice(0, 2), oid.slice(2, 4), oid)), 'the object is in .git/lfs/objects');
  const t = await floatsOf(join(dir, 'm.safetensors'));
  assert.is(t.get('a')![3], 13, 'a from other');
  assert.is(t.get('c')![0], 2.5, 'c from main');
  assert.ok(Math.abs(t.get('b')![1] - (Math.fround(Math.sin(1) + 1))) < 1e-6, 'b unchanged');
  assert.is((await git(dir, 'status', '--porcelain')).trim(), '', 'nothing left to commit');

  // both sides changed b: merged with a strategy
  await git(dir, 'checkout', '-q', '-b', 'b2');
  nodeFs.writeFileSync(join(dir, 'm.safetensors'), await stBytes(mTensors(10, 3, 2)));
  await git(dir, 'commit', '-q', '-am', 'b2: b+3');
  await git(dir, 'checkout', '-q', 'main');
  nodeFs.writeFileSync(join(dir, 'm.safetensors'), await stBytes(mTensors(10, 5, 2)));
  await git(dir, 'commit', '-q', '-am', 'main: b+5');
  const avg = await theta(dir, ['merge', '--no-edit', 'b2', '--strategy', 'average']);
  assert.is(avg.code, 0, avg.stderr);
  const b = (await floatsOf(join(dir, 'm.safetensors'))).get('b')!;
  assert.ok(Math.abs(b[0] - 4) < 1e-6, `average of sin(0)+5 and sin(0)+3 = 4, got ${b[0]}`);
  assert.match(await git(dir, 'cat-file', 'blob', 'HEAD:m.safetensors'), /^version https:\/\/git-lfs/);
});

test('migrate: .gitattributes switches to filter=theta, current files are re-added per tensor, history keeps its pointers, diff and log read across', async () => {
  const dir = await lfsRepo();
  // a branch made before the migration, still on git-lfs: it changes tensor a
  await git(dir, 'checkout', '-q', '-b', 'pre');
  nodeFs.writeFileSync(join(dir, 'm.safetensors'), await stBytes(mTensors(10, 1, 0)));
  await git(dir, 'commit', '-q', '-am', 'pre: a');
  await git(dir, 'checkout', '-q', 'main');
  const r = await theta(dir, ['migrate', '*.safetensors']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /\.gitattributes: "\*\.safetensors filter=lfs diff=lfs merge=lfs -text" is now "\*\.safetensors filter=theta diff=theta merge=theta -text"/);
  assert.match(r.stderr, /re-added 3 file\(s\), now stored per tensor in the index: m\.safetensors, model-00001-of-00002\.safetensors, model-00002-of-00002\.safetensors/);
  assert.match(r.stderr, /history is untouched/);
  assert.match(nodeFs.readFileSync(join(dir, '.gitattributes'), 'utf8'), /^\*\.gguf filter=lfs diff=lfs merge=lfs -text$/m, 'the GGUF stays in git-lfs');
  for (const p of ['m.safetensors', 'model-00002-of-00002.safetensors']) {
    assert.ok(looksLikeMetadata(Buffer.from(await git(dir, 'cat-file', 'blob', `:${p}`))), `${p} is staged as git-theta metadata`);
  }
  await git(dir, 'commit', '-q', '-m', 'migrate');
  nodeFs.writeFileSync(join(dir, 'm.safetensors'), await stBytes(mTensors(0, 1, 1)));
  await thetaOk(dir, 'add', 'm.safetensors');
  await git(dir, 'commit', '-q', '-m', 'v2');
  assert.match(await git(dir, 'cat-file', 'blob', 'HEAD~2:m.safetensors'), /^version https:\/\/git-lfs/, 'history keeps its pointers');
  assert.is((await git(dir, 'status', '--porcelain')).trim(), '');

  const across = await diffJson(dir, 'HEAD~2', 'HEAD');
  assert.equal(across.files.map((f) => [f.path, f.format, f.summary.modified, f.summary.unchanged, f.tensors.find((t) => t.status === 'modified')?.name]), [
    ['m.safetensors', 'safetensors', 1, 2, 'c'],
    // stored differently (a pointer, then metadata), same tensors
    ['model-00001-of-00002.safetensors', 'safetensors', 0, 2, undefined],
    ['model-00002-of-00002.safetensors', 'safetensors', 0, 1, undefined],
  ]);
  const same = await diffJson(dir, 'HEAD~2', 'HEAD~1', '--', 'm.safetensors');
  assert.equal(same.files.map((f) => [f.summary.modified, f.summary.unchanged]), [[0, 3]], 'the migrated version equals the last git-lfs one');
  const log = JSON.parse(await thetaOk(dir, 'log', 'm.safetensors', '--json'));
  assert.equal(log.map((e: { subject: string; changed: number; added: number; storage: string }) => [e.subject, e.changed, e.added, e.storage]),
    [['v2', 1, 0, 'theta'], ['migrate', 0, 0, 'theta'], ['v1', 1, 0, 'lfs'], ['v0', 0, 3, 'lfs']]);
  // merging the git-lfs branch into the migrated one: tensor by tensor, and the result is stored per tensor
  const m = await run('git', ['merge', '-q', '--no-edit', 'pre'], dir);
  assert.is(m.code, 0, m.stderr);
  assert.ok(looksLikeMetadata(Buffer.from(await git(dir, 'cat-file', 'blob', 'HEAD:m.safetensors'))), 'the merge result is git-theta metadata');
  const t = await floatsOf(join(dir, 'm.safetensors'));
  assert.equal([t.get('a')![1], t.get('c')![0]], [11, 1.5], 'a from the git-lfs branch, c from the migrated one');
  const bad = await theta(dir, ['migrate', '*.bin']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /pattern '\*\.bin' is not stored by git-lfs in \.gitattributes/);
});


test('a clone over HTTP from git theta serve downloads from the LFS server only the objects of the files that changed', async () => {
  const origin = await lfsRepo();
  const { child, url, log } = await startServe(origin);
  try {
    const clone = tempDir('theta-lfs-http-');
    dirs.push(clone);
    const c = await run('git', ['clone', '-q', url, clone], clone, { env: { GIT_LFS_SKIP_SMUDGE: '1' } });
    assert.is(c.code, 0, c.stderr);
    checkDiff(await diffJson(clone, 'HEAD~1', 'HEAD'));
    const pointers = await Promise.all(['m.safetensors', 'model-00002-of-00002.safetensors', 'tiny.gguf'].flatMap((p) => ['HEAD~1', 'HEAD'].map(async (r) =>
      /oid sha256:([0-9a-f]{64})/.exec(await git(origin, 'cat-file', 'blob', `${r}:${p}`))![1]!)));
    const got = log.flatMap((l) => /^GET \/[^ ]*\/info\/lfs\/objects\/([0-9a-f]{64}) 200 /.exec(l)?.[1] ?? []);
    assert.equal(new Set(got), new Set(pointers), 'both versions of the three changed files, nothing of the unchanged shard');
    // the unchanged shard (the same object on both sides) is read for its header only, by a Range request
    const shard1 = /oid sha256:([0-9a-f]{64})/.exec(await git(origin, 'cat-file', 'blob', 'HEAD:model-00001-of-00002.safetensors'))![1]!;
    assert.ok(log.some((l) => l.includes(`/info/lfs/objects/${shard1} 206 `)), `the unchanged shard's header by Range: ${log.filter((l) => l.includes(shard1)).join(' | ')}`);
    assert.is(got.length, pointers.length, 'no object downloaded twice');
  } finally {
    child.kill('SIGTERM');
  }
});

test.run();
