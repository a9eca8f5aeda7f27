// A repository written by the Python Git-Theta (test/fixtures/python-git-theta/repo-mini), opened
// with our filter installed, through the real git: checkout of every commit against what that tool
// checks out (states/), diff of every pair of commits, log, textconv, continuing with commits of
// our own (only changed tensors stored), diffs and merges across the switch, a shallow clone.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { getFormat } from '../../src/formats/index.ts';
import { writePytorch } from '../../src/formats/pytorch.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { parseMetadata } from '../../src/theta/metadata.ts';
import * as nodeFs from 'node:fs';
import { checkoutModel, diffRevisions, listModels, readModel } from '../../src/repo/index.ts';
import { startServer } from '../../src/node/serve/server.ts';
import { cleanup, filesUnder, fixturesDir, git, requireTool, run, sha256, tempDir, theta, thetaOk } from './helpers.ts';

const DIR = join(fixturesDir, 'python-git-theta');
const M = ['9e9e3597c929582081047228fc17be270c5c2dec', '1c454bb0faad246320a301d38dd0b521e684e54b', 'b834315038b5972ff105280ef8fc743223c38d28', '051cfb62f8cd13bc8ceeaf2fca72712ca3d96e0a'];
const UPDATES = ['dense', 'sparse', 'low-rank', 'ia3'];
const PYTHON = '/usr/bin/python3';

async function clonePython(name = 'repo-mini'): Promise<string> {
  requireTool('git-lfs', 'git-lfs');
  const dir = tempDir('theta-python-');
  await git(dir, 'clone', '-q', '--no-checkout', join(DIR, `${name}.bundle`), 'repo');
  const repo = join(dir, 'repo');
  const tar = await run('tar', ['xzf', join(DIR, `${name}-lfs-objects.tar.gz`), '-C', join(repo, '.git')], repo);
  assert.is(tar.code, 0, tar.stderr);
  await thetaOk(repo, 'install', '--local');
  return repo;
}

async function tensors(bytes: Uint8Array): Promise<TensorToWrite[]> {
  const r = await getFormat('pytorch').open(readerFromBytes(bytes));
  const out: TensorToWrite[] = [];
  for await (const t of r.tensors()) out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await t.bytes() });
  return out;
}
const f32 = (t: TensorToWrite) => new Float32Array(t.data.slice().buffer);
const state = (k: number) => new Uint8Array(readFileSync(join(DIR, 'states', `mini-m${k}-m.pt`)));
async function asToolWrites(ts: TensorToWrite[]): Promise<Uint8Array> {
  const sink = memorySink();
  await writePytorch(ts, sink, { archiveName: 'archive', container: 'dict' });
  return sink.bytes();
}
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
const objectCount = (repo: string) => filesUnder(join(repo, '.git/lfs/objects')).length;

/** Write m.pt with tensor `name` changed by `f`. */
async function editModel(repo: string, name: string, f: (v: Float32Array) => void): Promise<TensorToWrite[]> {
  const ts = await tensors(readFileSync(join(repo, 'm.pt')));
  for (const t of ts) {
    if (t.name !== name) continue;
    const v = f32(t);
    f(v);
    t.data = new Uint8Array(v.buffer);
  }
  writeFileSync(join(repo, 'm.pt'), await asToolWrites(ts));
  return ts;
}

function stats(a: Float32Array, b: Float32Array) {
  let s = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = b[i] - a[i];
    s += d * d;
    m = Math.max(m, Math.abs(d));
  }
  return { l2: Math.sqrt(s), maxabs: m };
}

const t = suite('python-git-theta: a repository the Python tool wrote, through git');

