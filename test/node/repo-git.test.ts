// The repository library (src/repo, isomorphic-git) against the real git CLI with the theta
// filter, on node:fs: what `git theta add` + `git commit` wrote is read back byte-identical and
// diffed to the same JSON as `git theta diff --json`; what saveModel committed is checked out by
// the real git byte-identical, with `git status` clean.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import {
  checkoutModel, diffModel, diffRevisions, listModels, loadModel, readMetadata, readModel, saveModel,
} from '../../src/repo/index.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { cleanup, fixturesDir, git, sha256, thetaOk, thetaRepo } from './helpers.ts';

const test = suite('repo library vs real git');
const HISTORY = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v4-sparse.safetensors'];
const fixture = (n: string) => new Uint8Array(nodeFs.readFileSync(join(fixturesDir, n)));
const author = { name: 'theta test', email: 'test@git-theta.invalid', timestamp: 1_700_000_000, timezoneOffset: 0 };
const dirs: string[] = [];

async function tensorsOf(bytes: Uint8Array): Promise<TensorToWrite[]> {
  const r = await safetensors.open(readerFromBytes(bytes));
  const out: TensorToWrite[] = [];
  for await (const t of r.tensors()) out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await t.bytes() });
  return out;
}

test('a repository written by git theta add + git commit is read by the library with node:fs', async () => {
  const dir = await thetaRepo();
  dirs.push(dir);
  nodeFs.mkdirSync(join(dir, 'm'));
  await git(dir, 'add', '.gitattributes');
  const commits: string[] = [];
  for (const f of HISTORY) {
    nodeFs.copyFileSync(join(fixturesDir, f), join(dir, 'm', 'model.safetensors'));
    await thetaOk(dir, 'add', 'm/model.safetensors');
    await git(dir, 'commit', '-q', '-m', f);
    commits.push((await git(dir, 'rev-parse', 'HEAD')).trim());
  }
  const fs = nodeFs;
  const filepath = 'm/model.safetensors';
  for (const [i, f] of HISTORY.entries()) {
    const want = fixture(f);
    const meta = await readMetadata({ fs, dir, ref: commits[i], filepath });
    assert.equal(meta, parseMetadata(await git(dir, 'cat-file', 'blob', `${commits[i]}:${filepath}`)), `${f}: same metadata as git has`);
    const sink = memorySink();
    const r = await checkoutModel({ fs, dir, ref: commits[i], filepath, sink });
    assert.is(r.size, want.length);
    assert.is(sha256(sink.bytes()), sha256(want), `${f}: checkout byte-identical`);
    const loaded = await loadModel({ fs, dir, ref: commits[i], filepath });
    const tensors = await tensorsOf(want);
    for (const t of tensors) assert.is(sha256(loaded.tensors.find((x) => x.name === t.name)!.data), sha256(t.data), `${f} ${t.name}`);
  }
  assert.equal((await listModels({ fs, dir })).map((m) => [m.path, m.kind]), [[filepath, 'theta']]);

  for (const [a, b, approx] of [['HEAD~2', 'HEAD~1', false], ['HEAD~1', 'HEAD', false], ['HEAD~2', 'HEAD', false], ['HEAD~2', 'HEAD', true]] as const) {
    const cli = await thetaOk(dir, 'diff', a, b, '--json', ...(approx ? ['--approx'] : []));
    const ours = await diffRevisions({ fs, dir, from: a, to: b, approx });
    assert.is(JSON.stringify(ours) + '\n', cli, `diff ${a} ${b}${approx ? ' --approx' : ''}: the same JSON as the CLI`);
    assert.ok(ours.files.length === 1 && ours.files[0].summary.modified > 0, 'something changed');
    assert.equal(await diffModel({ fs, dir, filepath, from: a, to: b, approx }), ours.files[0]);
  }
});

test('a commit made by saveModel is checked out by the real git byte-identical, git status clean', async () => {
  const dir = await thetaRepo();
  dirs.push(dir);
  await git(dir, 'add', '.gitattributes');
  await git(dir, 'commit', '-q', '-m', 'track');
  const fs = nodeFs;
  const filepath = 'model.safetensors';
  const commits: string[] = [];
  for (const [i, f] of HISTORY.entries()) {
    const r = await saveModel({ fs, dir, filepath, tensors: await tensorsOf(fixture(f)), message: `save ${f}`, author: { ...author, timestamp: author.timestamp + i } });
    assert.is(r.tracked, false, '*.safetensors was already tracked');
    commits.push(r.commit);
    assert.is((await git(dir, 'rev-parse', 'HEAD')).trim(), r.commit, 'git sees the commit');
    assert.is(await git(dir, 'status', '--porcelain'), '', `${f}: git status clean after saveModel`);
  }
  // the blob git stores is what the theta clean filter would store for the same file
  assert.is((await git(dir, 'fsck', '--no-progress')).trim(), '');
  for (const [i, f] of HISTORY.entries()) {
    nodeFs.rmSync(join(dir, filepath));
    await git(dir, 'checkout', '-q', commits[i], '--', filepath);
    assert.is(sha256(nodeFs.readFileSync(join(dir, filepath))), sha256(fixture(f)), `${f}: real git + theta smudge give the file back`);
  }
  await git(dir, 'checkout', '-q', 'HEAD', '--', filepath);
  assert.is(await git(dir, 'status', '--porcelain'), '');
  const cli = await thetaOk(dir, 'diff', 'HEAD~2', 'HEAD', '--json');
  assert.is(JSON.stringify(await diffRevisions({ fs, dir, from: 'HEAD~2', to: 'HEAD' })) + '\n', cli, 'CLI and library agree on the saved history');
  const names = (await git(dir, 'log', '--format=%s')).trim().split('\n');
  assert.equal(names, [...HISTORY.map((f) => `save ${f}`).reverse(), 'track']);
  // streaming read through the library of what git now has in the index/HEAD
  let n = 0;
  for await (const t of readModel({ fs, dir, filepath })) { await t.bytes(); n++; }
  assert.is(n, 6);
});

test.after(() => {
  for (const d of dirs) cleanup(d);
});

test.run();
