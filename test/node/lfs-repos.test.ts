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
import { diffRevisions, listModels, readModel } from '../../src/repo/index.ts';
import { cleanup, git, requireTool, run, tempDir, theta, thetaOk, filesUnder } from './helpers.ts';

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

function checkDiff(d: JsonDiff): void {
  assert.equal(d.files.map((f) => [f.path, f.format, f.summary.modified, f.summary.unchanged]), [
    ['m.safetensors', 'safetensors', 1, 2],
    ['model-00002-of-00002.safetensors', 'safetensors', 1, 0],
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

test.run();