t('checkout of every commit gives the Python tool\'s tensors and bytes, and a clean work tree', async () => {
  const repo = await clonePython();
  try {
    for (const k of [0, 1, 2, 3]) {
      await git(repo, 'checkout', '-q', M[k]);
      const ours = new Uint8Array(readFileSync(join(repo, 'm.pt')));
      const want = await tensors(state(k));
      const got = await tensors(ours);
      assert.equal(got.map((x) => x.name), want.map((x) => x.name));
      for (const [i, w] of want.entries()) assert.ok(same(got[i].data, w.data), `m${k} ${w.name}: bit-identical to the Python checkout`);
      // the states were saved to named files (archive folder = file stem); the tool's smudge pipes torch.save's 'archive'
      assert.ok(same(ours, await asToolWrites(want)), `m${k}: the bytes torch.save writes for the tool's checkout`);
      assert.is(await git(repo, 'status', '--porcelain'), '', `m${k}: work tree clean`);
      // a re-add of the untouched file keeps the Python blob (nothing to commit for either tool)
      await git(repo, 'add', '--renormalize', 'm.pt');
      assert.is(await git(repo, 'status', '--porcelain'), '', `m${k}: renormalize changes nothing`);
    }
    // the fast path writes the same file
    await git(repo, 'checkout', '-q', M[1]);
    await thetaOk(repo, 'checkout', M[2], '--', 'm.pt');
    assert.ok(same(new Uint8Array(readFileSync(join(repo, 'm.pt'))), await asToolWrites(await tensors(state(2)))), 'git theta checkout m2');
    await git(repo, 'checkout', '-q', '-f', M[3]);
    const py = spawnSync(PYTHON, ['-c', 'import torch,sys; a=torch.load(sys.argv[1]); b=torch.load(sys.argv[2]); print(list(a)==list(b) and all(torch.equal(a[k],b[k]) for k in a))', join(repo, 'm.pt'), join(DIR, 'states/mini-m3-m.pt')]);
    if (py.error) throw new Error('this test needs /usr/bin/python3 with torch: apt-get install -y python3-torch');
    assert.is(py.stdout.toString().trim(), 'True', py.stderr.toString());
  } finally {
    cleanup(join(repo, '..'));
  }
});

t('git theta diff of every pair of commits, log and textconv', async () => {
  const repo = await clonePython();
  try {
    await git(repo, 'checkout', '-q', 'main');
    const values = await Promise.all([0, 1, 2, 3].map(async (k) => new Map((await tensors(state(k))).map((x) => [x.name, f32(x)]))));
    for (let a = 0; a < 4; a++) {
      for (let b = a + 1; b < 4; b++) {
        const out = JSON.parse(await thetaOk(repo, 'diff', M[a], M[b], '--json'));
        const file = out.files[0];
        assert.is(file.format, 'pytorch');
        for (const d of file.tensors) {
          assert.is(d.status, 'modified', `${d.name} m${a}->m${b}`);
          assert.is(d.update, UPDATES[b]);
          const want = stats(values[a].get(d.name)!, values[b].get(d.name)!);
          assert.ok(Math.abs(d.l2 - want.l2) <= 1e-6 * want.l2, `${d.name} m${a}->m${b}: l2 ${d.l2} vs ${want.l2}`);
          assert.ok(Math.abs(d.maxabs - want.maxabs) <= 1e-6 * want.maxabs, `${d.name} m${a}->m${b}: max ${d.maxabs} vs ${want.maxabs}`);
        }
      }
    }
    const entries = JSON.parse(await thetaOk(repo, 'log', 'm.pt', '--json'));
    assert.is(entries.length, 4);
    const text = JSON.stringify(entries);
    for (const u of UPDATES) assert.ok(text.includes(`"${u}"`), `log names update type ${u}`);
    const blob = join(repo, '..', 'm3.json');
    writeFileSync(blob, await git(repo, 'show', `${M[3]}:m.pt`));
    const tc = await thetaOk(repo, 'textconv', blob);
    assert.match(tc, /^Python Git-Theta metadata, 2 parameters\n/);
    assert.match(tc, /\nw {2}F32\[4,3\] {2}ia3 on b834315038/);
  } finally {
    cleanup(join(repo, '..'));
  }
});

