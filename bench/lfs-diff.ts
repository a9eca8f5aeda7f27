/**
 * A diff of two revisions of a git-lfs repository served over HTTP (issue 19's benchmark): a
 * ~1 GB GPT-like safetensors v1 and a v2 with 5% of its tensors changed, committed with git-lfs,
 * served by `git theta serve`. Two clones made with GIT_LFS_SKIP_SMUDGE=1 (no object yet):
 *   - `git theta diff --json HEAD~1 HEAD` (downloads what it reads, then diffs);
 *   - `git theta diff --json --tensor <name>... HEAD~1 HEAD` in a third clone, the changed tensors
 *     named: both objects read by HTTP Range requests (each side's header and those tensors);
 *   - `git lfs fetch origin HEAD~1 HEAD` (what `git lfs pull` of both revisions downloads; no diff).
 * Prints the bytes fetched (the server's request log for whole objects, `fetched` of diff --json
 * for ranges) and the times. A git-lfs version has no per-tensor hashes, so which tensors changed
 * is known only after reading both objects: the full diff downloads both whole; reading less
 * needs the tensors named (`--tensor`).
 *
 *   node build/js/bench/lfs-diff.js [--gb 1] [--keep]   (THETA_BENCH_ROOT: the checkout whose bin/ runs)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gptLayout, writeModel } from './gpt-layout.ts';

const root = process.env.THETA_BENCH_ROOT ?? join(fileURLToPath(import.meta.url), '../../../..');
const BIN = join(root, 'bin/git-theta.js');
const gb = Number(process.argv[process.argv.indexOf('--gb') + 1]) || 1;
const keep = process.argv.includes('--keep');
const ENV = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x', GIT_TERMINAL_PROMPT: '0' };


/** Run a command without blocking the event loop (the server's request log must keep flowing). */
function sh(cwd: string, cmd: string[], env: NodeJS.ProcessEnv = {}): Promise<{ seconds: number; stdout: string }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0], cmd.slice(1), { cwd, env: { ...ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${cmd.join(' ')} failed: ${err}`));
      else resolve({ seconds, stdout: out });
    });
  });
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'theta-bench-lfs-diff-'));
  const tensors = gptLayout(gb * 1e9, { d: 1024, vocab: 16384, positions: 2048 });
  const matrices = tensors.filter((t) => t.shape.length === 2);
  const nChanged = Math.max(1, Math.round(tensors.length * 0.05));
  const changed = new Set(Array.from({ length: nChanged }, (_, i) => matrices[Math.floor(((i + 0.5) * matrices.length) / nChanged)].name));
  const origin = join(work, 'model');
  mkdirSync(origin, { recursive: true });
  const git = (cwd: string, ...a: string[]) => sh(cwd, ['git', ...a]);
  await git(origin, 'init', '-q', '-b', 'main');
  await git(origin, 'lfs', 'install', '--local');
  await git(origin, 'lfs', 'track', '*.safetensors');
  for (const v of [1, 2]) {
    await writeModel(join(origin, 'model.safetensors'), tensors, v === 1 ? new Set() : changed, v);
    await git(origin, 'add', '.gitattributes', 'model.safetensors');
    await git(origin, 'commit', '-q', '-m', `v${v}`);
  }
  const size = statSync(join(origin, 'model.safetensors')).size;
  const sizes = new Map<string, number>();
  for (const r of ['HEAD~1', 'HEAD']) {
    const p = (await git(origin, 'cat-file', 'blob', `${r}:model.safetensors`)).stdout;
    sizes.set(/oid sha256:([0-9a-f]{64})/.exec(p)![1], Number(/size (\d+)/.exec(p)![1]));
  }
  console.log(`model: ${tensors.length} tensors, ${(size / 1e9).toFixed(2)} GB; v2 changes ${changed.size} tensors`);

  const server = spawn(process.execPath, [BIN, 'serve', origin, '--port', '0', '--verbose'], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  let pending = '';
  server.stderr!.on('data', (d) => {
    const lines = (pending + d).split('\n');
    pending = lines.pop()!;
    log.push(...lines);
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (d) => {
        out += d;
        const m = /(http:\/\/127\.0\.0\.1:\d+\/\S+\.git)/.exec(out);
        if (m) resolve(m[1]);
      });
      server.once('close', (code) => reject(new Error(`serve exited (${code}): ${out}`)));
    });
    const served = async () => {
      await new Promise((r) => setTimeout(r, 300)); // the last log lines
      let n = 0;
      for (const l of log.splice(0)) {
        const m = /^GET \/[^ ]*\/info\/lfs\/objects\/([0-9a-f]{64}) 200 /.exec(l);
        if (m) n += sizes.get(m[1]) ?? 0;
      }
      return n;
    };
    const clone = async (name: string) => {
      const d = join(work, name);
      await sh(work, ['git', 'clone', '-q', url, d], { GIT_LFS_SKIP_SMUDGE: '1' });
      await served();
      return d;
    };
    const a = await clone('theta');
    const diff = await sh(a, [process.execPath, BIN, 'diff', '--json', 'HEAD~1', 'HEAD']);
    const thetaBytes = await served();
    const again = await sh(a, [process.execPath, BIN, 'diff', '--json', 'HEAD~1', 'HEAD']); // objects now local
    const summary = JSON.parse(diff.stdout).files[0].summary;
    const r = await clone('ranged');
    const tensorArgs = [...changed].flatMap((n) => ['--tensor', n]);
    const ranged = await sh(r, [process.execPath, BIN, 'diff', '--json', ...tensorArgs, 'HEAD~1', 'HEAD']);
    const rj = JSON.parse(ranged.stdout);
    const rangedBytes: number = rj.fetched?.bytes ?? 0;
    await served();
    const changedBytes = tensors.filter((t) => changed.has(t.name)).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * 4, 0);
    const b = await clone('lfs');
    const fetch = await sh(b, ['git', 'lfs', 'fetch', 'origin', 'HEAD~1', 'HEAD']);
    const lfsBytes = await served();
    console.log(`git theta diff: ${(thetaBytes / 1e6).toFixed(1)} MB fetched, ${diff.seconds.toFixed(2)} s (download + diff; ${summary.modified} modified, ${summary.unchanged} unchanged); the same diff with the objects local: ${again.seconds.toFixed(2)} s`);
    console.log(`git theta diff --tensor (the ${changed.size} changed tensors named): ${(rangedBytes / 1e6).toFixed(1)} MB fetched by ${rj.fetched?.range_requests ?? 0} Range requests (${(rangedBytes / (2 * changedBytes)).toFixed(3)}x both sides of those tensors, ${rj.fetched?.whole_objects ?? 0} whole objects), ${ranged.seconds.toFixed(2)} s; ${rj.files[0].summary.modified} modified`);
    console.log(`git lfs fetch of both revisions: ${(lfsBytes / 1e6).toFixed(1)} MB fetched, ${fetch.seconds.toFixed(2)} s (download only)`);
    console.log(`ratio to git lfs fetch: full diff bytes ${(thetaBytes / lfsBytes).toFixed(3)}x, time ${(diff.seconds / fetch.seconds).toFixed(2)}x; --tensor diff bytes ${(rangedBytes / lfsBytes).toFixed(3)}x, time ${(ranged.seconds / fetch.seconds).toFixed(2)}x`);
  } finally {
    server.kill('SIGTERM');
    if (!keep) rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
