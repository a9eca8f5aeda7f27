/**
 * The paths `git theta diff [<rev>...] -- <path>...` compares. A path may name a checkpoint, a TF.js
 * model by its manifest (model.json, a bare `*weights_manifest.json`) or by one of its weight
 * shards, or a directory: a manifest or shard stands for the whole model (its manifest and every
 * shard, so the model is diffed weight by weight), a directory for the changed files under it
 * (each TF.js model there that changed is listed on its own). Paths are taken relative to the
 * current directory, as git does, and returned relative to the repository root.
 */
import { stat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { findTfjsManifest } from '../../formats/tfjs-shard.ts';
import type { FileAccess } from '../../formats/types.ts';
import { readTfjsManifest, tfjsShardPaths } from '../../theta/tfjs-model.ts';
import { git } from '../git/git.ts';
import { revisionFiles, worktreeFiles } from '../files/file-access.ts';
import type { ThetaRepo } from './theta-repo.ts';

/** The files changed between `revs` (none: index vs work tree), under the pathspecs (none: everywhere). */
export async function changedPaths(repo: ThetaRepo, revs: string[], pathspecs: string[] = []): Promise<string[]> {
  const r = await git(['diff', '--name-only', '-z', '--no-renames', ...revs, '--', ...pathspecs.map((p) => `:(top,literal)${p}`)], { cwd: repo.root });
  return r.stdout.toString().split('\0').filter(Boolean);
}

/** The TF.js model `path` names (as its manifest or as one of its shards) on some side, as its manifest and shards. */
async function tfjsModelNamed(path: string, sides: FileAccess[]): Promise<string[] | null> {
  for (const files of sides) {
    const manifestPath = path.toLowerCase().endsWith('.json')
      ? path
      : (await findTfjsManifest(path, files).catch(() => null))?.path;
    if (!manifestPath) continue;
    const manifest = await readTfjsManifest(files, manifestPath);
    if (manifest) return [manifestPath, ...tfjsShardPaths(manifestPath, manifest)];
  }
  return null;
}

/**
 * The repository paths to diff for the paths given after `--` (relative to `cwd`), or every
 * changed path when none is given.
 */
export async function diffCandidates(repo: ThetaRepo, revs: string[], paths: string[], cwd = process.cwd()): Promise<string[]> {
  if (!paths.length) return changedPaths(repo, revs);
  const sides = [worktreeFiles(repo.root), ...revs.map((r) => revisionFiles(repo.root, r)), revisionFiles(repo.root, ':')];
  const out = new Set<string>();
  for (const given of paths) {
    const rel = relative(repo.root, resolve(cwd, given)).split(sep).join('/');
    const isDir = (await stat(resolve(cwd, given)).catch(() => null))?.isDirectory();
    if (isDir || rel === '') {
      for (const p of await changedPaths(repo, revs, rel ? [rel] : [])) out.add(p);
      continue;
    }
    const model = await tfjsModelNamed(rel, sides);
    if (model) {
      for (const p of model) out.add(p);
      continue;
    }
    // a directory that is gone from the work tree but holds files at a revision: its changed files
    const under = await changedPaths(repo, revs, [rel]);
    if (under.some((p) => p !== rel)) for (const p of under) out.add(p);
    else out.add(rel);
  }
  return [...out];
}
