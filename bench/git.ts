/**
 * git-theta against git-lfs on the same files, in one run (issue 3's benchmark):
 * a GPT-like safetensors v1 (0.3 GB; `--gb 1` for 1 GB) and a v2 with 5% of its tensors changed, then
 * the many-tensor set (bench/many-tensors.ts: 41 safetensors models, 4,938 tensors of 4 B to 4 MB).
 * Prints the times of `git add`, checkout, `git switch` (v2 to a branch at v1) and clone, bytes stored for v2, and peak memory (max RSS of git
 * and its filter, from /usr/bin/time). Timings on a shared machine are noisy: read the ratios.
 *
 * Clone: each tool's repository (at the v1 branch) is served over HTTP by `git theta serve` on
 * loopback (git smart HTTP and the LFS batch API, the same server for both tools), started before
 * the clock runs; timed are git-lfs's `git clone`, a plain `git clone` through the theta filter,
 * and `git theta clone`: each downloads the model's objects (verifying their SHA-256) and writes
 * the checkpoint.
 *
 * Each round's repositories are deleted when the round is done. On this machine that has two side
 * effects, measured (README, Benchmarks): the root file system is ext4 without a journal, whose
 * inode allocator then skips inodes freed in the last minute or more (`perf`: 37 % of a many-tensor
 * add's CPU in find_inode_bit → recently_deleted), which charges the tool that creates more files;
 * and keeping the files instead slows every write into the page cache once a few GB of them are
 * cached (`dd` after `sync`: ~5 GB/s, then ~0.45 GB/s; `perf`: half of `git theta add`'s CPU in
 * the kernel's copy into the page cache), which charges the tool that writes more.
 * `--keep-rounds` keeps every round until the end (and runs `sync`, untimed, before each command,
 * so nothing written earlier is written back during it).
 *
 *   node build/js/bench/git.js [--gb 1] [--runs 3] [--keep] [--no-many] [--keep-rounds]
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, readdirSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gptLayout, writeModel } from './gpt-layout.ts';
import { writeManyTensorModels } from './many-tensors.ts';
import { serve } from './serve.ts';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const BIN = join(root, 'bin/git-theta.js');
const gb = (process.argv.includes('--gb') && Number(process.argv[process.argv.indexOf('--gb') + 1])) || 0.3;
const many = !process.argv.includes('--no-many');
const runs = (process.argv.includes('--runs') && Number(process.argv[process.argv.indexOf('--runs') + 1])) || 3;
const keep = process.argv.includes('--keep');
const keepRounds = process.argv.includes('--keep-rounds');
/** A round's directory, done with: deleted now, or with --keep-rounds (or --keep) left for the end. */
const done = (dir: string) => { if (!keepRounds && !keep) rmSync(dir, { recursive: true, force: true }); };

const layout = (totalBytes: number) => gptLayout(totalBytes, { d: 1024, vocab: 16384, positions: 2048 });


function sh(cwd: string, cmd: string[], env: NodeJS.ProcessEnv = {}): { seconds: number; maxRssMB: number } {
  // --keep-rounds: every command starts with no dirty data in the page cache (untimed): what the
  // rounds before it wrote would otherwise be written back during it
  if (keepRounds) spawnSync('sync');
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...cmd], { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  return { seconds, maxRssMB: Number(lines[lines.length - 1]) / 1024 };
}

function dirBytes(d: string): number {
  if (!existsSync(d)) return 0;
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) n += e.isDirectory() ? dirBytes(join(d, e.name)) : statSync(join(d, e.name)).size;
  return n;
}

