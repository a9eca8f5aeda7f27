// `git theta add <directory>`: the tracked checkpoints under it are cleaned in-process (no filter
// process, no pipe, one git call to write all their metadata and one to stage it); the directory's
// other files and its deletions are staged by git as `git add` would; checkouts are exact and
// `git status` is clean afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getFormat } from '../../src/formats/index.ts';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { cleanup, git, sha256, theta, thetaRepo } from './helpers.ts';

const settle = () => new Promise((r) => setTimeout(r, 1100));

async function model(seed: number, n = 3000): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  const w = new Float32Array(n).map((_, i) => Math.sin(i * 0.01 + seed));
  await getFormat('safetensors').write([
    { name: 'w', dtype: 'F32', shape: [n], data: new Uint8Array(w.buffer) },
    { name: 'b', dtype: 'F32', shape: [4], data: new Uint8Array(new Float32Array([seed, 1, 2, 3]).buffer) },
  ], { async write(b) { parts.push(b.slice()); }, async close() {} });
  return Buffer.concat(parts);
}

/** `git theta add` with GIT_TRACE: whether git started the filter process. */
async function addTraced(dir: string, ...args: string[]): Promise<{ code: number; stderr: string; filterStarted: boolean }> {
  const trace = join(dir, '..', `trace-${Date.now()}.txt`);
  const r = await theta(dir, ['add', ...args], { env: { GIT_TRACE: trace } });
  const text = existsSync(trace) ? readFileSync(trace, 'utf8') : '';
  rmSync(trace, { force: true });
  return { code: r.code, stderr: r.stderr, filterStarted: /filter-process/.test(text) };
}

