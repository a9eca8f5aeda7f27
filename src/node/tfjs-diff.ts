/**
 * `git theta diff` for TF.js models: the changed weight shards (and changed model.json files) are
 * gathered by the model.json that lists them, and each model is diffed weight by weight as one
 * model, named by its model.json. Shards that cannot be put together (cleaned against another
 * manifest, or not stored as TF.js shards) are left to the per-file diff, with a warning.
 */
import { join } from 'node:path';
import { ThetaError } from '../core/errors.ts';
import { MAX_MODEL_JSON_BYTES, parseTfjsModelJson, TFJS_FORMAT_ID, type TfjsManifest } from '../formats/tfjs.ts';
import { findTfjsManifest, TFJS_SHARD_FORMAT_ID } from '../formats/tfjs-shard.ts';
import type { FileAccess } from '../formats/types.ts';
import { diffModels, type DiffTensor } from '../theta/diff.ts';
import { rebuildTensor } from '../theta/rebuild.ts';
import { ShardLayoutError, tfjsModelTensors, tfjsShardPaths } from '../theta/tfjs-model.ts';
import { revisionFiles, worktreeFiles } from './file-access.ts';
import { git } from './git.ts';
import { worktreeTensors, type DiffSpec, type PathDiff, type ThetaRepo } from './theta-repo.ts';
import { existsSync } from 'node:fs';

/** The value of one attribute for each path. */
export async function attributeValues(repo: ThetaRepo, name: string, paths: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!paths.length) return out;
  const r = await git(['check-attr', '-z', name, '--', ...paths], { cwd: repo.root });
  const f = r.stdout.toString().split('\0');
  for (let i = 0; i + 2 < f.length; i += 3) out.set(f[i], f[i + 2]);
  return out;
}

const revSpec = (rev: string, path: string) => `${rev === ':' ? '' : rev}:${path}`;

async function manifestAt(files: FileAccess, path: string): Promise<TfjsManifest | null> {
  const bytes = await files.read(path, MAX_MODEL_JSON_BYTES);
  if (!bytes) return null;
  try {
    return parseTfjsModelJson(bytes, path);
  } catch {
    return null;
  }
}

export interface TfjsDiffResult {
  diffs: PathDiff[];
  /** Paths the model diffs account for (shards and model.json files): not diffed again one by one. */
  covered: Set<string>;
}

/**
 * Diff the TF.js models touched by `tracked` (git-theta paths) and `changed` (every changed path).
 */
export async function diffTfjsModels(repo: ThetaRepo, tracked: string[], changed: string[], spec: DiffSpec): Promise<TfjsDiffResult> {
  const formats = await attributeValues(repo, 'theta-format', tracked);
  const shards = tracked.filter((p) => formats.get(p) === TFJS_SHARD_FORMAT_ID);
  const jsons = changed.filter((p) => p.toLowerCase().endsWith('.json'));
  const covered = new Set<string>();
  if (!shards.length && !jsons.length) return { diffs: [], covered };

  const fromFiles = revisionFiles(repo.root, spec.from);
  const toFiles = spec.to === null ? worktreeFiles(repo.root) : revisionFiles(repo.root, spec.to);
  const models = new Set<string>();
  for (const s of shards) {
    const hit = (await findTfjsManifest(s, toFiles).catch(() => null)) ?? (await findTfjsManifest(s, fromFiles).catch(() => null));
    if (hit) models.add(hit.path);
  }
  for (const j of jsons) {
    for (const files of [toFiles, fromFiles]) {
      const m = await manifestAt(files, j);
      if (!m) continue;
      // a model.json counts when git-theta tracks its shards
      const paths = tfjsShardPaths(j, m);
      const attrs = await attributeValues(repo, 'theta-format', paths);
      if (paths.length && paths.every((p) => attrs.get(p) === TFJS_SHARD_FORMAT_ID)) models.add(j);
      break;
    }
  }

  const load = (_shard: string, name: string, e: Parameters<typeof rebuildTensor>[1]) => rebuildTensor(name, e, repo.store, repo.kernels);
  const side = async (rev: string, files: FileAccess, path: string): Promise<{ tensors: DiffTensor[]; shards: string[] } | null> => {
    const manifest = await manifestAt(files, path);
    if (!manifest) return null;
    const tensors = await tfjsModelTensors({ manifestPath: path, manifest, shard: (p) => repo.metadataAt(revSpec(rev, p)) }, load);
    return { tensors, shards: tfjsShardPaths(path, manifest) };
  };

  const diffs: PathDiff[] = [];
  for (const path of [...models].sort()) {
    try {
      const older = await side(spec.from, fromFiles, path);
      let newer: AsyncIterable<DiffTensor> | DiffTensor[] = [];
      let newerShards: string[] = [];
      if (spec.to === null) {
        const manifest = await manifestAt(toFiles, path);
        if (manifest && existsSync(join(repo.root, path))) {
          newer = worktreeTensors(repo, path, !!spec.approx);
          newerShards = tfjsShardPaths(path, manifest);
        }
      } else {
        const n = await side(spec.to, toFiles, path);
        if (n) ({ tensors: newer, shards: newerShards } = n);
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
