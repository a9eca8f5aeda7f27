// `git theta switch` and `git theta clone`: checkpoints written straight from the object store
// (not through git's smudge pipe), byte-identical, the index's stat data recorded so `git status`
// is clean, HEAD moved; a switch with local changes is refused like git refuses it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, ENV, fixturesDir, git, run, sha256, tempDir, theta, thetaRepo } from './helpers.ts';
import { ThetaRepo } from '../../src/node/repo/theta-repo.ts';
import { fastSwitch } from '../../src/node/cli/commands/switch.ts';

const t = suite('switch-clone');
const fx = (n: string) => join(fixturesDir, n);
const same = (file: string, fixture: string) => sha256(readFileSync(file)) === sha256(readFileSync(fx(fixture)));

/** main: a = v0, b = v1, notes.txt; branch other: b = v2, c = v1 added, notes.txt changed. */
async function twoBranches(): Promise<string> {
  const dir = await thetaRepo();
  copyFileSync(fx('history-v0.safetensors'), join(dir, 'a.safetensors'));
  copyFileSync(fx('history-v1.safetensors'), join(dir, 'b.safetensors'));
  writeFileSync(join(dir, 'notes.txt'), 'main\n');
  await git(dir, 'add', '.');
  await git(dir, 'commit', '-qm', 'one');
  await git(dir, 'switch', '-q', '-c', 'other');
  copyFileSync(fx('history-v2.safetensors'), join(dir, 'b.safetensors'));
  copyFileSync(fx('history-v1.safetensors'), join(dir, 'c.safetensors'));
  writeFileSync(join(dir, 'notes.txt'), 'other\n');
  await git(dir, 'add', '.');
  await git(dir, 'commit', '-qm', 'two');
  await git(dir, 'switch', '-q', 'main');
  return dir;
}

t('git theta switch writes the changed checkpoints byte for byte, moves HEAD, leaves git status clean', async () => {
  const dir = await twoBranches();
  try {
    const aBefore = statSync(join(dir, 'a.safetensors'), { bigint: true });
    const r = await theta(dir, ['switch', 'other']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote 2 checkpoint\(s\)/);
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v2.safetensors'), 'b is v2');
    assert.ok(same(join(dir, 'c.safetensors'), 'history-v1.safetensors'), 'c is v1');
    assert.is(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'other\n');
    const aAfter = statSync(join(dir, 'a.safetensors'), { bigint: true });
    assert.is(aAfter.ino, aBefore.ino, 'a (same on both branches) not rewritten');
    assert.is(aAfter.mtimeNs, aBefore.mtimeNs, 'a not rewritten');
    assert.is((await git(dir, 'symbolic-ref', 'HEAD')).trim(), 'refs/heads/other');
    assert.is(await git(dir, 'status', '--porcelain'), '');
    // and back: c goes away, b is v1 again
    const back = await theta(dir, ['switch', 'main']);
    assert.is(back.code, 0, back.stderr);
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v1.safetensors'), 'b is v1 again');
    assert.not.ok(existsSync(join(dir, 'c.safetensors')), 'c removed');
    assert.is((await git(dir, 'symbolic-ref', 'HEAD')).trim(), 'refs/heads/main');
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t('a switch with local changes to tracked files is refused (E_DIRTY) and changes nothing', async () => {
  const dir = await twoBranches();
  try {
    copyFileSync(fx('history-v2.safetensors'), join(dir, 'a.safetensors'));
    const repo = await ThetaRepo.open(dir);
    let code: string | undefined;
    try {
      await fastSwitch(repo, 'other');
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    assert.is(code, 'E_DIRTY');
    assert.is((await git(dir, 'symbolic-ref', 'HEAD')).trim(), 'refs/heads/main', 'HEAD not moved');
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v1.safetensors'), 'b untouched');
    const r = await theta(dir, ['switch', 'other']);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /local changes to 1 file\(s\) \(a\.safetensors\).*commit or stash/);
  } finally {
    cleanup(dir);
  }
});

t('git theta clone of a local repository writes every checkpoint; git status is clean', async () => {
  const src = await twoBranches();
  const parent = tempDir('theta-clone-');
  try {
    const dest = join(parent, 'copy');
    const r = await theta(parent, ['clone', src, 'copy']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote 2 checkpoint\(s\)/);
    assert.ok(same(join(dest, 'a.safetensors'), 'history-v0.safetensors'), 'a');
    assert.ok(same(join(dest, 'b.safetensors'), 'history-v1.safetensors'), 'b');
    assert.is(await git(dest, 'status', '--porcelain'), '');
    assert.is((await git(dest, 'rev-parse', 'HEAD')).trim(), (await git(src, 'rev-parse', 'main')).trim());
    // the clone's objects came from the source (verified by the download), and switching there works too
    const sw = await theta(dest, ['switch', 'other']);
    assert.is(sw.code, 0, sw.stderr);
    assert.ok(same(join(dest, 'b.safetensors'), 'history-v2.safetensors'), 'b is v2 in the clone');
    assert.is(await git(dest, 'status', '--porcelain'), '');
  } finally {
    cleanup(src);
    cleanup(parent);
  }
});

t('GIT_THETA_SKIP_SMUDGE=1: the filter hands git the metadata as it is (what switch and clone rely on)', async () => {
  const dir = await twoBranches();
  try {
    const { rmSync } = await import('node:fs');
    rmSync(join(dir, 'b.safetensors'));
    const r = await run('git', ['checkout', '--', 'b.safetensors'], dir, { env: { ...ENV, GIT_THETA_SKIP_SMUDGE: '1' } });
    assert.is(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, 'b.safetensors')), Buffer.from(await git(dir, 'cat-file', 'blob', ':b.safetensors')), 'the metadata blob, byte for byte');
    const back = await theta(dir, ['checkout', '--', 'b.safetensors']);
    assert.is(back.code, 0, back.stderr);
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v1.safetensors'), 'git theta checkout writes the checkpoint');
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t.run();
