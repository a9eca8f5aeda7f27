// `git theta switch` and `git theta clone`: checkpoints written straight from the object store
// (not through git's smudge pipe), byte-identical, the index's stat data recorded so `git status`
// is clean, HEAD moved; a switch with local changes is refused like git refuses it. Git's part of the
// switch runs without the filter (no filter process starts), and falls back to it when git refuses.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, copyFileSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, ENV, fixturesDir, git, run, sha256, tempDir, theta, thetaRepo } from './helpers.ts';
import { ThetaRepo } from '../../src/node/repo/theta-repo.ts';
import { fastSwitch } from '../../src/node/cli/commands/switch.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { memorySink } from '../../src/core/io.ts';

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

/** The argv of every process git started (GIT_TRACE2_EVENT's child_start events) during `theta args`. */
async function childProcesses(dir: string, args: string[]): Promise<{ code: number; stderr: string; gits: string[]; children: string[] }> {
  const trace = join(dir, '..', `trace-${Date.now()}.json`);
  try {
    const r = await theta(dir, args, { env: { GIT_TRACE2_EVENT: trace } });
    const events = existsSync(trace) ? readFileSync(trace, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; argv?: string[] }) : [];
    return {
      code: r.code,
      stderr: r.stderr,
      gits: events.filter((e) => e.event === 'start').map((e) => (e.argv ?? []).join(' ')),
      children: events.filter((e) => e.event === 'child_start').map((e) => (e.argv ?? []).join(' ')),
    };
  } finally {
    rmSync(trace, { force: true });
  }
}

/** Every file dated 10 s back and the index refreshed: no entry is racily clean (none needs the clean filter to compare). */
async function settle(dir: string): Promise<void> {
  const past = new Date(Date.now() - 10_000);
  for (const f of (await git(dir, 'ls-files', '-z')).split('\0').filter(Boolean)) utimesSync(join(dir, f), past, past);
  assert.is(await git(dir, 'status', '--porcelain'), '', 'clean to start with');
}

