// Fault tests (issue 12): a process killed with SIGKILL in the middle of its work (the filter
// during `git add` and `git checkout`, `git theta checkout`, the pre-push hook), a full disk, and
// two `git add`s at once in two worktrees. After each: the rerun completes, every object's SHA-256
// equals its name, checkouts are byte-identical, and `git theta gc` leaves no temporary file.
// Kills are deterministic: THETA_TEST_KILL=<point>:<n> (src/node/faults.ts) makes the process
// kill itself the n-th time it reaches that point.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { basename, join } from 'node:path';
import { startServer, type ThetaServer } from '../../src/node/serve/server.ts';
import { cleanup, collectBeforeExit, filesUnder, fixturesDir, git, objectFiles, run, sha256, tempDir, theta, thetaOk, thetaRepo } from './helpers.ts';

const t = suite('faults: kills, a full disk, concurrent adds');

const V1 = join(fixturesDir, 'history-v0.safetensors');
const V2 = join(fixturesDir, 'history-v1.safetensors');
const kill = (point: string, n = 1) => ({ THETA_TEST_KILL: `${point}:${n}` });

/** Every object's bytes hash to its name (in this LFS directory). */
function assertObjectsSound(lfsDir: string): number {
  const objects = objectFiles(join(lfsDir, 'objects'));
  for (const [oid, bytes] of objects) assert.is(sha256(bytes), oid, `object ${oid} is sound`);
  return objects.size;
}

/** Temp files older than gc's grace period (the kill left them), then gc: none may remain. */
async function assertGcLeavesNoTemps(dir: string): Promise<void> {
  const old = new Date(Date.now() - 2 * 3600 * 1000);
  const temps = () => [...filesUnder(join(dir, '.git/lfs/tmp')), ...filesUnder(dir).filter((p) => !p.includes('/.git/') && p.endsWith('.tmp'))];
  for (const p of temps()) utimesSync(p, old, old);
  const r = await theta(dir, ['gc']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(temps(), [], 'no temporary file left after git theta gc');
}

async function committed(files: [string, string][]): Promise<string> {
  const dir = await thetaRepo(['*.safetensors']);
  for (const [name, src] of files) copyFileSync(src, join(dir, name));
  await git(dir, 'add', '.gitattributes', ...files.map(([n]) => n));
  await git(dir, 'commit', '-q', '-m', 'v1');
  return dir;
}

t('SIGKILL of the filter during git add: git add fails, the rerun completes, objects sound, checkout exact', async () => {
  const dir = await thetaRepo(['*.safetensors']);
  try {
    copyFileSync(V1, join(dir, 'm.safetensors'));
    const killed = await run('git', ['add', '.gitattributes', 'm.safetensors'], dir, { env: kill('object-write', 2) });
    assert.is.not(killed.code, 0, 'git add reports the dead filter');
    assert.ok(filesUnder(join(dir, '.git/lfs/tmp')).length >= 1, 'the kill left a temporary object file (or the test kills too late)');
    await git(dir, 'add', '.gitattributes', 'm.safetensors');
    await git(dir, 'commit', '-q', '-m', 'v1');
    assert.ok(assertObjectsSound(join(dir, '.git/lfs')) > 1);
    rmSync(join(dir, 'm.safetensors'));
    await git(dir, 'checkout', '--', 'm.safetensors');
    assert.is(sha256(readFileSync(join(dir, 'm.safetensors'))), sha256(readFileSync(V1)));
    await assertGcLeavesNoTemps(dir);
  } finally {
    cleanup(dir);
  }
});

t('SIGKILL of the filter during git checkout: the rerun gives the exact bytes', async () => {
  const dir = await committed([['m.safetensors', V1]]);
  try {
    rmSync(join(dir, 'm.safetensors'));
    const killed = await run('git', ['checkout', '--', 'm.safetensors'], dir, { env: kill('smudge-write', 1) });
    assert.is.not(killed.code, 0, 'git checkout reports the dead filter');
    const again = await run('git', ['checkout', '--', 'm.safetensors'], dir);
    assert.is(again.code, 0, again.stderr);
    assert.is(sha256(readFileSync(join(dir, 'm.safetensors'))), sha256(readFileSync(V1)));
    assert.is((await git(dir, 'status', '--porcelain')).trim(), '');
    assertObjectsSound(join(dir, '.git/lfs'));
    await assertGcLeavesNoTemps(dir);
  } finally {
    cleanup(dir);
  }
});

t('SIGKILL of git theta checkout: the file is the old one or none (never half), the rerun is exact', async () => {
  const dir = await committed([['m.safetensors', V1]]);
  try {
    copyFileSync(V2, join(dir, 'm.safetensors'));
    await thetaOk(dir, 'add', 'm.safetensors');
    await git(dir, 'commit', '-q', '-m', 'v2');
    const killed = await theta(dir, ['checkout', 'HEAD~1', '--', 'm.safetensors'], { env: kill('file-write', 1) });
    assert.is.not(killed.code, 0);
    assert.is(sha256(readFileSync(join(dir, 'm.safetensors'))), sha256(readFileSync(V2)), 'the work-tree file is untouched (writes go to a temp file, then rename)');
    assert.ok(readdirSync(dir).some((n) => /^\.m\.safetensors\.[0-9a-f]{12}\.tmp$/.test(n)), 'the kill left the temp file');
    await thetaOk(dir, 'checkout', 'HEAD~1', '--', 'm.safetensors');
    assert.is(sha256(readFileSync(join(dir, 'm.safetensors'))), sha256(readFileSync(V1)));
    assertObjectsSound(join(dir, '.git/lfs'));
    await assertGcLeavesNoTemps(dir);
  } finally {
    cleanup(dir);
  }
});

t('SIGKILL of the pre-push hook: the push is refused, the rerun uploads everything, a clone checks out exactly', async () => {
  const root = tempDir();
  const dir = await committed([['m.safetensors', V1]]);
  let server: ThetaServer | null = null;
  try {
    const bare = join(root, 'r.git');
    await git(root, 'init', '-q', '--bare', '-b', 'main', bare);
    server = await startServer({ repo: bare, allowPush: true, webDir: null });
    await git(dir, 'remote', 'add', 'origin', server.repoUrl);
    const killed = await run('git', ['push', '-q', 'origin', 'main'], dir, { env: kill('upload', 1) });
    assert.is.not(killed.code, 0, 'a killed hook stops the push');
    assert.is((await run('git', ['rev-parse', '--verify', '-q', 'refs/heads/main'], bare)).code, 1, 'no ref was pushed');
    const again = await run('git', ['push', '-q', 'origin', 'main'], dir);
    assert.is(again.code, 0, again.stderr);
    assertObjectsSound(join(bare, 'lfs'));
    const clone = join(root, 'clone');
    assert.is((await run('git', ['clone', '-q', '--no-checkout', server.repoUrl, clone], root)).code, 0);
    await thetaOk(clone, 'install', '--local');
    const co = await run('git', ['checkout', '-q', 'main'], clone);
    assert.is(co.code, 0, co.stderr);
    assert.is(sha256(readFileSync(join(clone, 'm.safetensors'))), sha256(readFileSync(V1)));
    await assertGcLeavesNoTemps(dir);
  } finally {
    await server?.close();
    cleanup(dir);
    cleanup(root);
  }
});

t('a full disk: git add fails with one line, git keeps the previous state, and after space is freed the rerun completes', async () => {
  const mnt = tempDir('theta-tmpfs-');
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]);
  if (mounted.status !== 0) {
    // eslint-disable-next-line no-console
    console.log(`\n  skipped: the full-disk test needs to mount a small tmpfs (as root with CAP_SYS_ADMIN): ${String(mounted.stderr).trim() || `mount exited ${mounted.status}`}`);
    rmSync(mnt, { recursive: true, force: true });
    return;
  }
  try {
    const dir = join(mnt, 'repo');
    mkdirSync(dir);
    await git(dir, 'init', '-q', '-b', 'main');
    await thetaOk(dir, 'install', '--local');
    await thetaOk(dir, 'track', '*.safetensors');
    copyFileSync(V1, join(dir, 'm.safetensors'));
    await git(dir, 'add', '.gitattributes', 'm.safetensors');
    await git(dir, 'commit', '-q', '-m', 'v1');
    const before = await git(dir, 'rev-parse', ':m.safetensors');
    // the changed model in place, then the disk filled to the last block
    copyFileSync(V2, join(dir, 'm.safetensors'));
    const filler = join(mnt, 'filler');
    spawnSync('sh', ['-c', `dd if=/dev/zero of=${filler} bs=4k 2>/dev/null; true`]);
    const full = await theta(dir, ['add', 'm.safetensors'], { env: collectBeforeExit() });
    assert.is(full.code, 1, 'git theta add fails on a full disk');
    const lines = full.stderr.trim().split('\n').filter((l) => l.startsWith('git-theta:'));
    assert.is(lines.length, 1, full.stderr);
    assert.not.match(full.stderr, /garbage collection/, 'the model being read is closed after the failure, not left to the collector');
    assert.not.match(full.stderr, /internal error/);
    assert.is(await git(dir, 'rev-parse', ':m.safetensors'), before, 'the index keeps the previous version');
    rmSync(filler);
    await thetaOk(dir, 'add', 'm.safetensors');
    await git(dir, 'commit', '-q', '-m', 'v2');
    assertObjectsSound(join(dir, '.git/lfs'));
    rmSync(join(dir, 'm.safetensors'));
    await git(dir, 'checkout', '--', 'm.safetensors');
    assert.is(sha256(readFileSync(join(dir, 'm.safetensors'))), sha256(readFileSync(V2)));
    await assertGcLeavesNoTemps(dir);
  } finally {
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});