test('git theta add <dir>: checkpoints cleaned in-process, other files and deletions staged by git, exact checkouts', async () => {
  const dir = await thetaRepo();
  try {
    mkdirSync(join(dir, 'models', 'sub'), { recursive: true });
    const a1 = await model(1), b1 = await model(2), d1 = await model(4);
    writeFileSync(join(dir, 'models', 'a.safetensors'), a1);
    writeFileSync(join(dir, 'models', 'sub', 'b.safetensors'), b1);
    writeFileSync(join(dir, 'models', 'd.safetensors'), d1);
    writeFileSync(join(dir, 'models', 'notes.txt'), 'plain text\n');
    await git(dir, 'add', '.gitattributes');
    await git(dir, 'commit', '-q', '-m', 'attributes');
    // files written in the same second as an index write look "racily clean" to git, which then
    // compares their content through the filter (a process this test checks is not started)
    await settle();
    const first = await addTraced(dir, 'models');
    assert.is(first.code, 0, first.stderr);
    assert.not.ok(first.filterStarted, 'no filter process: the checkpoints took the direct path');
    assert.equal((await git(dir, 'ls-files', 'models')).trim().split('\n'), ['models/a.safetensors', 'models/d.safetensors', 'models/notes.txt', 'models/sub/b.safetensors']);
    for (const p of ['models/a.safetensors', 'models/sub/b.safetensors', 'models/d.safetensors']) assert.is(parseMetadata(await git(dir, 'show', `:${p}`)).format, 'safetensors', p);
    assert.is(await git(dir, 'show', ':models/notes.txt'), 'plain text\n');
    assert.is(await git(dir, 'status', '--porcelain'), 'A  models/a.safetensors\nA  models/d.safetensors\nA  models/notes.txt\nA  models/sub/b.safetensors\n', 'everything staged, nothing left over');
    await git(dir, 'commit', '-q', '-m', 'v1');

    // v2: a changed, b deleted, c new, d untouched, notes changed
    const a2 = await model(1.5), c1 = await model(3);
    writeFileSync(join(dir, 'models', 'a.safetensors'), a2);
    rmSync(join(dir, 'models', 'sub', 'b.safetensors'));
    writeFileSync(join(dir, 'models', 'c.safetensors'), c1);
    writeFileSync(join(dir, 'models', 'notes.txt'), 'changed\n');
    const second = await addTraced(dir, 'models');
    assert.is(second.code, 0, second.stderr);
    assert.not.ok(second.filterStarted, 'no filter process the second time either (d is stat-clean, not read)');
    assert.is(await git(dir, 'status', '--porcelain'), 'M  models/a.safetensors\nA  models/c.safetensors\nM  models/notes.txt\nD  models/sub/b.safetensors\n');
    const m2 = parseMetadata(await git(dir, 'show', ':models/a.safetensors'));
    assert.is(m2.tensors.w.hash !== parseMetadata(await git(dir, 'show', 'HEAD:models/a.safetensors')).tensors.w.hash, true, 'a was cleaned again');
    await git(dir, 'commit', '-q', '-m', 'v2');

    // both versions check out byte for byte, through git's own checkout (the filter's smudge)
    rmSync(join(dir, 'models'), { recursive: true });
    await git(dir, 'checkout', '--', 'models');
    assert.is(sha256(readFileSync(join(dir, 'models', 'a.safetensors'))), sha256(a2));
    assert.is(sha256(readFileSync(join(dir, 'models', 'c.safetensors'))), sha256(c1));
    assert.is(sha256(readFileSync(join(dir, 'models', 'd.safetensors'))), sha256(d1));
    await git(dir, 'checkout', '-q', 'HEAD~1');
    assert.is(sha256(readFileSync(join(dir, 'models', 'a.safetensors'))), sha256(a1));
    assert.is(sha256(readFileSync(join(dir, 'models', 'sub', 'b.safetensors'))), sha256(b1));
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

test('git theta add . from a subdirectory, and a file named by a pathspec git resolves', async () => {
  const dir = await thetaRepo();
  try {
    mkdirSync(join(dir, 'm'), { recursive: true });
    writeFileSync(join(dir, 'm', 'x.safetensors'), await model(7));
    writeFileSync(join(dir, 'top.safetensors'), await model(8));
    await git(dir, 'add', '.gitattributes');
    await git(dir, 'commit', '-q', '-m', 'attributes');
    const r = await theta(join(dir, 'm'), ['add', '.']);
    assert.is(r.code, 0, r.stderr);
    assert.is(await git(dir, 'status', '--porcelain'), 'A  m/x.safetensors\n?? top.safetensors\n', 'only what is under the current directory');
    const g = await theta(dir, ['add', '*.safetensors']);
    assert.is(g.code, 0, g.stderr);
    assert.is(parseMetadata(await git(dir, 'show', ':top.safetensors')).format, 'safetensors');
  } finally {
    cleanup(dir);
  }
});

test('a bad theta.inlineMax is a clear error naming the setting, and nothing is staged', async () => {
  const dir = await thetaRepo();
  try {
    writeFileSync(join(dir, 'm.safetensors'), await model(9));
    await git(dir, 'add', '.gitattributes');
    await git(dir, 'commit', '-q', '-m', 'attributes');
    for (const bad of ['lots', '-1', '1.5']) {
      await git(dir, 'config', 'theta.inlineMax', bad);
      const r = await theta(dir, ['add', 'm.safetensors']);
      assert.is.not(r.code, 0, bad);
      assert.match(r.stderr, /theta\.inlineMax must be a whole number of bytes/);
      assert.match(r.stderr, /git config theta\.inlineMax 1024/);
      assert.is(await git(dir, 'status', '--porcelain'), '?? m.safetensors\n', 'nothing staged');
    }
    await git(dir, 'config', 'theta.inlineMax', '0');
    assert.is((await theta(dir, ['add', 'm.safetensors'])).code, 0);
    const m = parseMetadata(await git(dir, 'show', ':m.safetensors'));
    assert.is((m.tensors.b.chain[0].object as { data?: string }).data, undefined, 'theta.inlineMax=0: the 16-byte bias is an object');
  } finally {
    cleanup(dir);
  }
});

test.run();
