// Progress lines on stderr: shown under a pseudo-terminal (`script` from bsdutils), never in a pipe.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, cleanup, fixturesDir, git, requireTool, run, theta, thetaRepo } from './helpers.ts';

const t = suite('progress');
const LOW = { THETA_PROGRESS_MIN_BYTES: '0' }; // the fixtures are small; show progress at any size

/** Run a shell command under a pseudo-terminal; resolves to everything the terminal showed. */
async function inTerminal(cmd: string, cwd: string): Promise<string> {
  requireTool('script', 'bsdutils');
  const r = await run('script', ['-qec', cmd, '/dev/null'], cwd, { env: LOW });
  assert.is(r.code, 0, r.stdout + r.stderr);
  return r.stdout;
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

t('git add and git checkout through the filter show "Filtering content" on a terminal, nothing in a pipe', async () => {
  const dir = await thetaRepo();
  try {
    copyFileSync(join(fixturesDir, 'history-v0.safetensors'), join(dir, 'm.safetensors'));
    const piped = await run('git', ['add', 'm.safetensors'], dir, { env: LOW });
    assert.is(piped.code, 0, piped.stderr);
    assert.not.match(piped.stderr, /Filtering content/, 'no progress in a pipe');
    await git(dir, 'commit', '-qm', 'v0');
    copyFileSync(join(fixturesDir, 'history-v1.safetensors'), join(dir, 'm.safetensors'));
    assert.match(await inTerminal('git add m.safetensors', dir), /Filtering content: \d+ files, [\d.]+ MB, [\d.]+ MB\/s/);
    await git(dir, 'commit', '-qm', 'v1');
    const shown = await inTerminal('git checkout -q HEAD~1', dir);
    assert.match(shown, /Filtering content: \d+ files/, JSON.stringify(shown)); // 2 when git also re-cleans a racily clean file
    const back = await run('git', ['checkout', '-q', 'main'], dir, { env: LOW });
    assert.not.match(back.stderr, /Filtering content/);
  } finally {
    cleanup(dir);
  }
});

t('git theta add and git theta checkout show progress on a terminal, nothing in a pipe', async () => {
  const dir = await thetaRepo();
  try {
    copyFileSync(join(fixturesDir, 'history-v0.safetensors'), join(dir, 'm.safetensors'));
    const cli = `${sh(process.execPath)} ${sh(BIN)}`;
    assert.match(await inTerminal(`${cli} add m.safetensors`, dir), /git-theta: add: 1\/1 files, [\d.]+ MB/);
    await git(dir, 'commit', '-qm', 'v0');
    copyFileSync(join(fixturesDir, 'history-v1.safetensors'), join(dir, 'm.safetensors'));
    const piped = await theta(dir, ['add', 'm.safetensors'], { env: LOW });
    assert.is(piped.code, 0, piped.stderr);
    assert.not.match(piped.stderr, /git-theta: add:/);
    await git(dir, 'commit', '-qm', 'v1');
    assert.match(await inTerminal(`${cli} checkout HEAD~1 -- m.safetensors`, dir), /git-theta: checkout: 1\/1 files, [\d.]+ MB/);
    const r = await theta(dir, ['checkout', 'HEAD', '--', 'm.safetensors'], { env: LOW });
    assert.is(r.code, 0, r.stderr);
    assert.not.match(r.stderr, /git-theta: checkout:/);
  } finally {
    cleanup(dir);
  }
});

t('inspect, convert and merge-models show tensors and bytes on a terminal, nothing in a pipe', async () => {
  const dir = await thetaRepo([]);
  try {
    const cli = `${sh(process.execPath)} ${sh(BIN)}`;
    const a = sh(join(fixturesDir, 'history-v0.safetensors'));
    const b = sh(join(fixturesDir, 'history-v1.safetensors'));
    assert.match(await inTerminal(`${cli} inspect ${a}`, dir), /git-theta: inspect: 6 tensors, [\d.]+ MB/);
    assert.match(await inTerminal(`${cli} convert ${a} out.npz`, dir), /git-theta: convert: 6 tensors/);
    assert.match(await inTerminal(`${cli} merge-models ${a} ${b} -o m.safetensors -s average`, dir), /git-theta: merge-models: 6 tensors/);
    const piped = await theta(dir, ['inspect', join(fixturesDir, 'history-v0.safetensors')], { env: LOW });
    assert.is(piped.code, 0, piped.stderr);
    assert.not.match(piped.stdout + piped.stderr, /git-theta: inspect:/);
  } finally {
    cleanup(dir);
  }
});

t.run();