t('two git adds at once in two worktrees share one object store safely', async () => {
  const dir = await committed([['m.safetensors', V1]]);
  const other = `${dir}-wt2`;
  try {
    await git(dir, 'worktree', 'add', '-q', '-b', 'side', other);
    copyFileSync(V2, join(dir, 'm.safetensors'));
    copyFileSync(V2, join(other, 'm.safetensors')); // the same new tensors, written by both at once
    copyFileSync(V1, join(other, 'n.safetensors'));
    const [a, b] = await Promise.all([
      run('git', ['add', 'm.safetensors'], dir),
      run('git', ['add', 'm.safetensors', 'n.safetensors'], other),
    ]);
    assert.is(a.code, 0, a.stderr);
    assert.is(b.code, 0, b.stderr);
    await git(dir, 'commit', '-q', '-m', 'main v2');
    await git(other, 'commit', '-q', '-m', 'side v2');
    assertObjectsSound(join(dir, '.git/lfs'));
    for (const [w, name, src] of [[dir, 'm.safetensors', V2], [other, 'm.safetensors', V2], [other, 'n.safetensors', V1]] as const) {
      rmSync(join(w, name));
      await git(w, 'checkout', '--', name);
      assert.is(sha256(readFileSync(join(w, name))), sha256(readFileSync(src)), `${basename(w)}/${name}`);
    }
    await assertGcLeavesNoTemps(dir);
  } finally {
    cleanup(other);
    cleanup(dir);
  }
});

t.run();