t('continuing: our commit stores only the changed tensor, keeps the Python objects, diffs and checks out across the switch', async () => {
  const repo = await clonePython();
  try {
    await git(repo, 'checkout', '-q', 'main');
    const before = objectCount(repo);
    const edited = await editModel(repo, 'b', (v) => { v[0] += 1; });
    const added = await theta(repo, ['add', 'm.pt']);
    assert.is(added.code, 0, added.stderr);
    assert.match(added.stderr, /m\.pt was written by the Python Git-Theta; new commits store git-theta's own metadata/);
    await git(repo, 'commit', '-qm', 'ours: b');
    const meta = parseMetadata(await git(repo, 'show', 'HEAD:m.pt'));
    // w unchanged: its Python chain (m0 dense … m3 ia3) kept, no object of ours
    assert.equal(meta.tensors.w.chain.map((s) => s.kind), UPDATES);
    assert.is((meta.tensors.w.chain[3].object as { oid: string }).oid, '930911f7bc1a93f1c533350104c98d0858b40d9dafb7ab80ced4e144e9a2cad3');
    // b: the Python chain plus one sparse step of ours; stored: the file layout as an object, the
    // step's index and value (a few bytes) inline in the metadata
    assert.is(meta.tensors.b.update, 'sparse');
    assert.is(meta.tensors.b.chain.length, 5);
    for (const k of ['indices', 'values']) assert.type((meta.tensors.b.chain[4][k] as { data?: string }).data, 'string', `${k} inline`);
    assert.is(objectCount(repo) - before, 1);
    const diff = JSON.parse(await thetaOk(repo, 'diff', 'HEAD~1', 'HEAD', '--json')).files[0];
    assert.equal(diff.summary, { added: 0, removed: 0, modified: 1, unchanged: 1 });
    const b3 = f32((await tensors(state(3))).find((x) => x.name === 'b')!)[0];
    assert.is(diff.tensors.find((x: { name: string }) => x.name === 'b').l2, Math.fround(b3 + 1) - b3);
    const far = JSON.parse(await thetaOk(repo, 'diff', M[0], 'HEAD', '--json')).files[0];
    assert.is(far.summary.modified, 2);
    // a second commit of ours: the notice is said once per repository
    await editModel(repo, 'w', (v) => { v[4] = 5; });
    const again = await theta(repo, ['add', 'm.pt']);
    assert.is(again.code, 0, again.stderr);
    assert.not.match(again.stderr, /Python Git-Theta/);
    await git(repo, 'commit', '-qm', 'ours: w');
    const mine = new Uint8Array(readFileSync(join(repo, 'm.pt')));
    await git(repo, 'checkout', '-q', M[3]);
    assert.ok(same(new Uint8Array(readFileSync(join(repo, 'm.pt'))), await asToolWrites(await tensors(state(3)))), 'the Python commit checks out as before');
    await git(repo, 'checkout', '-q', 'main');
    assert.ok(same(new Uint8Array(readFileSync(join(repo, 'm.pt'))), mine), 'our commit checks out byte for byte');
    assert.is(f32(edited.find((x) => x.name === 'b')!)[0], f32((await tensors(mine)).find((x) => x.name === 'b')!)[0]);
    assert.is(JSON.parse(await thetaOk(repo, 'log', 'm.pt', '--json')).length, 6);
  } finally {
    cleanup(join(repo, '..'));
  }
});

t('merges across the switch: a Python base with our sides, and a Python side in conflict merged by a strategy', async () => {
  const repo = await clonePython();
  try {
    // base m3 (Python); main changes b, side changes w: merged without a question
    await git(repo, 'checkout', '-q', 'main');
    await git(repo, 'checkout', '-q', '-b', 'side');
    await editModel(repo, 'w', (v) => { v[0] = 42; });
    await git(repo, 'commit', '-qam', 'side: w');
    await git(repo, 'checkout', '-q', 'main');
    await editModel(repo, 'b', (v) => { v[2] = -8; });
    await git(repo, 'commit', '-qam', 'main: b');
    const m = await run('git', ['merge', '-q', '--no-edit', 'side'], repo);
    assert.is(m.code, 0, m.stderr);
    const merged = new Map((await tensors(readFileSync(join(repo, 'm.pt')))).map((x) => [x.name, f32(x)]));
    const m3 = new Map((await tensors(state(3))).map((x) => [x.name, f32(x)]));
    assert.is(merged.get('w')![0], 42);
    assert.equal(Array.from(merged.get('w')!.slice(1)), Array.from(m3.get('w')!.slice(1)));
    assert.equal(Array.from(merged.get('b')!), [m3.get('b')![0], m3.get('b')![1], -8]);
    // the merged PyTorch file's skeleton carries the merged values' CRC-32s: nothing left to add
    assert.is(await git(repo, 'status', '--porcelain', '--untracked-files=no'), '');

    // base m2 and theirs m3 written by Python, ours by us; w changed on both sides -> average
    await git(repo, 'checkout', '-f', '-q', '-b', 'old', M[2]);
    await editModel(repo, 'w', (v) => { v[1] = 10; });
    await git(repo, 'commit', '-qam', 'old: w');
    const mine = new Map((await tensors(readFileSync(join(repo, 'm.pt')))).map((x) => [x.name, f32(x)]));
    const r = await run('git', ['merge', '-q', '--no-edit', M[3]], repo, { env: { THETA_MERGE_STRATEGY: 'average' } });
    assert.is(r.code, 0, r.stderr);
    const avg = new Map((await tensors(readFileSync(join(repo, 'm.pt')))).map((x) => [x.name, f32(x)]));
    const w = avg.get('w')!;
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(w[i] - (mine.get('w')![i] + m3.get('w')![i]) / 2) < 1e-6, `w[${i}] averaged`);
    assert.equal(Array.from(avg.get('b')!), Array.from(m3.get('b')!), 'b changed on their side only: theirs');
  } finally {
    cleanup(join(repo, '..'));
  }
});

