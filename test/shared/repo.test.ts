// The repository library (src/repo) in an in-memory file system, with isomorphic-git: the same
// file runs in Node, Deno and Chromium. Three versions of the fine-tuning history fixture are
// committed with saveModel and read back at every revision.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import git from 'isomorphic-git';
import {
  checkoutModel, createMemFs, defaultStore, diffModel, diffRevisions, listModels, loadModel, readMetadata, readModel,
  saveModel, type FileDiff, type MemFs,
} from '../../src/repo/index.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { lfsObjectPath } from '../../src/store/local.ts';
import { entryObjects, parseMetadata, type ModelMetadata } from '../../src/theta/metadata.ts';
import { sha256Hex } from '../../src/core/sha256.ts';
import { platform } from './platform.ts';

const test = suite('repo (isomorphic-git, in memory)');

const FILE = 'models/model.safetensors';
const VERSIONS = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v4-sparse.safetensors'];
const author = { name: 'theta test', email: 'test@git-theta.invalid', timestamp: 1_700_000_000, timezoneOffset: 0 };

interface Version {
  fixture: string;
  bytes: Uint8Array;
  tensors: TensorToWrite[];
  commit: string;
  reused: string[];
}

const state: { fs: MemFs; dir: string; versions: Version[] } = { fs: createMemFs(), dir: '/work/repo', versions: [] };

