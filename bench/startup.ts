/**
 * Process start-up (issue 18's "within 60 ms of node's own start"): each command git runs per file
 * or per push, timed from spawn to exit, alternating with `node -e 0` on the same machine, medians.
 *
 *   version        git-theta --version
 *   textconv       git theta textconv of a small safetensors file (git diff, per file)
 *   textconv-meta  git theta textconv of the file's committed metadata blob
 *   merge-driver   the merge driver on three copies of that metadata (git merge, per file)
 *   pre-push       the pre-push hook with nothing to push (git push)
 *   filter         `git-theta filter-process`: spawn to the first byte of a smudged file, speaking
 *                  git's filter protocol itself (what every plain `git checkout` waits for)
 *
 *   node build/js/bench/startup.js [--runs 15] [--only version,textconv] [--base <other>/bin/git-theta.js]
 *
 * Runs alternate: each round runs `node -e 0` and then every command, the commands' order rotated
 * each round, so a shared machine's drifting load falls on all of them alike. Prints each median,
 * its difference from node's median, and the load average. `--base` also runs each command with
 * another build's bin (e.g. a checkout of an older commit), alternating, for a before/after.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeDataPackets, encodeTextList, FLUSH_PKT } from '../src/core/pktline.ts';
import { writeModel } from './gpt-layout.ts';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const BIN = join(root, 'bin/git-theta.js');
const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const runs = Number(arg('--runs')) || 15;
const only = arg('--only')?.split(',');
const BASE = arg('--base');
const GIT_ENV = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x' };

function run(cwd: string, cmd: string[], input?: Uint8Array): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd, env: GIT_ENV, input, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

/** Spawn the filter process, hand it one smudge request, and time the first byte of the file's content. */
function filterFirstByte(cwd: string, pathname: string, blob: Uint8Array, bin: string): Promise<number> {
  return new Promise((resolveMs, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [bin, 'filter-process'], { cwd, env: GIT_ENV, stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.write(encodeTextList(['git-filter-client', 'version=2']));
    child.stdin.write(encodeTextList(['capability=clean', 'capability=smudge']));
    child.stdin.write(encodeTextList(['command=smudge', `pathname=${pathname}`]));
    for (const p of encodeDataPackets(blob)) child.stdin.write(p);
    child.stdin.write(FLUSH_PKT);
    // replies: version list, capability list, status list, then content packets: the first content
    // packet is the first data packet after three flushes
    let flushes = 0;
    let buf = new Uint8Array(0);
    let done = false;
    child.stdout.on('data', (chunk: Uint8Array) => {
      if (done) return;
      const all = new Uint8Array(buf.length + chunk.length);
      all.set(buf);
      all.set(chunk, buf.length);
      let at = 0;
      while (all.length - at >= 4) {
        const len = parseInt(new TextDecoder().decode(all.subarray(at, at + 4)), 16);
        if (len === 0) { flushes++; at += 4; continue; }
        if (flushes >= 3) {
          done = true;
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          child.stdin.end();
          child.stdout.resume();
          child.on('close', () => resolveMs(ms));
          return;
        }
        if (all.length - at < len) break;
        at += len;
      }
      buf = all.subarray(at);
    });
    child.on('error', reject);
    child.on('close', (code) => { if (!done) reject(new Error(`filter-process ended (${code}) before any content`)); });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'theta-bench-startup-'));
  const repo = join(work, 'repo');
  spawnSync('mkdir', ['-p', repo]);
  const git = (...a: string[]) => spawnSync('git', a, { cwd: repo, env: GIT_ENV, encoding: 'buffer' });
  git('init', '-q');
  run(repo, [process.execPath, BIN, 'install', '--local']);
  run(repo, [process.execPath, BIN, 'track', '*.safetensors']);
  // a small model: 4 tensors, 64 KB
  const model = join(repo, 'model.safetensors');
  await writeModel(model, [{ name: 'a.weight', shape: [64, 64] }, { name: 'a.bias', shape: [64] }, { name: 'b.weight', shape: [64, 128] }, { name: 'b.bias', shape: [128] }], new Set(), 1);
  git('add', '.');
  git('commit', '-q', '-m', 'v1');
  const meta = git('cat-file', 'blob', 'HEAD:model.safetensors').stdout as Uint8Array;
  const metaFile = join(work, 'meta');
  writeFileSync(metaFile, meta);
  const mergeFiles = ['base', 'ours', 'theirs'].map((s) => join(work, s));
  const commandsOf = (bin: string): Record<string, () => Promise<number> | number> => ({
    version: () => run(repo, [process.execPath, bin, '--version']),
    textconv: () => run(repo, [process.execPath, bin, 'textconv', model]),
    'textconv-meta': () => run(repo, [process.execPath, bin, 'textconv', metaFile]),
    'merge-driver': () => {
      for (const f of mergeFiles) copyFileSync(metaFile, f);
      return run(repo, [process.execPath, bin, 'merge-driver', ...mergeFiles, 'model.safetensors']);
    },
    'pre-push': () => run(repo, [process.execPath, bin, 'pre-push', 'origin', join(work, 'nowhere')], new Uint8Array(0)),
    filter: () => filterFirstByte(repo, 'model.safetensors', meta, bin),
  });
  const node = () => run(repo, [process.execPath, '-e', '0']);
  const commands = commandsOf(BIN);
  const base = BASE ? commandsOf(BASE) : undefined;
  const names = Object.keys(commands).filter((n) => !only || only.includes(n));
  const times: Record<string, number[]> = { node: [] };
  for (const n of names) { times[n] = []; times[`base ${n}`] = []; }
  const load0 = loadavg();
  for (let round = 0; round < runs; round++) {
    const order = [...names.slice(round % names.length), ...names.slice(0, round % names.length)];
    for (const n of order) {
      times.node.push(await node());
      times[n].push(await commands[n]());
      if (base) times[`base ${n}`].push(await base[n]());
    }
  }
  const load1 = loadavg();
  const nodeMs = median(times.node);
  console.log(`start-up, medians of ${runs} runs alternating with node -e 0 (node ${process.version}; load average ${load0[0].toFixed(2)} → ${load1[0].toFixed(2)})`);
  console.log(`  ${'node -e 0'.padEnd(14)} ${nodeMs.toFixed(0).padStart(5)} ms`);
  const row = (label: string, ms: number) => `${label.padEnd(14)} ${ms.toFixed(0).padStart(5)} ms  (+${(ms - nodeMs).toFixed(0)} ms over node)`;
  for (const n of names) {
    const m = median(times[n]);
    console.log(`  ${row(n, m)}${base ? `   base: ${row('', median(times[`base ${n}`])).trim()}` : ''}`);
  }
  rmSync(work, { recursive: true, force: true });
}

await main();