t('a shallow clone that lacks a commit of a chain: a one-line error naming it, nothing written', async () => {
  const repo = await clonePython();
  const shallow = join(repo, '..', 'shallow');
  try {
    await git(join(repo, '..'), 'clone', '-q', '--no-checkout', '--depth', '1', '--branch', 'main', `file://${repo}`, 'shallow');
    const tar = await run('tar', ['xzf', join(DIR, 'repo-mini-lfs-objects.tar.gz'), '-C', join(shallow, '.git')], shallow);
    assert.is(tar.code, 0);
    await thetaOk(shallow, 'install', '--local');
    const r = await run('git', ['checkout', '-q', 'main'], shallow);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /builds on commit b834315038b5, which this repository does not have \(a shallow clone\?\); run 'git fetch --unshallow'/);
    assert.not.ok(filesUnder(shallow).some((p) => p.endsWith('/m.pt')), 'no m.pt written');
    const d = await theta(shallow, ['diff', 'HEAD', '--', 'm.pt']);
    assert.is.not(d.code, 0);
    assert.match(d.stderr, /E_PY_THETA_HISTORY|git fetch --unshallow/);
  } finally {
    cleanup(join(repo, '..'));
  }
});

t('the library (isomorphic-git, node:fs) reads the Python-written history like the CLI', async () => {
  const repo = await clonePython();
  try {
    const fs = nodeFs;
    const listed = await listModels({ fs, dir: repo, ref: M[3] });
    assert.equal(listed.map((m) => [m.path, m.kind, m.format, m.tensors]), [['m.pt', 'theta', 'pytorch', 2]]);
    for (const k of [0, 1, 2, 3]) {
      const sink = memorySink();
      const r = await checkoutModel({ fs, dir: repo, ref: M[k], filepath: 'm.pt', sink });
      assert.is(r.size, sink.bytes().length);
      assert.ok(same(sink.bytes(), await asToolWrites(await tensors(state(k)))), `checkoutModel m${k}`);
    }
    const names: string[] = [];
    for await (const x of readModel({ fs, dir: repo, ref: M[2], filepath: 'm.pt' })) {
      names.push(`${x.name}:${x.update}`);
      assert.is((await x.bytes()).length, x.byteLength);
    }
    assert.equal(names, ['b:low-rank', 'w:low-rank']);
    await git(repo, 'checkout', '-q', 'main'); // the CLI finds tracked paths through the work tree's .gitattributes
    const lib = await diffRevisions({ fs, dir: repo, from: M[0], to: M[3] });
    const cli = await thetaOk(repo, 'diff', M[0], M[3], '--json');
    assert.is(JSON.stringify(lib) + '\n', cli, 'CLI and library agree');
  } finally {
    cleanup(join(repo, '..'));
  }
});

// repo-cases (make-repo-cases.py): float64/int32/int64/bool tensors, a 1100×1000 float32 tensor in two
// zarr chunks of LZ4 frames, bit-shuffled bool chunks, sparse with a duplicate index and int64 data,
// side-loaded low-rank, ia3 broadcast, and the tool's own merge commit
const cases = JSON.parse(readFileSync(join(DIR, 'cases-expected.json'), 'utf8')) as Record<string, any>;
const LABELS = ['c0', 'c1', 'o1', 'c2', 'merge'];
const DT: Record<string, string> = { '<f4': 'F32', '<f8': 'F64', '<i4': 'I32', '<i8': 'I64', '|b1': 'BOOL' };

async function checkState(repo: string, label: string, only?: string[]): Promise<void> {
  const got = await tensors(readFileSync(join(repo, 'm.pt')));
  const want = cases[label];
  assert.equal(got.map((x) => x.name), Object.keys(want).sort(), `${label}: tensors in metadata order`);
  for (const x of got) {
    if (only && !only.includes(x.name)) continue;
    assert.is(x.dtype, DT[want[x.name].dtype], `${label} ${x.name} dtype`);
    assert.equal(x.shape, want[x.name].shape);
    assert.is(sha256(x.data), want[x.name].sha256, `${label} ${x.name}: the values the tool's checkout holds`);
  }
}