const GIT_ENV = { GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x' };

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'theta-bench-git-'));
  const tensors = layout(gb * 1e9);
  // 5% of the tensors, spread evenly over the weight matrices (a fine-tune of a few layers)
  const matrices = tensors.filter((t) => t.shape.length === 2);
  const nChanged = Math.max(1, Math.round(tensors.length * 0.05));
  const changed = new Set(Array.from({ length: nChanged }, (_, i) => matrices[Math.floor(((i + 0.5) * matrices.length) / nChanged)].name));
  const changedBytes = tensors.filter((t) => changed.has(t.name)).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 4), 0);
  const v1 = join(work, 'v1.safetensors');
  const v2 = join(work, 'v2.safetensors');
  await writeModel(v1, tensors, new Set(), 1);
  await writeModel(v2, tensors, changed, 2);
  const size = statSync(v1).size;
  console.log(`model: ${tensors.length} tensors, ${(size / 1e9).toFixed(2)} GB; v2 changes ${changed.size} tensors (${(changedBytes / 1e6).toFixed(1)} MB)`);

  type Sample = { seconds: number; maxRssMB: number };
  const samples: Record<string, Record<string, (Sample | number)[]>> = {};
  const TOOLS = ['lfs', 'theta', 'direct', 'floor'] as const;
  // `runs` rounds, the tools' order rotated each round (a shared machine's load drifts); medians reported
  for (let round = 0; round < runs; round++) for (const tool of [...TOOLS.slice(round % 4), ...TOOLS.slice(0, round % 4)]) {
    const dir = join(work, `${tool}-${round}`);
    spawnSync('mkdir', ['-p', dir]);
    const git = (...a: string[]) => sh(dir, ['git', ...a], GIT_ENV);
    git('init', '-q');
    if (tool === 'lfs') {
      git('lfs', 'install', '--local');
      git('lfs', 'track', '*.safetensors');
    } else if (tool === 'floor') {
      // a do-nothing filter that streams the same bytes: what any filter's checkout costs (bench/null-filter.ts)
      git('config', 'filter.null.process', `${process.execPath} ${join(root, 'build/js/bench/null-filter.js')}`);
      git('config', 'filter.null.required', 'true');
      writeFileSync(join(dir, '.gitattributes'), '*.safetensors filter=null\n');
    } else {
      // 'theta': plain git add/checkout through the filter; 'direct': git theta add/checkout
      sh(dir, [process.execPath, BIN, 'install', '--local']);
      sh(dir, [process.execPath, BIN, 'track', '*.safetensors']);
    }
    git('add', '.gitattributes');
    git('commit', '-q', '-m', 'attributes');
    const r: Record<string, { seconds: number; maxRssMB: number } | number> = {};
    spawnSync('cp', [v1, join(dir, 'model.safetensors')]);
    const add = () => (tool === 'direct' ? sh(dir, [process.execPath, BIN, 'add', 'model.safetensors'], GIT_ENV) : git('add', 'model.safetensors'));
    r.addV1 = add();
    git('commit', '-q', '-m', 'v1');
    const afterV1 = dirBytes(join(dir, '.git', 'lfs', 'objects'));
    spawnSync('cp', [v2, join(dir, 'model.safetensors')]);
    r.addV2 = add();
    git('commit', '-q', '-m', 'v2');
    r.storedV2 = dirBytes(join(dir, '.git', 'lfs', 'objects')) - afterV1;
    rmSync(join(dir, 'model.safetensors'));
    r.checkoutV1 = tool === 'direct'
      ? sh(dir, [process.execPath, BIN, 'checkout', 'HEAD~1', '--', 'model.safetensors'])
      : git('checkout', 'HEAD~1', '--', 'model.safetensors');
    // switching branches: back to v2 (untimed), then to a branch at v1 (git switch, or git theta switch)
    git('reset', '-q', '--hard');
    git('branch', 'v1', 'HEAD~1');
    // the work tree as a user finds it: written more than a second before the index (git compares a
    // file written in the same second as its index by content, "racily clean", which would time a
    // re-clean of the model rather than the switch); `git status` records it (untimed)
    spawnSync('sleep', ['1.1']);
    git('status', '--porcelain');
    r.switchV1 = tool === 'direct' ? sh(dir, [process.execPath, BIN, 'switch', 'v1'], GIT_ENV) : git('switch', '-q', 'v1');
    if (tool !== 'floor') {
      // clone over HTTP from `git theta serve` (started before the clock runs; see the top of this file)
      const server = await serve(dir);
      const dest = join(work, `clone-${tool}-${round}`);
      try {
        r.clone = tool === 'lfs'
          ? sh(work, ['git', '-c', 'filter.lfs.process=git-lfs filter-process', '-c', 'filter.lfs.required=true', 'clone', '-q', server.url, dest], GIT_ENV)
          : tool === 'theta'
            ? sh(work, ['git', 'clone', '-q', '-c', `filter.theta.process=${process.execPath} ${BIN} filter-process`, '-c', 'filter.theta.required=true', server.url, dest], GIT_ENV)
            : sh(work, [process.execPath, BIN, 'clone', server.url, dest], GIT_ENV);
      } finally {
        await server.stop();
      }
      if (statSync(join(dest, 'model.safetensors')).size !== size) throw new Error(`${tool}: the clone's model.safetensors is not the v1 checkpoint`);
      done(dest);
    }
    for (const [k, v] of Object.entries(r)) ((samples[tool] ??= {})[k] ??= []).push(v);
    done(dir);
  }
  const median = (xs: number[]) => { const a = [...xs].sort((x, y) => x - y); return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2; };
  const results: Record<string, Record<string, Sample | number>> = {};
  for (const [tool, m] of Object.entries(samples)) {
    results[tool] = {};
    for (const [k, vs] of Object.entries(m)) {
      results[tool][k] = typeof vs[0] === 'number'
        ? median(vs as number[])
        : { seconds: median((vs as Sample[]).map((v) => v.seconds)), maxRssMB: Math.max(...(vs as Sample[]).map((v) => v.maxRssMB)) };
    }
  }
  console.log(`medians of ${runs} round(s)${runs > 1 ? `; checkout v1 ranges: ${TOOLS.map((t) => `${t} ${Math.min(...(samples[t].checkoutV1 as Sample[]).map((v) => v.seconds)).toFixed(2)}-${Math.max(...(samples[t].checkoutV1 as Sample[]).map((v) => v.seconds)).toFixed(2)}`).join(', ')}` : ''}`);
  const range = (tool: string, k: string) => { const xs = (samples[tool][k] as Sample[]).map((v) => v.seconds); return `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`; };
  if (runs > 1) for (const k of ['switchV1', 'clone']) console.log(`${k} ranges: ${(['lfs', 'theta', 'direct'] as const).map((t) => `${t} ${range(t, k)}`).join(', ')}`);
  const L = results.lfs, T = results.theta, D = results.direct, F = results.floor;
  const secs = (x: unknown) => (x as { seconds: number }).seconds;
  const mb = (x: unknown) => (x as { maxRssMB: number }).maxRssMB;
  const row = (label: string, k: string, goal: string) =>
    console.log(`${label.padEnd(12)} git-lfs ${secs(L[k]).toFixed(2).padStart(6)} s | git add/checkout (filter) ${secs(T[k]).toFixed(2).padStart(6)} s = ${(secs(T[k]) / secs(L[k])).toFixed(2)}x | git theta add/checkout ${secs(D[k]).toFixed(2).padStart(6)} s = ${(secs(D[k]) / secs(L[k])).toFixed(2)}x   (goal ${goal})`);
  // issue 18's goals: add v2 <= 0.2x at 0.3 GB, <= 0.15x at 1 GB
  row('add v1', 'addV1', '<= 0.6');
  row('add v2', 'addV2', gb >= 1 ? '<= 0.15' : '<= 0.2');
  row('checkout v1', 'checkoutV1', 'filter <= 1.0, git theta checkout <= 0.4');
  row('switch v2→v1', 'switchV1', 'filter <= 1.0, git theta switch <= 0.4');
  row('clone (HTTP)', 'clone', 'filter <= 1.0, git theta clone <= 0.4');
  console.log(`floor: a do-nothing filter streaming the same bytes: git checkout ${secs(F.checkoutV1).toFixed(2)} s (git-lfs = ${(secs(L.checkoutV1) / secs(F.checkoutV1)).toFixed(2)}x it, the theta filter = ${(secs(T.checkoutV1) / secs(F.checkoutV1)).toFixed(2)}x it), git add ${secs(F.addV1).toFixed(2)} s`);
  console.log(`stored for v2: git-lfs ${((L.storedV2 as number) / 1e6).toFixed(1)} MB, git-theta ${((T.storedV2 as number) / 1e6).toFixed(1)} MB = ${((T.storedV2 as number) / changedBytes).toFixed(3)}x the changed tensors' bytes (goal <= 1.1)`);
  console.log(`peak RSS: git-lfs add ${Math.max(mb(L.addV1), mb(L.addV2)).toFixed(0)} MB, checkout ${mb(L.checkoutV1).toFixed(0)} MB; git add with the theta filter ${Math.max(mb(T.addV1), mb(T.addV2)).toFixed(0)} MB, checkout ${mb(T.checkoutV1).toFixed(0)} MB (git holds the file); git theta add ${Math.max(mb(D.addV1), mb(D.addV2)).toFixed(0)} MB, checkout ${mb(D.checkoutV1).toFixed(0)} MB`);
  const largest = Math.max(...tensors.map((t) => t.shape.reduce((x, y) => x * y, 4)));
  console.log(`bound for git-theta's own memory: 3x largest tensor (${(largest / 1e6).toFixed(0)} MB) + 200 MB = ${((3 * largest) / 1e6 + 200).toFixed(0)} MB`);
  if (many) await manyTensorRows(work, { lfs: secs(L.addV1), theta: secs(T.addV1), direct: secs(D.addV1) }, size);
  if (!keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}

