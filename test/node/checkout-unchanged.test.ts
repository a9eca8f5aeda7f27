// `git theta checkout` writes only the files whose content differs from the target: the others
// keep their inode and mtime, and `git status` is clean afterwards.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, fixturesDir, git, sha256, theta, thetaOk, thetaRepo } from './helpers.ts';

const t = suite('checkout-unchanged');
const fx = (n: string) => join(fixturesDir, n);

t('git theta checkout <rev> rewrites only the changed checkpoints; git status is clean', async () => {
  const dir = await thetaRepo();
  try {
    copyFileSync(fx('history-v0.safetensors'), join(dir, 'a.safetensors'));
    copyFileSync(fx('history-v1.safetensors'), join(dir, 'b.safetensors'));
    copyFileSync(fx('history-v1.safetensors'), join(dir, 'c.safetensors'));
    await git(dir, 'add', '.');
    await git(dir, 'commit', '-qm', 'one');
    copyFileSync(fx('history-v2.safetensors'), join(dir, 'b.safetensors'));
    await git(dir, 'add', '.');
    await git(dir, 'commit', '-qm', 'two');
    const before = { a: statSync(join(dir, 'a.safetensors'), { bigint: true }), c: statSync(join(dir, 'c.safetensors'), { bigint: true }) };
    const r = await theta(dir, ['checkout', 'HEAD~1', '--', '.']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote 1 checkpoint\(s\): b\.safetensors/);
    assert.is(sha256(readFileSync(join(dir, 'b.safetensors'))), sha256(readFileSync(fx('history-v1.safetensors'))));
    for (const n of ['a', 'c'] as const) {
      const after = statSync(join(dir, `${n}.safetensors`), { bigint: true });
      assert.is(after.ino, before[n].ino, `${n} not rewritten (inode)`);
      assert.is(after.mtimeNs, before[n].mtimeNs, `${n} not rewritten (mtime)`);
    }
    assert.is(await git(dir, 'status', '--porcelain'), 'M  b.safetensors\n', 'only b staged, working tree clean');
    // back to HEAD from the index: b is written again, a and c still untouched
    assert.is((await theta(dir, ['checkout', 'HEAD', '--', '.'])).code, 0);
    assert.is(sha256(readFileSync(join(dir, 'b.safetensors'))), sha256(readFileSync(fx('history-v2.safetensors'))));
    assert.is(statSync(join(dir, 'a.safetensors'), { bigint: true }).mtimeNs, before.a.mtimeNs);
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t('a file edited in the work tree (same index blob) is rewritten', async () => {
  const dir = await thetaRepo();
  try {
    copyFileSync(fx('history-v0.safetensors'), join(dir, 'a.safetensors'));
    await git(dir, 'add', '.');
    await git(dir, 'commit', '-qm', 'one');
    copyFileSync(fx('history-v1.safetensors'), join(dir, 'a.safetensors'));
    const out = await thetaOk(dir, 'checkout', '--', 'a.safetensors');
    void out;
    assert.is(sha256(readFileSync(join(dir, 'a.safetensors'))), sha256(readFileSync(fx('history-v0.safetensors'))));
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t.run();
