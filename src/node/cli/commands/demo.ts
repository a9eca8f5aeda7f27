import type { Command } from 'commander';
import { mkdtemp, readFile, rm, writeFile, readdir, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pc from 'picocolors';
import { memorySink } from '../../../core/io.ts';
import { getFormat } from '../../../formats/index.ts';
import { cloneModel, demoModel, prng, toWrite, type DemoTensor } from '../../../demo/model.ts';
import { git, gitText } from '../../git/git.ts';
import { install } from './install.ts';
import { track } from './track.ts';
import { add } from './add.ts';
import { diffPath, ThetaRepo } from '../../repo/theta-repo.ts';
import { renderDiff } from './diff.ts';
import { ThetaError } from '../../../core/errors.ts';

async function safetensorsBytes(ts: DemoTensor[], meta?: Record<string, string>): Promise<Uint8Array> {
  const sink = memorySink();
  await getFormat('safetensors').write(toWrite(ts), sink, { metadata: meta });
  return sink.bytes();
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? await dirBytes(p) : (await stat(p)).size;
  }
  return n;
}

export interface DemoResult {
  dir: string;
  versions: { label: string; commit: string; sha256: string; size: number }[];
  thetaBytes: number;
  lfsBytes: number;
  verified: boolean;
}

export async function runDemo(o: { dir?: string; log?: (s: string) => void } = {}): Promise<DemoResult> {
  const log = o.log ?? ((s: string) => process.stdout.write(s + '\n'));
  const dir = o.dir ?? (await mkdtemp(join(tmpdir(), 'git-theta-demo-')));
  const file = 'model.safetensors';
  const path = join(dir, file);
  const env = { cwd: dir };
  await git(['init', '-q', '-b', 'main'], env);
  await git(['config', 'user.name', 'git-theta demo'], env);
  await git(['config', 'user.email', 'demo@git-theta.invalid'], env);
  await install({ scope: '--local', cwd: dir });
  await track([file], dir);
  log(pc.bold(`git-theta demo in ${dir}`));

  const versions: DemoResult['versions'] = [];
  const commit = async (label: string, bytes: Uint8Array, addOpts: { updateType?: string; updateData?: string } = {}) => {
    await writeFile(path, bytes);
    const code = await add([file, '.gitattributes'], { ...addOpts, cwd: dir });
    if (code !== 0) throw new ThetaError('E_DEMO', `git theta add failed while committing '${label}' (its error is above); run 'git theta demo --keep' to look at the repository`, { label });
    await git(['commit', '-q', '-m', label], env);
    const id = await gitText(['rev-parse', 'HEAD'], env);
    versions.push({ label, commit: id, sha256: sha(bytes), size: bytes.length });
    log(`  ${pc.green('committed')} ${id.slice(0, 10)} ${label} (${bytes.length} bytes)`);
  };

  // v0: the base model
  let model = demoModel(1);
  await commit('base model', await safetensorsBytes(model, { note: 'git-theta demo' }));

  // v1: a dense fine-tune of the last block's MLP and the final norm
  model = cloneModel(model);
  const rand = prng(7);
  for (const t of model) {
    if (t.name.startsWith('h.1.mlp.') || t.name.startsWith('ln_f.')) {
      for (let i = 0; i < t.values.length; i++) t.values[i] += (rand() - 0.5) * 0.002;
    }
  }
  await commit('dense fine-tune of h.1.mlp and ln_f', await safetensorsBytes(model, { note: 'git-theta demo' }));

  // v2: a sparse update: 40 elements of one matrix (auto picks the sparse encoding)
  model = cloneModel(model);
  const target = model.find((t) => t.name === 'h.0.mlp.c_fc.weight')!;
  for (let k = 0; k < 40; k++) target.values[Math.floor(rand() * target.values.length)] += 0.05;
  await commit('sparse update of 40 elements of h.0.mlp.c_fc.weight', await safetensorsBytes(model, { note: 'git-theta demo' }));

  // v3: a low-rank (LoRA-style) update of the attention projections, side data in lora.safetensors
  model = cloneModel(model);
  const side: DemoTensor[] = [];
  const rank = 4;
  for (const t of model) {
    if (!t.name.endsWith('attn.c_proj.weight')) continue;
    const [rows, cols] = t.shape;
    const R = new Float32Array(rows * rank).map(() => (rand() - 0.5) * 0.02);
    const C = new Float32Array(rank * cols).map(() => (rand() - 0.5) * 0.02);
    // float32 arithmetic as a trainer does it: R·C summed over k in order, then added to W
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        let s = 0;
        for (let k = 0; k < rank; k++) s = Math.fround(s + Math.fround(R[i * rank + k] * C[k * cols + j]));
        t.values[i * cols + j] = Math.fround(t.values[i * cols + j] + s);
      }
    }
    side.push({ name: `${t.name}/R`, shape: [rows, rank], values: R }, { name: `${t.name}/C`, shape: [rank, cols], values: C });
  }
  const sidePath = join(dir, '..', `git-theta-demo-lora-${process.pid}.safetensors`);
  await writeFile(sidePath, await safetensorsBytes(side));
  try {
    await commit('low-rank update of attn.c_proj', await safetensorsBytes(model, { note: 'git-theta demo' }), { updateType: 'low-rank', updateData: sidePath });
  } finally {
    await rm(sidePath, { force: true });
  }

  // what changed, tensor by tensor
  const repo = await ThetaRepo.open(dir);
  for (let i = 1; i < versions.length; i++) {
    log('');
    log(pc.bold(`git theta diff ${versions[i - 1].commit.slice(0, 7)} ${versions[i].commit.slice(0, 7)}`) + `   # ${versions[i].label}`);
    const d = await diffPath(repo, file, { from: versions[i - 1].commit, to: versions[i].commit });
    log(renderDiff(d, false, !!process.stdout.isTTY).trimEnd());
  }

  // check out every version and compare byte for byte
  log('');
  let verified = true;
  for (const v of versions) {
    await git(['checkout', '-q', v.commit, '--', file], env);
    const got = await readFile(path);
    const ok = got.length === v.size && sha(got) === v.sha256;
    verified &&= ok;
    log(`  checkout ${v.commit.slice(0, 10)} ${ok ? pc.green('byte-identical') : pc.red('DIFFERENT')}  ${v.label}`);
  }
  await git(['checkout', '-q', 'HEAD', '--', file], env);
  const status = await gitText(['status', '--porcelain'], env);
  if (status) {
    verified = false;
    log(pc.red(`  git status is not clean:\n${status}`));
  }

  const thetaBytes = await dirBytes(join(dir, '.git', 'lfs', 'objects'));
  const lfsBytes = [...new Map(versions.map((v) => [v.sha256, v.size])).values()].reduce((a, n) => a + n, 0);
  log('');
  log(pc.bold('storage for this history'));
  log(`  git-theta objects: ${thetaBytes} bytes`);
  log(`  git-lfs would store every version whole: ${lfsBytes} bytes (${(lfsBytes / Math.max(1, thetaBytes)).toFixed(2)}x more)`);
  log(verified ? pc.green('demo OK: every version checked out byte-identical') : pc.red('demo FAILED: a version did not check out identically'));
  return { dir, versions, thetaBytes, lfsBytes, verified };
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('Build a model repository in a temporary directory from a small built-in model (no network): a base, a dense fine-tune, a sparse update and a low-rank update; show the diffs, verify every checkout byte for byte, and compare storage with git-lfs')
    .option('--dir <dir>', 'use this (empty) directory instead of a temporary one')
    .option('--keep', 'keep the temporary repository to look around')
    .action(async (o: { dir?: string; keep?: boolean }) => {
      const r = await runDemo({ dir: o.dir });
      if (!o.dir && !o.keep) await rm(r.dir, { recursive: true, force: true });
      else process.stdout.write(`repository kept in ${r.dir}\n`);
      process.exitCode = r.verified ? 0 : 1;
    });
}