/**
 * The many-tensor set: `git add` / `git checkout` of 41 models side by side with git-lfs, and the
 * fixed cost per tensor: this add's time less what the big model's add took per byte, per tensor.
 */
async function manyTensorRows(work: string, bigAdd: Record<'lfs' | 'theta' | 'direct', number>, bigBytes: number) {
  const src = join(work, 'many-src');
  const set = await writeManyTensorModels(src);
  const names = set.files.map((f) => `models/${f.slice(src.length + 1)}`);
  const bytes = set.files.reduce((a, f) => a + statSync(f).size, 0);
  console.log(`many tensors: ${set.files.length} safetensors models, ${set.tensors} tensors, ${(bytes / 1e6).toFixed(0)} MB`);
  const all: Record<string, { add: number[]; checkout: number[] }> = {};
  const TOOLS = ['lfs', 'theta', 'direct'] as const;
  for (let round = 0; round < runs; round++) for (const tool of [...TOOLS.slice(round % 3), ...TOOLS.slice(0, round % 3)]) {
    const dir = join(work, `many-${tool}-${round}`);
    spawnSync('mkdir', ['-p', dir]);
    const git = (...a: string[]) => sh(dir, ['git', ...a], GIT_ENV);
    git('init', '-q');
    if (tool === 'lfs') {
      git('lfs', 'install', '--local');
      git('lfs', 'track', '*.safetensors');
    } else {
      sh(dir, [process.execPath, BIN, 'install', '--local']);
      sh(dir, [process.execPath, BIN, 'track', '*.safetensors']);
    }
    git('add', '.gitattributes');
    git('commit', '-q', '-m', 'attributes');
    spawnSync('cp', ['-r', src, join(dir, 'models')]);
    const add = tool === 'direct' ? sh(dir, [process.execPath, BIN, 'add', ...names], GIT_ENV) : git('add', 'models');
    git('commit', '-q', '-m', 'models');
    rmSync(join(dir, 'models'), { recursive: true });
    const co = tool === 'direct' ? sh(dir, [process.execPath, BIN, 'checkout', '--', 'models']) : git('checkout', '--', 'models');
    all[tool] ??= { add: [], checkout: [] };
    all[tool].add.push(add.seconds);
    all[tool].checkout.push(co.seconds);
    done(dir);
  }
  const median = (xs: number[]) => { const a = [...xs].sort((x, y) => x - y); return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2; };
  const r: Record<string, { add: number; checkout: number }> = {};
  for (const t of TOOLS) r[t] = { add: median(all[t].add), checkout: median(all[t].checkout) };
  const L = r.lfs, T = r.theta, D = r.direct;
  console.log(`many add      git-lfs ${L.add.toFixed(2).padStart(6)} s | git add (filter) ${T.add.toFixed(2).padStart(6)} s = ${(T.add / L.add).toFixed(2)}x | git theta add ${D.add.toFixed(2).padStart(6)} s = ${(D.add / L.add).toFixed(2)}x   (goal <= 1.5)`);
  console.log(`many checkout git-lfs ${L.checkout.toFixed(2).padStart(6)} s | git checkout (filter) ${T.checkout.toFixed(2).padStart(6)} s = ${(T.checkout / L.checkout).toFixed(2)}x | git theta checkout ${D.checkout.toFixed(2).padStart(6)} s = ${(D.checkout / L.checkout).toFixed(2)}x   (goal <= 1.0)`);
  // per tensor: the time beyond what the big model's add costs per byte
  const perTensor = (many: number, big: number) => ((many - (bytes / bigBytes) * big) / set.tensors) * 1e3;
  console.log(`fixed cost per tensor (add, beyond the big model's per-byte time): git add (filter) ${perTensor(T.add, bigAdd.theta).toFixed(2)} ms, git theta add ${perTensor(D.add, bigAdd.direct).toFixed(2)} ms, git-lfs per file ${(((L.add - (bytes / bigBytes) * bigAdd.lfs) / set.files.length) * 1e3).toFixed(1)} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