t('git theta switch: no filter process starts; ordinary files added, changed and removed like git switch does', async () => {
  const dir = await twoBranches();
  try {
    writeFileSync(join(dir, 'gone.txt'), 'only on main\n');
    await git(dir, 'add', 'gone.txt');
    await git(dir, 'commit', '-qm', 'gone.txt');
    await git(dir, 'switch', '-q', 'other');
    await git(dir, 'rm', '-q', 'a.safetensors');
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'new.txt'), 'new\n');
    copyFileSync(fx('history-v0.safetensors'), join(dir, 'sub', 'd.safetensors'));
    await git(dir, 'add', '.');
    await git(dir, 'commit', '-qm', 'more');
    await git(dir, 'switch', '-q', 'main');
    await settle(dir);
    const r = await childProcesses(dir, ['switch', 'other']);
    assert.is(r.code, 0, r.stderr);
    assert.ok(r.gits.some((g) => /switch other$/.test(g)), `the trace saw git switch: ${r.gits.join('\n')}`);
    assert.equal(r.children.filter((c) => c.includes('filter-process')), [], 'no filter process started');
    assert.match(r.stderr, /wrote 3 checkpoint\(s\)/);
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v2.safetensors'), 'b is v2');
    assert.ok(same(join(dir, 'c.safetensors'), 'history-v1.safetensors'), 'c is v1');
    assert.ok(same(join(dir, 'sub', 'd.safetensors'), 'history-v0.safetensors'), 'sub/d is v0 (a new directory)');
    assert.not.ok(existsSync(join(dir, 'a.safetensors')), 'a removed');
    assert.not.ok(existsSync(join(dir, 'gone.txt')), 'gone.txt removed');
    assert.is(readFileSync(join(dir, 'sub', 'new.txt'), 'utf8'), 'new\n');
    assert.is(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'other\n');
    assert.is(await git(dir, 'status', '--porcelain'), '');
    const back = await childProcesses(dir, ['switch', 'main']);
    assert.is(back.code, 0, back.stderr);
    assert.equal(back.children.filter((c) => c.includes('filter-process')), []);
    assert.ok(same(join(dir, 'a.safetensors'), 'history-v0.safetensors'), 'a back');
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v1.safetensors'), 'b is v1 again');
    assert.is(readFileSync(join(dir, 'gone.txt'), 'utf8'), 'only on main\n');
    assert.not.ok(existsSync(join(dir, 'sub')), 'sub removed with its files');
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

/** A racily clean checkpoint: its file dated into the future, and `git status` run (which compares it by content, then trusts its stat data only partly). */
async function racy(dir: string, file: string): Promise<void> {
  const future = new Date(Date.now() + 60_000);
  utimesSync(join(dir, file), future, future);
  assert.is(await git(dir, 'status', '--porcelain'), '', 'clean to start with');
}

const filterStarts = (children: string[]) => children.filter((c) => c.includes('filter-process')).length;

t('git theta switch: a checkpoint git could not trust by its stat data is dated back and recorded first; git needs no filter', async () => {
  const dir = await twoBranches();
  try {
    await racy(dir, 'b.safetensors');
    const r = await childProcesses(dir, ['switch', 'other']);
    assert.is(r.code, 0, r.stderr);
    // `git status` (the dirty check) compares b by content through the filter; the switch itself does not
    assert.is(filterStarts(r.children), 1, r.children.join('\n'));
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v2.safetensors'), 'b is v2');
    assert.ok(same(join(dir, 'c.safetensors'), 'history-v1.safetensors'), 'c is v1');
    assert.is((await git(dir, 'symbolic-ref', 'HEAD')).trim(), 'refs/heads/other');
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t('git theta switch with an index in version 4 (prefix-compressed paths): stat data recorded there too, git status clean', async () => {
  const dir = await twoBranches();
  try {
    await git(dir, 'update-index', '--index-version', '4');
    await racy(dir, 'b.safetensors');
    const r = await childProcesses(dir, ['switch', 'other']);
    assert.is(r.code, 0, r.stderr);
    assert.is(filterStarts(r.children), 1, `only git status's: ${r.children.join('\n')}`);
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v2.safetensors'), 'b is v2');
    assert.ok(same(join(dir, 'c.safetensors'), 'history-v1.safetensors'), 'c is v1');
    const debug = await git(dir, 'ls-files', '--debug', 'b.safetensors');
    assert.match(debug, new RegExp(`size: ${statSync(join(dir, 'b.safetensors')).size}\\b`), 'the index records the checkpoint file, not the metadata git wrote');
    assert.is((await git(dir, 'symbolic-ref', 'HEAD')).trim(), 'refs/heads/other');
    assert.is(await git(dir, 'status', '--porcelain'), '');
    assert.is(readFileSync(join(dir, '.git', 'index')).readUInt32BE(4), 4, 'still version 4');
  } finally {
    cleanup(dir);
  }
});

t('git theta switch refuses like git when an untracked file is in the way (E_GIT) and changes nothing', async () => {
  const dir = await twoBranches();
  try {
    writeFileSync(join(dir, 'c.safetensors'), 'not a model, untracked\n');
    const r = await childProcesses(dir, ['switch', 'other']);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /git switch other failed: .*untracked working tree files would be overwritten/s);
    const switches = r.gits.filter((g) => /switch other$/.test(g));
    assert.is(switches.length, 2, `without the filter, then again with it (which says why): ${switches.join('\n')}`);
    assert.ok(switches[0].includes('filter.theta.process=') && !switches[1].includes('filter.theta.process='));
    assert.is((await git(dir, 'symbolic-ref', 'HEAD')).trim(), 'refs/heads/main', 'HEAD not moved');
    assert.ok(same(join(dir, 'b.safetensors'), 'history-v1.safetensors'), 'b untouched');
    assert.is(readFileSync(join(dir, 'c.safetensors'), 'utf8'), 'not a model, untracked\n');
    assert.is(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'main\n');
  } finally {
    cleanup(dir);
  }
});

/** A 2 MiB safetensors model of 8 tensors; `changed` tensors get other values, `extra` adds a tensor (another header). */
async function bigModel(changed: number[], extra = false): Promise<Uint8Array> {
  const n = 65536;
  const tensors = Array.from({ length: extra ? 9 : 8 }, (_, i) => ({
    name: `t${i}`, dtype: 'F32' as const, shape: [n],
    data: new Uint8Array(Float32Array.from({ length: n }, (_, k) => k * 1e-3 + i + (changed.includes(i) ? 0.5 : 0)).buffer),
  }));
  const sink = memorySink();
  await safetensors.write(tensors, sink);
  return sink.bytes();
}

t('git theta switch patches a big safetensors checkpoint with the same header: only changed tensors written, bytes identical, other links untouched', async () => {
  const dir = await thetaRepo();
  try {
    const [v0, v1, v2] = [await bigModel([]), await bigModel([3, 6]), await bigModel([3], true)];
    writeFileSync(join(dir, 'big.safetensors'), v0);
    await git(dir, 'add', '.');
    await git(dir, 'commit', '-qm', 'v0');
    await git(dir, 'switch', '-q', '-c', 'patched');
    writeFileSync(join(dir, 'big.safetensors'), v1);
    await git(dir, 'commit', '-qam', 'v1: t3 and t6 changed');
    await git(dir, 'switch', '-q', '-c', 'grown', 'main');
    writeFileSync(join(dir, 'big.safetensors'), v2);
    await git(dir, 'commit', '-qam', 'v2: t3 changed, t8 added (another header)');
    await git(dir, 'switch', '-q', 'main');
    await settle(dir);
    const file = join(dir, 'big.safetensors');
    const before = statSync(file);
    const r = await childProcesses(dir, ['switch', 'patched']);
    assert.is(r.code, 0, r.stderr);
    assert.equal(r.children.filter((c) => c.includes('filter-process')), []);
    assert.ok(Buffer.from(readFileSync(file)).equals(Buffer.from(v1)), 'v1, byte for byte');
    assert.is(statSync(file).ino, before.ino, 'the old file was patched (same inode), not rebuilt whole');
    assert.is(await git(dir, 'status', '--porcelain'), '');
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no second name left behind');
    // another name for the file (a user's hard link) keeps the old bytes: the patch then goes to a copy
    linkSync(file, join(dir, '..', `${dir.split('/').pop()}-backup.safetensors`));
    const backup = join(dir, '..', `${dir.split('/').pop()}-backup.safetensors`);
    try {
      const back = await theta(dir, ['switch', 'main']);
      assert.is(back.code, 0, back.stderr);
      assert.ok(Buffer.from(readFileSync(file)).equals(Buffer.from(v0)), 'v0 again');
      assert.ok(Buffer.from(readFileSync(backup)).equals(Buffer.from(v1)), 'the other link still holds v1');
      assert.is(await git(dir, 'status', '--porcelain'), '');
    } finally {
      rmSync(backup, { force: true });
    }
    // a file git does not check (assume-unchanged) is not trusted to hold its version: rebuilt whole
    await git(dir, 'update-index', '--assume-unchanged', 'big.safetensors');
    const ino = statSync(file).ino;
    // held open, the old file's inode is not freed, so the new file cannot be given its number
    const held = openSync(file, 'r');
    try {
      const au = await theta(dir, ['switch', 'patched']);
      assert.is(au.code, 0, au.stderr);
      assert.ok(Buffer.from(readFileSync(file)).equals(Buffer.from(v1)), 'v1 again');
      assert.is.not(statSync(file).ino, ino, 'rebuilt whole (a new file)');
    } finally {
      closeSync(held);
    }
    await git(dir, 'update-index', '--no-assume-unchanged', 'big.safetensors');
    assert.is(await git(dir, 'status', '--porcelain'), '');
    const main = await theta(dir, ['switch', 'main']);
    assert.is(main.code, 0, main.stderr);
    // another header: rebuilt whole
    const grown = await theta(dir, ['switch', 'grown']);
    assert.is(grown.code, 0, grown.stderr);
    assert.ok(Buffer.from(readFileSync(file)).equals(Buffer.from(v2)), 'v2, byte for byte');
    assert.is(await git(dir, 'status', '--porcelain'), '');
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
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
