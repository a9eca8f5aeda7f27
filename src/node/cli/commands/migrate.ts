/**
 * `git theta migrate <pattern>...`: move checkpoints git-lfs stores to git-theta's per-tensor
 * storage from the next commit on. `.gitattributes` switches the pattern from filter=lfs to
 * filter=theta, and the current files are re-added (cleaned into per-tensor metadata and objects)
 * so the next commit stores tensors. History is not rewritten: older commits keep their git-lfs
 * pointers, which `git theta diff` and `git theta log` read beside git-theta versions.
 */
import type { Command } from 'commander';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThetaError } from '../../../core/errors.ts';
import { prefetchObjects } from '../../../repo/lfs-pointer-model.ts';
import { parseLfsPointer } from '../../../repo/model-blob.ts';
import { configGet, git } from '../../git/git.ts';
import { switchToTheta } from '../../git/lfs-attributes.ts';
import { worktreePointer } from '../../repo/lfs-models.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';

export interface MigrateResult {
  patterns: { pattern: string; action: 'switched' | 'unchanged'; before: string; after: string }[];
  /** Files re-added through the theta filter (their index entry was a git-lfs pointer). */
  readded: string[];
  /** Of those, files whose work tree held only a pointer: their object was fetched and checked out first. */
  fetched: string[];
}

export async function migrate(patterns: string[], cwd = process.cwd()): Promise<MigrateResult> {
  if (!(await configGet('filter.theta.process', cwd))) {
    throw new ThetaError('E_NOT_INSTALLED', "git-theta's filter is not configured in this repository; run 'git theta install --local' (or --global) first, then migrate", {});
  }
  const repo = await ThetaRepo.open(cwd);
  const switched = await switchToTheta(patterns, cwd);
  const files = (await git(['ls-files', '-z'], { cwd: repo.root })).stdout.toString().split('\0').filter(Boolean);
  const attrs = await git(['check-attr', '-z', 'filter', '--', ...files], { cwd: repo.root, input: '' });
  const f = attrs.stdout.toString().split('\0');
  const theta = new Set<string>();
  for (let i = 0; i + 2 < f.length; i += 3) if (f[i + 2] === 'theta') theta.add(f[i]);
  const readded: string[] = [];
  const fetched: string[] = [];
  for (const path of files) {
    if (!theta.has(path)) continue;
    const staged = (await git(['cat-file', 'blob', `:${path}`], { cwd: repo.root, allowFail: true })).stdout;
    if (!parseLfsPointer(staged)) continue; // not a git-lfs file (already per tensor, or never in git-lfs)
    // the work tree must hold the checkpoint, not its pointer (git-lfs did not smudge it)
    const pointer = await worktreePointer(join(repo.root, path));
    if (pointer) {
      await prefetchObjects(repo.store, [pointer]);
      if (!(await repo.store.has(pointer.oid))) {
        throw new ThetaError('E_OBJECT_MISSING', `${path}: its git-lfs object ${pointer.oid} is neither local nor on the LFS server; run 'git lfs pull' and migrate again`, { file: path, oid: pointer.oid });
      }
      await copyFile(repo.store.objectPath(pointer.oid), join(repo.root, path));
      fetched.push(path);
    }
    readded.push(path);
  }
  await git(['add', '--', '.gitattributes'], { cwd: repo.root });
  // --renormalize runs the (now theta) clean filter on files git would otherwise think unchanged
  if (readded.length) await git(['add', '--renormalize', '--', ...readded], { cwd: repo.root });
  return { patterns: switched, readded, fetched };
}

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('Move checkpoints git-lfs stores to per-tensor storage from the next commit on: switch the patterns in .gitattributes from filter=lfs to filter=theta and re-add the current files. History is untouched (older commits keep their git-lfs pointers; git theta diff and log read both).')
    .argument('<pattern...>', "patterns as 'git lfs track' wrote them in .gitattributes, e.g. \"*.safetensors\"")
    .action(async (patterns: string[]) => {
      const r = await migrate(patterns);
      const say = (s: string) => process.stderr.write(`git-theta: ${s}\n`);
      for (const p of r.patterns) {
        say(p.action === 'switched' ? `.gitattributes: "${p.before}" is now "${p.after}"` : `.gitattributes: "${p.pattern}" already uses filter=theta`);
      }
      for (const path of r.fetched) say(`${path}: the work tree held a git-lfs pointer; its object was downloaded and checked out first`);
      say(r.readded.length ? `re-added ${r.readded.length} file(s), now stored per tensor in the index: ${r.readded.join(', ')}` : 'no file in the index was a git-lfs pointer for these patterns; nothing re-added');
      say('history is untouched: earlier commits keep their git-lfs pointers, and git theta diff/log read both');
      say('next: git commit -m "Store models per tensor with git-theta"');
    });
}
