/**
 * `git theta diff` for TF.js models: the changed weight shards (and changed model.json files) are
 * gathered by the model.json that lists them, and each model is diffed weight by weight as one
 * model, named by its model.json. Shards that cannot be put together (cleaned against another
 * manifest, or not stored as TF.js shards) are left to the per-file diff, with a warning.
 */
import { ThetaError } from '../../core/errors.ts';
import { TFJS_FORMAT_ID } from '../../formats/tfjs.ts';
import type { FileAccess } from '../../formats/types.ts';
import { diffModels, type DiffTensor } from '../../theta/diff.ts';
import type { TensorEntry } from '../../theta/metadata.ts';
import { rebuildTensor } from '../../theta/rebuild.ts';
import { objectsToCompare, readTfjsManifest, ShardLayoutError, tfjsModelAt, tfjsModelsTouched, tfjsShardPaths } from '../../theta/tfjs-model.ts';
import type { RemoteStoreExtras } from '../../lfs/remote-store.ts';
import { revisionFiles, worktreeFiles } from '../files/file-access.ts';
import { tfjsShardsAmong } from './tfjs-shard-paths.ts';
import { worktreeTensors, type DiffSpec, type PathDiff, type ThetaRepo } from './theta-repo.ts';

const revSpec = (rev: string, path: string) => `${rev === ':' ? '' : rev}:${path}`;

export interface TfjsDiffResult {
  diffs: PathDiff[];
  /** Paths the model diffs account for (shards and model.json files): not diffed again one by one. */
  covered: Set<string>;
}

/**
 * Diff the TF.js models touched by `tracked` (git-theta paths) and `changed` (every changed path).
 */
export async function diffTfjsModels(repo: ThetaRepo, tracked: string[], changed: string[], spec: DiffSpec): Promise<TfjsDiffResult> {
  // shards bound by `track <model.json>` (theta-format=tfjs-shard) or by a plain glob (their metadata says so)
  const revs = [spec.from, ...(spec.to === null ? [] : [spec.to])];
  const shardSet = await tfjsShardsAmong(repo, tracked, revs);
  const shards = tracked.filter((p) => shardSet.has(p));
  const covered = new Set<string>();
  if (!shards.length && !changed.some((p) => p.toLowerCase().endsWith('.json'))) return { diffs: [], covered };

  const fromFiles = revisionFiles(repo.root, spec.from);
  const toFiles = spec.to === null ? worktreeFiles(repo.root) : revisionFiles(repo.root, spec.to);
  const models = await tfjsModelsTouched({
    shards, changed, sides: [toFiles, fromFiles],
    isShard: async (p) => (await tfjsShardsAmong(repo, [p], revs)).has(p),
  });
  const load = (_shard: string, name: string, e: TensorEntry) => rebuildTensor(name, e, repo.store, repo.kernels);
  const side = (rev: string, files: FileAccess, path: string) => tfjsModelAt(files, path, (p) => repo.metadataAt(revSpec(rev, p), { batch: true }), load);

  const diffs: PathDiff[] = [];
  for (const path of models) {
    try {
      const older = await side(spec.from, fromFiles, path);
      let newer: AsyncIterable<DiffTensor> | DiffTensor[] = [];
      let newerShards: string[] = [];
      if (spec.to === null) {
        const manifest = await readTfjsManifest(toFiles, path);
        if (manifest) {
          newer = worktreeTensors(repo, path, !!spec.approx);
          newerShards = tfjsShardPaths(path, manifest);
        }
      } else {
        const n = await side(spec.to, toFiles, path);
        if (n) ({ tensors: newer, shards: newerShards } = n);
        // objects of changed weights missing here (after a clone) come from the LFS server in one batch
        if (n && !spec.approx) await (repo.store as Partial<RemoteStoreExtras>).prefetch?.(objectsToCompare(older?.tensors ?? [], n.tensors));
      }
      const d = await diffModels(older?.tensors ?? [], newer, { kernels: repo.kernels, approx: spec.approx });
      diffs.push({ path, format: TFJS_FORMAT_ID, from: spec.from === ':' ? 'index' : spec.from, to: spec.to === null ? 'worktree' : spec.to === ':' ? 'index' : spec.to, ...d });
      for (const p of [path, ...(older?.shards ?? []), ...newerShards]) covered.add(p);
    } catch (e) {
      if (!(e instanceof ShardLayoutError) && !(e instanceof ThetaError && e.code === 'E_FORMAT')) throw e;
      process.stderr.write(`git-theta: ${e.message}; showing its shards one by one\n`);
    }
  }
  return { diffs, covered };
}
