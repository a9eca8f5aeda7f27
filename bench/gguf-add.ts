/**
 * `git theta add` of a GGUF fine-tune: a GPT-like GGUF v1 (0.3 GB by default: weight matrices in
 * Q8_0 and F16 alternately, norms and biases F32, a 16k-token vocabulary in the header) and a v2
 * with 5% of its tensors changed. Each run is a fresh repository: v1 added and committed (untimed),
 * then v2's `git theta add` timed. Prints the medians of --runs runs (default 3), for the CLI built
 * here and, with `--before <path to another checkout's bin/git-theta.js>`, for that one too (e.g. a
 * build of main, to compare GGUF's whole-file recipe check with the segmented one).
 *
 *   node build/js/bench/gguf-add.js [--gb 0.3] [--runs 3] [--before /tmp/main/bin/git-theta.js] [--keep]
 *
 * --keep leaves the models (v1.gguf, v2.gguf) in the printed directory, to profile by hand.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeGgufHeader, GGML_TYPE_BY_NAME, GGUFValueType, type GGUFTensorSpec } from '../src/formats/gguf.ts';
import { fill, gptLayout } from './gpt-layout.ts';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const gb = Number(arg('--gb') ?? 0.3);
const runs = Number(arg('--runs') ?? 3);
const before = arg('--before');
const keep = process.argv.includes('--keep');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const GIT_ENV = { GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x' };

/** Q8_0 blocks (an f16 scale, 32 int8) with deterministic contents. */
function q8Blocks(n: number, seed: number): Uint8Array {
  const out = fill(Math.ceil((n / 32) * 34 / 4), seed).subarray(0, (n / 32) * 34);
  for (let b = 0; b < out.length; b += 34) { out[b] = 0x00; out[b + 1] = 0x20; } // scale 2^-7
  return out;
}

/** F16 values of magnitude ~0.01 (no NaN or infinity). */
function halfs(n: number, seed: number): Uint8Array {
  const h = new Uint16Array(fill(Math.ceil(n / 2), seed).buffer, 0, n);
  for (let i = 0; i < n; i++) h[i] = (h[i] & 0x83ff) | 0x2000;
  return new Uint8Array(h.buffer, 0, n * 2);
}

interface Tensor { spec: GGUFTensorSpec; data: (seed: number) => Uint8Array }

function layout(totalBytes: number): Tensor[] {
  // sized as float32; Q8_0 and F16 matrices make the file about a third of that: scale up
  let m = 0;
  return gptLayout(totalBytes * 2.9, { d: 1024, vocab: 16384, positions: 2048 }).map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const dims = shape.slice().reverse();
    if (shape.length === 1) return { spec: { name, dims, ggmlType: GGML_TYPE_BY_NAME.F32 }, data: (s: number) => fill(n, s) };
    return m++ % 2 === 0
      ? { spec: { name, dims, ggmlType: GGML_TYPE_BY_NAME.Q8_0 }, data: (s: number) => q8Blocks(n, s) }
      : { spec: { name, dims, ggmlType: GGML_TYPE_BY_NAME.F16 }, data: (s: number) => halfs(n, s) };
  });
}

function writeModel(path: string, tensors: Tensor[], changed: Set<string>, version: number): void {
  const tokens = Array.from({ length: 16384 }, (_, i) => `tok${i}`);
  const { prefix, offsets, byteLengths } = encodeGgufHeader({
    tensors: tensors.map((t) => t.spec),
    kv: [
      { key: 'general.architecture', type: GGUFValueType.STRING, value: 'gpt2' },
      { key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, value: { type: GGUFValueType.STRING, values: tokens } },
    ],
  });
  const fd = openSync(path, 'w');
  writeSync(fd, prefix);
  let at = 0;
  for (const [i, t] of tensors.entries()) {
    if (offsets[i] > at) writeSync(fd, new Uint8Array(offsets[i] - at));
    const data = t.data(i + 1 + (changed.has(t.spec.name) ? version * 100003 : 0));
    if (data.length !== byteLengths[i]) throw new Error(`${t.spec.name}: ${data.length} bytes, expected ${byteLengths[i]}`);
    writeSync(fd, data);
    at = offsets[i] + data.length;
  }
  const pad = Math.ceil(at / 32) * 32 - at;
  if (pad) writeSync(fd, new Uint8Array(pad));
  closeSync(fd);
}

function sh(cwd: string, cmd: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Seconds of v2's `git theta add` (and v1's, for reference) in a fresh repository. */
function once(work: string, bin: string, v1: string, v2: string): { v1: number; v2: number } {
  const dir = mkdtempSync(join(work, 'repo-'));
  try {
    const theta = (...a: string[]) => sh(dir, [process.execPath, bin, ...a]);
    sh(dir, ['git', 'init', '-q', '-b', 'main']);
    theta('install', '--local');
    theta('track', '*.gguf');
    copyFileSync(v1, join(dir, 'm.gguf'));
    const first = theta('add', 'm.gguf', '.gitattributes');
    sh(dir, ['git', 'commit', '-q', '-m', 'v1']);
    copyFileSync(v2, join(dir, 'm.gguf'));
    const second = theta('add', 'm.gguf');
    return { v1: first, v2: second };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function main() {
  const work = mkdtempSync(join(tmpdir(), 'theta-bench-gguf-'));
  try {
    const tensors = layout(gb * 1e9);
    const matrices = tensors.filter((t) => t.spec.dims.length === 2);
    const nChanged = Math.max(1, Math.round(tensors.length * 0.05));
    const changed = new Set(Array.from({ length: nChanged }, (_, i) => matrices[Math.floor(((i + 0.5) * matrices.length) / nChanged)].spec.name));
    const v1 = join(work, 'v1.gguf');
    const v2 = join(work, 'v2.gguf');
    writeModel(v1, tensors, new Set(), 1);
    writeModel(v2, tensors, changed, 2);
    console.log(`model: ${tensors.length} tensors (Q8_0, F16, F32), ${(statSync(v1).size / 1e9).toFixed(2)} GB; v2 changes ${changed.size} tensors`);
    const bins: [string, string][] = [['this build', join(root, 'bin/git-theta.js')]];
    if (before) bins.unshift(['--before', before]);
    const times = new Map(bins.map(([label]) => [label, { v1: [] as number[], v2: [] as number[] }]));
    // interleaved, so a busy moment of the machine does not fall on one build only
    for (let r = 0; r < runs; r++) {
      for (const [label, bin] of bins) {
        const t = once(work, bin, v1, v2);
        times.get(label)!.v1.push(t.v1);
        times.get(label)!.v2.push(t.v2);
      }
    }
    for (const [label, t] of times) {
      console.log(`${label.padEnd(12)} git theta add v1: ${median(t.v1).toFixed(2)} s   v2: ${median(t.v2).toFixed(2)} s   (v2 runs: ${t.v2.map((x) => x.toFixed(2)).join(', ')})`);
    }
  } finally {
    if (keep) console.log(`kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main();