t('repo-cases: every commit (incl. the tool\'s merge) checks out exactly; diffs of every pair count the right tensors', async () => {
  const repo = await clonePython('repo-cases');
  try {
    for (const label of LABELS) {
      await git(repo, 'checkout', '-q', cases.commits[label]);
      await checkState(repo, label);
      assert.is(await git(repo, 'status', '--porcelain'), '', `${label}: clean`);
    }
    for (const [a, la] of LABELS.entries()) {
      for (const lb of LABELS.slice(a + 1)) {
        const d = JSON.parse(await thetaOk(repo, 'diff', cases.commits[la], cases.commits[lb], '--json')).files[0];
        for (const x of d.tensors) {
          const changed = cases[la][x.name].sha256 !== cases[lb][x.name].sha256;
          assert.is(x.status, changed ? 'modified' : 'unchanged', `${x.name} ${la}->${lb}`);
          if (changed && x.dtype !== 'BOOL') assert.ok(x.l2 > 0);
        }
      }
    }
    const log = JSON.parse(await thetaOk(repo, 'log', 'm.pt', '--json'));
    assert.is(log.length, 5);
  } finally {
    cleanup(join(repo, '..'));
  }
});

t('repo-cases: our commit on a Python branch, merged with another Python branch (Python base)', async () => {
  const repo = await clonePython('repo-cases');
  try {
    await git(repo, 'checkout', '-q', '-b', 'mine', cases.commits.c2);
    const before = objectCount(repo);
    const ts = await tensors(readFileSync(join(repo, 'm.pt')));
    const f64 = ts.find((x) => x.name === 'f64')!;
    const v = new Float64Array(f64.data.slice().buffer);
    v[10] = 1e6;
    f64.data = new Uint8Array(v.buffer);
    writeFileSync(join(repo, 'm.pt'), await asToolWrites(ts));
    await git(repo, 'commit', '-qam', 'mine: f64');
    // the skeleton as an object; the sparse step of f64 (one element) inline; the 4 MB tensor not stored again
    assert.is(objectCount(repo) - before, 1, 'skeleton only');
    const mine = parseMetadata(await git(repo, 'show', 'HEAD:m.pt'));
    assert.is(mine.tensors.f64.update, 'sparse');
    assert.type((mine.tensors.f64.chain[mine.tensors.f64.chain.length - 1].values as { data?: string }).data, 'string', 'the sparse step is inline');
    const r = await run('git', ['merge', '-q', '--no-edit', 'origin/other'], repo);
    assert.is(r.code, 0, r.stderr);
    await checkState(repo, 'merge', ['big', 'i32', 'i64', 'flags']);
    const merged = (await tensors(readFileSync(join(repo, 'm.pt')))).find((x) => x.name === 'f64')!;
    assert.is(sha256(merged.data), sha256(f64.data), 'f64 is ours');
  } finally {
    cleanup(join(repo, '..'));
  }
});

t('push to an LFS server uploads the Python objects; a fresh clone fetches a whole chain in one batch', async () => {
  const repo = await clonePython();
  const srv = join(repo, '..', 'srv.git');
  await git(join(repo, '..'), 'init', '-q', '--bare', '-b', 'main', srv);
  const server = await startServer({ repo: srv, allowPush: true, webDir: null });
  try {
    await git(repo, 'checkout', '-q', 'main');
    await git(repo, 'remote', 'add', 'srv', server.repoUrl);
    const p = await run('git', ['push', '-q', 'srv', 'main'], repo);
    assert.is(p.code, 0, p.stderr);
    const pyObjects = filesUnder(join(repo, '.git/lfs/objects')).map((f) => f.split('/').pop()!);
    const m3 = [...JSON.stringify(JSON.parse(await git(repo, 'show', `${M[3]}:m.pt`))).matchAll(/"oid":"([0-9a-f]{64})"/g)].map((x) => x[1]);
    for (const oid of m3) assert.ok(server.stats.uploads.has(oid), `uploaded ${oid.slice(0, 12)}`);
    assert.ok([...server.stats.uploads.keys()].every((o) => pyObjects.includes(o)));
    const clone = join(repo, '..', 'clone');
    const c = await run('git', ['clone', '-q', '--no-checkout', server.repoUrl, clone], join(repo, '..'));
    assert.is(c.code, 0, c.stderr);
    await thetaOk(clone, 'install', '--local');
    const before = server.stats.batches.length;
    const co = await run('git', ['checkout', '-q', 'main'], clone);
    assert.is(co.code, 0, co.stderr);
    assert.ok(same(new Uint8Array(readFileSync(join(clone, 'm.pt'))), await asToolWrites(await tensors(state(3)))));
    // w and b at m3 each build on m2, m1 and m0: 8 objects, asked for in one request
    assert.equal(server.stats.batches.slice(before), [{ operation: 'download', objects: 8 }]);
  } finally {
    await server.close();
    cleanup(join(repo, '..'));
  }
});

t.run();