async function readTensors(bytes: Uint8Array): Promise<TensorToWrite[]> {
  const r = await safetensors.open(readerFromBytes(bytes));
  const out: TensorToWrite[] = [];
  for await (const t of r.tensors()) out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await t.bytes() });
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function codeOf(f: () => unknown): Promise<{ code?: string; data?: Record<string, unknown>; message?: string }> {
  try {
    await f();
  } catch (e) {
    const err = e as { code?: string; data?: Record<string, unknown>; message?: string };
    return { code: err.code ?? `untyped: ${err.message}`, data: err.data, message: err.message };
  }
  return {};
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function lfsObjects(fs: MemFs, dir: string): Promise<string[]> {
  return fs.files().filter((f) => f.startsWith(`${dir}/.git/lfs/objects/`));
}

const f32 = (b: Uint8Array) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/** The diff numbers for one tensor, computed with plain loops in float64. */
function expectedStats(a: Uint8Array, b: Uint8Array) {
  const x = f32(a);
  const y = f32(b);
  let d2 = 0, a2 = 0, b2 = 0, ab = 0, mx = 0;
  for (let i = 0; i < x.length; i++) {
    const d = y[i] - x[i];
    d2 += d * d; a2 += x[i] * x[i]; b2 += y[i] * y[i]; ab += x[i] * y[i];
    mx = Math.max(mx, Math.abs(d));
  }
  return { l2: Math.sqrt(d2), relative: Math.sqrt(d2) / Math.sqrt(a2), maxabs: mx, cosine: ab / Math.sqrt(a2 * b2) };
}
const close = (x: number | null | undefined, y: number) => typeof x === 'number' && Math.abs(x - y) <= 1e-9 + 1e-6 * Math.abs(y);

function checkDiffAgainstLoops(d: FileDiff, older: TensorToWrite[], newer: TensorToWrite[]) {
  assert.equal(Object.keys(d), ['path', 'format', 'from', 'to', 'approx', 'tensors', 'summary'], 'same keys, same order as git theta diff --json');
  const byName = new Map(older.map((t) => [t.name, t]));
  const counts = { added: 0, removed: 0, modified: 0, unchanged: 0 };
  assert.is(d.tensors.length, newer.length);
  for (const t of newer) {
    const row = d.tensors.find((r) => r.name === t.name)!;
    assert.ok(row, `row for ${t.name}`);
    const a = byName.get(t.name)!;
    const want = sameBytes(a.data, t.data) ? 'unchanged' : 'modified';
    assert.is(row.status, want, `${t.name} status`);
    counts[want]++;
    if (want === 'modified') {
      const e = expectedStats(a.data, t.data);
      assert.ok(close(row.l2, e.l2), `${t.name} l2 ${row.l2} vs ${e.l2}`);
      assert.ok(close(row.relative, e.relative), `${t.name} relative ${row.relative} vs ${e.relative}`);
      assert.ok(close(row.maxabs, e.maxabs), `${t.name} maxabs ${row.maxabs} vs ${e.maxabs}`);
      assert.ok(close(row.cosine, e.cosine), `${t.name} cosine ${row.cosine} vs ${e.cosine}`);
    } else {
      assert.is(row.l2, undefined);
    }
  }
  assert.equal(d.summary, counts);
}

test('saveModel commits three versions; the working tree holds what was written', async () => {
  const { fs, dir } = state;
  await git.init({ fs, dir, defaultBranch: 'main' });
  for (const [i, fixture] of VERSIONS.entries()) {
    const bytes = await platform().readFixture(fixture);
    const tensors = await readTensors(bytes);
    const r = await saveModel({ fs, dir, filepath: FILE, tensors, message: `save ${fixture}`, author: { ...author, timestamp: author.timestamp + i } });
    assert.is(r.tracked, i === 0, 'the path is bound to git-theta once');
    assert.ok(sameBytes((await fs.readFile(`${dir}/${FILE}`)) as Uint8Array, bytes), 'working tree = the fixture (the writer reproduces it)');
    state.versions.push({ fixture, bytes, tensors, commit: r.commit, reused: r.reused });
  }
  const log = await git.log({ fs, dir });
  assert.equal(log.map((c) => c.oid), state.versions.map((v) => v.commit).reverse());
  assert.equal(log.map((c) => c.commit.message.trim()), VERSIONS.map((f) => `save ${f}`).reverse());
  const attrs = (await fs.readFile(`${dir}/.gitattributes`, 'utf8')) as string;
  assert.is(attrs, `/${FILE} filter=theta diff=theta merge=theta\n`);
  const files = await git.listFiles({ fs, dir, ref: 'HEAD' });
  assert.equal(files, ['.gitattributes', FILE]);
});

test('readMetadata gives each revision its own metadata (by id, branch and ~N)', async () => {
  const { fs, dir, versions } = state;
  for (const [i, v] of versions.entries()) {
    for (const ref of [v.commit, v.commit.slice(0, 8), `main~${versions.length - 1 - i}`, `HEAD~${versions.length - 1 - i}`]) {
      const m = await readMetadata({ fs, dir, ref, filepath: FILE });
      assert.is(m.format, 'safetensors');
      assert.is(m.size, v.bytes.length, `${ref}: size`);
      assert.equal(Object.keys(m.tensors).sort(), v.tensors.map((t) => t.name).sort());
      for (const t of v.tensors) {
        assert.is(m.tensors[t.name].dtype, t.dtype);
        assert.equal(m.tensors[t.name].shape, t.shape);
      }
    }
  }
  // the committed blob is the metadata itself (what `git show HEAD:<path>` prints)
  const { blob } = await git.readBlob({ fs, dir, oid: versions[2].commit, filepath: FILE });
  const text = new TextDecoder().decode(blob);
  assert.ok(text.startsWith('{\n "git-theta": '), text.slice(0, 40));
  assert.equal(parseMetadata(text), await readMetadata({ fs, dir, ref: versions[2].commit, filepath: FILE }));
});

test('readModel streams every tensor of every revision, byte-identical', async () => {
  const { fs, dir, versions } = state;
  for (const v of versions) {
    const got = await collect(readModel({ fs, dir, ref: v.commit, filepath: FILE }));
    assert.equal(got.map((t) => t.name), v.tensors.map((t) => t.name).sort());
    for (const t of got) {
      const want = v.tensors.find((x) => x.name === t.name)!;
      assert.is(t.dtype, want.dtype);
      assert.equal(t.shape, want.shape);
      assert.is(t.byteLength, want.data.length);
      assert.ok(sameBytes(await t.bytes(), want.data), `${v.fixture} ${t.name} bytes`);
    }
  }
});

test('checkoutModel writes the exact file of each revision; loadModel gives the tensors', async () => {
  const { fs, dir, versions } = state;
  for (const v of versions) {
    const sink = memorySink();
    const r = await checkoutModel({ fs, dir, ref: v.commit, filepath: FILE, sink });
    assert.equal(r, { kind: 'theta', format: 'safetensors', size: v.bytes.length });
    assert.ok(sameBytes(sink.bytes(), v.bytes), `${v.fixture}: checkout is byte-identical`);
    assert.is(await sha256Hex(sink.bytes()), await sha256Hex(v.bytes));
    const loaded = await loadModel({ fs, dir, ref: v.commit, filepath: FILE });
    assert.is(loaded.format, 'safetensors');
    for (const t of v.tensors) assert.ok(sameBytes(loaded.tensors.find((x) => x.name === t.name)!.data, t.data), t.name);
  }
});

test('diffModel between revisions: statuses and numbers equal plain loops over the tensors', async () => {
  const { fs, dir, versions } = state;
  for (const [a, b] of [[0, 1], [1, 2], [0, 2]]) {
    const d = await diffModel({ fs, dir, filepath: FILE, from: versions[a].commit, to: versions[b].commit, all: true });
    assert.is(d.path, FILE);
    assert.is(d.format, 'safetensors');
    assert.is(d.from, versions[a].commit);
    assert.is(d.approx, false);
    checkDiffAgainstLoops(d, versions[a].tensors, versions[b].tensors);
  }
  // the sparse step is visible as the update type of the changed tensors
  const d = await diffModel({ fs, dir, filepath: FILE, from: 'HEAD~1', to: 'HEAD' });
  const meta = await readMetadata({ fs, dir, filepath: FILE });
  for (const row of d.tensors) assert.is(row.update, meta.tensors[row.name].update);
  assert.ok(d.tensors.some((r) => r.status === 'modified' && r.update === 'sparse'), 'v4 stores a sparse update');
  assert.is(d.from, 'HEAD~1', 'revisions are reported as given');
});

test('diffRevisions lists the changed models like git theta diff --json; approx reads no object', async () => {
  const { fs, dir, versions } = state;
  const all = await diffRevisions({ fs, dir, from: 'HEAD~2', to: 'HEAD', all: true });
  assert.is(all.files.length, 1);
  assert.equal(all.files[0], await diffModel({ fs, dir, filepath: FILE, from: 'HEAD~2', to: 'HEAD', all: true }));
  // without `all`, as `git theta diff --json` without --all: unchanged tensors left out, still counted
  const everything = await diffRevisions({ fs, dir, from: 'HEAD~1', to: 'HEAD', all: true });
  const changedOnly = await diffRevisions({ fs, dir, from: 'HEAD~1', to: 'HEAD' });
  assert.equal(changedOnly.files[0].tensors, everything.files[0].tensors.filter((t) => t.status !== 'unchanged'));
  assert.equal(changedOnly.files[0].summary, everything.files[0].summary);
  assert.ok(everything.files[0].summary.unchanged > 0, 'HEAD~1..HEAD leaves some tensors unchanged');
  checkDiffAgainstLoops(all.files[0], versions[0].tensors, versions[2].tensors);
  assert.equal(await diffRevisions({ fs, dir, from: 'HEAD', to: 'HEAD' }), { files: [] }, 'nothing changed');

  // approx: answered from LSH signatures; a store with no objects at all must not be touched
  const empty = defaultStore(createMemFs(), '/nowhere/.git');
  const approx = await diffModel({ fs, dir, filepath: FILE, from: 'HEAD~2', to: 'HEAD', approx: true, store: empty });
  assert.is(approx.approx, true);
  assert.equal(approx.tensors.map((t) => t.status), all.files[0].tensors.map((t) => t.status));
  for (const t of approx.tensors.filter((x) => x.status === 'modified')) {
    assert.is(t.maxabs, null);
    assert.ok(typeof t.l2 === 'number' && t.l2 > 0, `${t.name}: estimated l2`);
  }
});

test('unchanged tensors reuse their entries and objects', async () => {
  const { fs, dir, versions } = state;
  const m1 = await readMetadata({ fs, dir, ref: versions[1].commit, filepath: FILE });
  const m2 = await readMetadata({ fs, dir, ref: versions[2].commit, filepath: FILE });
  const same = versions[2].tensors.filter((t) => sameBytes(t.data, versions[1].tensors.find((x) => x.name === t.name)!.data)).map((t) => t.name);
  assert.ok(same.length > 0 && same.length < versions[2].tensors.length, 'v4 changes some tensors and keeps others');
  assert.equal(versions[2].reused.sort(), same.sort(), 'saveModel reports exactly the unchanged tensors as reused');
  for (const n of same) assert.equal(m2.tensors[n], m1.tensors[n], `${n}: same entry, same objects`);

  // saving the same model again stores nothing new and commits the same metadata blob
  const before = await lfsObjects(fs, dir);
  const again = await saveModel({ fs, dir, filepath: FILE, tensors: versions[2].tensors, message: 'again', author });
  assert.equal(await lfsObjects(fs, dir), before, 'no new object');
  assert.is(again.stored.length, 0);
  const { oid: prevBlob } = await git.readBlob({ fs, dir, oid: versions[2].commit, filepath: FILE });
  assert.is(again.blob, prevBlob, 'identical metadata blob');
});

test('a diff asks the store for the objects of changed tensors only, prefetched in one call', async () => {
  const { fs, dir, versions } = state;
  const local = defaultStore(fs, `${dir}/.git`);
  const prefetched: string[][] = [];
  const read: string[] = [];
  const store = Object.assign(Object.create(local), {
    async prefetch(refs: { oid: string }[]) { prefetched.push(refs.map((r) => r.oid)); return null; },
    async get(oid: string) { read.push(oid); return local.get(oid); },
  });
  const [a, b] = [versions[1].commit, versions[2].commit];
  await diffModel({ fs, dir, filepath: FILE, from: a, to: b, store });
  const ma = await readMetadata({ fs, dir, ref: a, filepath: FILE });
  const mb = await readMetadata({ fs, dir, ref: b, filepath: FILE });
  // stored objects only: small ones ride inline in the metadata (theta/inline-objects.ts)
  const oidsOf = (e: ModelMetadata['tensors'][string]) => entryObjects(e).map((r) => r.oid);
  const changed = Object.keys(mb.tensors).filter((n) => mb.tensors[n].hash !== ma.tensors[n].hash);
  const want = new Set(changed.flatMap((n) => [...oidsOf(ma.tensors[n]), ...oidsOf(mb.tensors[n])]));
  assert.is(prefetched.length, 1, 'one prefetch call');
  assert.equal(new Set(prefetched[0]), want, 'exactly the recipes of the changed tensors');
  assert.ok(read.every((o) => want.has(o)), 'no object of an unchanged tensor (or the skeleton) is read');
  assert.ok(!read.includes(mb.skeleton.oid));
  prefetched.length = 0;
  await diffModel({ fs, dir, filepath: FILE, from: a, to: b, store, approx: true });
  assert.equal(prefetched, [], 'approx needs no object');
});

test('a missing object is a typed error naming the tensor and the object', async () => {
  const { fs, dir } = state;
  const m = await readMetadata({ fs, dir, filepath: FILE });
  // the last stored object of a tensor whose recipe has several steps (small objects ride inline in the metadata)
  const name = Object.keys(m.tensors).find((n) => m.tensors[n].chain.length > 1 && entryObjects(m.tensors[n]).length)!;
  assert.ok(name, 'the fixture has a multi-step recipe with a stored object');
  const ref = entryObjects(m.tensors[name]).at(-1)!;
  const path = lfsObjectPath(`${dir}/.git/lfs`, ref.oid);
  const saved = (await fs.readFile(path)) as Uint8Array;
  await fs.unlink(path);
  try {
    const viaRead = await codeOf(async () => {
      for await (const t of readModel({ fs, dir, filepath: FILE })) await t.bytes();
    });
    assert.is(viaRead.code, 'E_OBJECT_MISSING');
    assert.is(viaRead.data?.tensor, name);
    assert.is(viaRead.data?.oid, ref.oid);
    assert.ok(viaRead.message?.includes(name) && viaRead.message.includes(ref.oid), viaRead.message);
    const viaCheckout = await codeOf(() => checkoutModel({ fs, dir, filepath: FILE, sink: memorySink() }));
    assert.is(viaCheckout.code, 'E_OBJECT_MISSING');
    assert.is(viaCheckout.data?.tensor, name);
    const viaDiff = await codeOf(() => diffModel({ fs, dir, filepath: FILE, from: 'HEAD~2', to: 'HEAD' }));
    assert.is(viaDiff.code, 'E_OBJECT_MISSING');
    assert.is(viaDiff.data?.oid, ref.oid);
  } finally {
    await fs.writeFile(path, saved);
  }
  assert.is((await collect(readModel({ fs, dir, filepath: FILE }))).length, 6, 'readable again once the object is back');
});

test('listModels finds git-theta models and git-lfs safetensors pointers', async () => {
  const { fs, dir, versions } = state;
  const listed = await listModels({ fs, dir });
  assert.equal(listed.map((m) => [m.path, m.kind, m.format, m.size, m.tensors]), [[FILE, 'theta', 'safetensors', versions[2].bytes.length, 6]]);
  assert.equal(await listModels({ fs, dir, filter: (p) => !p.startsWith('models/') }), []);

  // a plain git-lfs repository (how Hugging Face stores checkpoints): pointer blobs, whole-file objects
  const lfs = { fs: createMemFs(), dir: '/hf' };
  await git.init({ ...lfs, defaultBranch: 'main' });
  await lfs.fs.writeFile('/hf/.gitattributes', '*.safetensors filter=lfs diff=lfs merge=lfs -text\n');
  await git.add({ ...lfs, filepath: '.gitattributes' });
  const store = defaultStore(lfs.fs, '/hf/.git');
  const commits: string[] = [];
  for (const v of [versions[0], versions[1]]) {
    const { oid, size } = await store.put(v.bytes);
    await lfs.fs.writeFile('/hf/model.safetensors', `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${size}\n`);
    await lfs.fs.writeFile('/hf/README.md', `# ${v.fixture}\n`);
    await git.add({ ...lfs, filepath: ['model.safetensors', 'README.md'] });
    commits.push(await git.commit({ ...lfs, message: v.fixture, author }));
  }
  const found = await listModels(lfs);
  assert.is(found.length, 1);
  assert.is(found[0].kind, 'lfs');
  assert.is(found[0].path, 'model.safetensors');
  assert.is(found[0].lfsOid, await sha256Hex(versions[1].bytes));
  assert.is(found[0].size, versions[1].bytes.length);

  const sink = memorySink();
  assert.equal(await checkoutModel({ ...lfs, ref: commits[0], filepath: 'model.safetensors', sink }), { kind: 'lfs', format: 'safetensors', size: versions[0].bytes.length });
  assert.ok(sameBytes(sink.bytes(), versions[0].bytes));
  const tensors = await collect(readModel({ ...lfs, filepath: 'model.safetensors' }));
  assert.equal(tensors.map((t) => t.name), versions[1].tensors.map((t) => t.name), 'file order');

  // the same two versions diff to the same numbers whether stored by git-lfs or by git-theta
  const viaLfs = await diffModel({ ...lfs, filepath: 'model.safetensors', from: commits[0], to: commits[1], all: true });
  const viaTheta = await diffModel({ fs, dir, filepath: FILE, from: versions[0].commit, to: versions[1].commit, all: true });
  checkDiffAgainstLoops(viaLfs, versions[0].tensors, versions[1].tensors);
  assert.equal(viaLfs.tensors.map(({ update: _u, ...rest }) => rest), viaTheta.tensors.map(({ update: _u, ...rest }) => rest));
  const all = await diffRevisions({ ...lfs, from: commits[0], to: commits[1] });
  assert.equal(all.files.map((f) => f.path), ['model.safetensors']);
  assert.equal((await diffRevisions({ ...lfs, from: commits[0], to: commits[1], lfs: false })).files, []);

  // saveModel refuses a path bound to another filter
  const refused = await codeOf(() => saveModel({ ...lfs, filepath: 'model.safetensors', tensors: versions[0].tensors, message: 'x', author }));
  assert.is(refused.code, 'E_TRACKED_BY_OTHER_FILTER');
  assert.is(refused.data?.filter, 'lfs');
});

test('required options and bad revisions or paths are typed errors', async () => {
  const { fs, dir } = state;
  const noPath = await codeOf(() => readMetadata({ fs, dir } as never));
  assert.is(noPath.code, 'E_MISSING_PARAMETER');
  assert.equal(noPath.data, { caller: 'readMetadata', parameter: 'filepath' });
  assert.is((await codeOf(() => readModel({ dir, filepath: FILE } as never))).data?.parameter, 'fs');
  assert.is((await codeOf(() => saveModel({ fs, dir, filepath: FILE, tensors: [] } as never))).data?.parameter, 'message');
  assert.is((await codeOf(() => diffModel({ fs, dir, filepath: FILE, from: 'HEAD' } as never))).data?.parameter, 'to');
  assert.is((await codeOf(() => checkoutModel({ fs, dir, filepath: FILE } as never))).data?.parameter, 'sink');
  assert.is((await codeOf(() => readMetadata({ fs, dir, filepath: FILE, ref: 'no-such-branch' }))).code, 'E_REVISION_NOT_FOUND');
  assert.is((await codeOf(() => readMetadata({ fs, dir, filepath: FILE, ref: 'HEAD~9' }))).code, 'E_REVISION_NOT_FOUND');
  assert.is((await codeOf(() => readMetadata({ fs, dir, filepath: 'nope.safetensors' }))).code, 'E_PATH_NOT_FOUND');
  assert.is((await codeOf(() => readMetadata({ fs, dir, filepath: '.gitattributes' }))).code, 'E_NOT_A_MODEL');
  const empty = { fs: createMemFs(), dir: '/empty' };
  await git.init({ ...empty, defaultBranch: 'main' });
  assert.is((await codeOf(() => listModels(empty))).code, 'E_REVISION_NOT_FOUND', 'no commits yet');
});

test('createMemFs behaves like a POSIX file system for isomorphic-git', async () => {
  const fs = createMemFs();
  assert.is((await codeOf(() => fs.readFile('/a'))).code, 'ENOENT');
  assert.is((await codeOf(() => fs.writeFile('/d/a', 'x'))).code, 'ENOENT', 'parent must exist');
  await fs.mkdir('/d');
  assert.is((await codeOf(() => fs.mkdir('/d'))).code, 'EEXIST');
  await fs.writeFile('/d/a', 'hello');
  assert.is(await fs.readFile('/d/a', 'utf8'), 'hello');
  assert.is((await codeOf(() => fs.rmdir('/d'))).code, 'ENOTEMPTY');
  assert.is((await codeOf(() => fs.readdir('/d/a'))).code, 'ENOTDIR');
  await fs.symlink('a', '/d/link');
  assert.ok((await fs.lstat('/d/link')).isSymbolicLink());
  assert.ok((await fs.stat('/d/link')).isFile());
  assert.is(await fs.readFile('/d/link', 'utf8'), 'hello');
  assert.is(await fs.readlink('/d/link'), 'a');
  await fs.chmod('/d/a', 0o755);
  assert.is((await fs.stat('/d/a')).mode & 0o777, 0o755);
  await fs.rename('/d/a', '/d/b');
  assert.equal(await fs.readdir('/d'), ['b', 'link']);
  await fs.unlink('/d/link');
  await fs.unlink('/d/b');
  await fs.rmdir('/d');
  assert.equal(await fs.readdir('/'), []);
  assert.is(fs.promises, fs, 'usable where node:fs is expected');
});

test.run();
