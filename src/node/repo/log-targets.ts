/**
 * What `git theta log <path>` logs: a checkpoint; a TF.js model, named by its manifest or by one of
 * its weight shards (logged as the model); or a directory: each TF.js model in it (by its manifest)
 * and each other tracked checkpoint under it, one log per model.
 */
import { stat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { findTfjsManifest, manifestsIn } from '../../formats/tfjs-shard.ts';
import { byCodePoint } from '../../theta/metadata.ts';
import { git } from '../git/git.ts';
import { worktreeFiles } from '../files/file-access.ts';
import { modelPathsAmong } from './lfs-models.ts';
import { tfjsShardsAmong } from './tfjs-shard-paths.ts';
import type { ThetaRepo } from './theta-repo.ts';

/** Repository paths of the models `given` (relative to `cwd`) stands for, and whether it is a directory. */
export async function logTargets(repo: ThetaRepo, given: string, cwd = process.cwd()): Promise<{ models: string[]; directory: boolean }> {
  const rel = relative(repo.root, resolve(cwd, given)).split(sep).join('/');
  const files = worktreeFiles(repo.root);
  const isDir = (await stat(resolve(cwd, given)).catch(() => null))?.isDirectory();
  if (!isDir) return { models: [(await findTfjsManifest(rel, files).catch(() => null))?.path ?? rel], directory: false };

  const models = new Set((await manifestsIn(files, rel)).map((m) => m.path));
  // tracked checkpoints under it (committed ones too): a TF.js shard stands for its model
  const r = await git(['ls-files', '-z', '--', rel || '.'], { cwd: repo.root, allowFail: true });
  const tracked = await modelPathsAmong(repo, r.stdout.toString().split('\0').filter(Boolean));
  const shards = await tfjsShardsAmong(repo, tracked, ['HEAD']);
  for (const p of tracked) {
    if (!shards.has(p)) models.add(p);
    else {
      const hit = await findTfjsManifest(p, files).catch(() => null);
      if (hit) models.add(hit.path);
    }
  }
  return { models: [...models].sort(byCodePoint), directory: true };
}
