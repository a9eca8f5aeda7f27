/**
 * diffRevisions: what `git theta diff <from> <to> --json` prints, for a whole revision pair:
 * {"files": [...]}, one entry per model whose blob differs between the two revisions (or per
 * given path), in path order. The weight shards of a TF.js model are one entry, named by its
 * model.json (as the CLI shows them).
 */
import { TFJS_FORMAT_ID } from '../formats/tfjs.ts';
import { withoutUnchanged } from '../theta/diff.ts';
import { TFJS_SHARD_FORMAT_ID } from '../formats/tfjs-shard.ts';
import { diffModels } from '../theta/diff.ts';
import type { ModelMetadata, TensorEntry } from '../theta/metadata.ts';
import { rebuildTensor } from '../theta/rebuild.ts';
import { objectsToCompare, ShardLayoutError, tfjsModelAt, tfjsModelsTouched } from '../theta/tfjs-model.ts';
import { prefetch, repoContext, required, type RepoContext, type RepoOptions } from './context.ts';
import { diffPathAt, type FileDiff } from './diff-model.ts';
import { tensorSelection } from './lfs-partial.ts';
import { diffShardedAt } from './diff-sharded.ts';
import { modelsAt, treeFiles, type ListedModel } from './list-models.ts';
import { readModelBlob } from './model-blob.ts';
import { commitFiles } from './revision-files.ts';
import { resolveRevision } from './revision.ts';

export interface DiffRevisionsOptions extends RepoOptions {
  from: string;
  to: string;
  /** Only these paths (each diffed even when unchanged, as the CLI does for paths after `--`). */
  filepaths?: string[];
  approx?: boolean;
  /** Include plain git-lfs checkpoints (any format we read; see isLfsCheckpointPath; default true). */
  lfs?: boolean;
  /** Also list unchanged tensors (default false, as `git theta diff --json` without `--all`; the summary counts them either way). */
  all?: boolean;
  /** Only these tensors (names or globs), as `git theta diff --tensor`; see DiffModelOptions.tensors. */
  tensors?: string[];
}

export interface RevisionsDiff {
  files: FileDiff[];
}

export async function diffRevisions(o: DiffRevisionsOptions): Promise<RevisionsDiff> {
  required('diffRevisions', o as unknown as Record<string, unknown>, ['fs', 'dir', 'from', 'to']);
  const c = await repoContext('diffRevisions', o);
  const from = { ref: o.from, commit: await resolveRevision(c, o.from) };
  const to = { ref: o.to, commit: await resolveRevision(c, o.to) };
  const only = o.filepaths ? new Set(o.filepaths) : null;
  const filter = only ? (p: string) => only.has(p) : undefined;
  const keep = (m: { kind: string }) => o.lfs !== false || m.kind === 'theta';
  const a = new Map((await modelsAt(c, from.commit, from.ref, filter)).filter(keep).map((m) => [m.path, m]));
  const b = new Map((await modelsAt(c, to.commit, to.ref, filter)).filter(keep).map((m) => [m.path, m]));
  const paths = [...new Set([...a.keys(), ...b.keys()])]
    .filter((p) => only || a.get(p)?.blobOid !== b.get(p)?.blobOid)
    .sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  // TF.js models: the changed shards (and changed model.json files) of one model, diffed as that model
  const tfjs = await diffTfjsModelsAt(c, from, to, paths, a, b, only, !!o.approx);
  const files: FileDiff[] = [...tfjs.diffs];
  const select = tensorSelection(o.tensors);
  // sharded safetensors models git-lfs stores: one diff per model, under its index's path
  const changedPaths = new Set([...paths, ...(await changedJson(c, from, to, only))]);
  const sharded = o.lfs === false ? null : await diffShardedAt(c, from, to, changedPaths, !!o.approx, select);
  for (const p of paths) if (!tfjs.covered.has(p) && !sharded?.covered.has(p)) files.push(await diffPathAt(c, p, from, to, !!o.approx, select));
  if (sharded) files.push(...(await sharded.diff()));
  files.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return { files: o.all ? files : files.map(withoutUnchanged) };
}

type Rev = { ref: string; commit: string };

/** JSON files whose blob differs between the two commits (they may be TF.js manifests). */
async function changedJson(c: RepoContext, from: Rev, to: Rev, only: Set<string> | null): Promise<string[]> {
  const oids = async (commit: string) => {
    const m = new Map<string, string>();
    for await (const f of treeFiles(c, commit)) if (/\.json$/i.test(f.path) && (!only || only.has(f.path))) m.set(f.path, f.oid);
    return m;
  };
  const [x, y] = [await oids(from.commit), await oids(to.commit)];
  return [...new Set([...x.keys(), ...y.keys()])].filter((p) => only || x.get(p) !== y.get(p));
}

async function diffTfjsModelsAt(
  c: RepoContext, from: Rev, to: Rev, paths: string[], a: Map<string, ListedModel>, b: Map<string, ListedModel>, only: Set<string> | null, approx: boolean,
): Promise<{ diffs: FileDiff[]; covered: Set<string> }> {
  const covered = new Set<string>();
  const isShard = (p: string) => (b.get(p) ?? a.get(p))?.format === TFJS_SHARD_FORMAT_ID;
  const shards = paths.filter(isShard);
  const changed = await changedJson(c, from, to, only);
  if (!shards.length && !changed.length) return { diffs: [], covered };
  const fromFiles = commitFiles(c, from.commit);
  const toFiles = commitFiles(c, to.commit);
  // a shard is one when git-theta stores it as one on either side (listed models, or read here for paths not listed)
  const shardAt = async (p: string) => isShard(p) || (await metadataAt(c, to, p))?.format === TFJS_SHARD_FORMAT_ID;
  const models = await tfjsModelsTouched({ shards, changed, sides: [toFiles, fromFiles], isShard: shardAt });
  const load = (_s: string, name: string, e: TensorEntry) => rebuildTensor(name, e, c.store, c.kernels);
  const diffs: FileDiff[] = [];
  for (const path of models) {
    try {
      const older = await tfjsModelAt(fromFiles, path, (p) => metadataAt(c, from, p), load);
      const newer = await tfjsModelAt(toFiles, path, (p) => metadataAt(c, to, p), load);
      // the objects of changed weights in one batch (the page downloads nothing else)
      if (!approx) await prefetch(c, objectsToCompare(older?.tensors ?? [], newer?.tensors ?? []));
      const d = await diffModels(older?.tensors ?? [], newer?.tensors ?? [], { kernels: c.kernels, approx });
      diffs.push({ path, format: TFJS_FORMAT_ID, from: from.ref, to: to.ref, ...d });
      for (const p of [path, ...(older?.shards ?? []), ...(newer?.shards ?? [])]) covered.add(p);
    } catch (e) {
      if (!(e instanceof ShardLayoutError)) throw e; // its shards are diffed one by one
    }
  }
  return { diffs, covered };
}

async function metadataAt(c: RepoContext, rev: Rev, path: string): Promise<ModelMetadata | null> {
  const m = await readModelBlob(c, rev.ref, path, rev.commit);
  return m?.kind === 'theta' ? m.metadata : null;
}
