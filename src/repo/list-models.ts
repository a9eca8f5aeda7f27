/**
 * listModels: the models a revision holds: every file whose blob is git-theta metadata (whatever
 * its name), and every plain git-lfs pointer of a checkpoint in a format we read (`*.safetensors`,
 * `*.gguf`, `*.npy`, `pytorch_model*.bin`, ...: how Hugging Face and other git-lfs repositories
 * store checkpoints; see isLfsCheckpointPath). A TF.js model's shards are listed as its model.json.
 */
import git from 'isomorphic-git';
import { byCodePoint } from '../theta/metadata.ts';
import { gitArgs, repoContext, required, type RepoContext, type RepoOptions } from './context.ts';
import { classifyBlob, readBlobAt } from './model-blob.ts';
import { looksLikePyMetadata, pythonModelListing } from './python-blob.ts';
import { commitFiles } from './revision-files.ts';
import { formatFromPath, isLfsCheckpointPath } from './lfs-pointer-model.ts';
import { TFJS_FORMAT_ID } from '../formats/tfjs.ts';
import { TFJS_SHARD_FORMAT_ID } from '../formats/tfjs-shard.ts';
import { readTfjsManifest, tfjsModelsTouched, tfjsShardPaths } from '../theta/tfjs-model.ts';
import { resolveRevision } from './revision.ts';

export interface ListModelsOptions extends RepoOptions {
  /** Revision (default 'HEAD'). */
  ref?: string;
  /** Only look at paths this returns true for (saves reading blobs that cannot be models). */
  filter?: (filepath: string) => boolean;
}

export interface ListedModel {
  path: string;
  /** 'theta': git-theta metadata; 'lfs': a plain git-lfs pointer to the whole checkpoint. */
  kind: 'theta' | 'lfs';
  /** The blob git stores for the path. */
  blobOid: string;
  format: string;
  /** Size of the checkpoint file in bytes. */
  size: number;
  /** Number of tensors (git-theta models; unknown for git-lfs files without reading the object). */
  tensors?: number;
  /** The LFS object holding the whole file (git-lfs files). */
  lfsOid?: string;
}

/** Every file (blob; not symlinks or submodules) of a commit's tree, in git's path order. */
export async function* treeFiles(c: RepoContext, commitOid: string): AsyncGenerator<{ path: string; oid: string }> {
  const args = gitArgs(c);
  async function* walk(treeOid: string, prefix: string): AsyncGenerator<{ path: string; oid: string }> {
    const { tree } = await git.readTree({ ...args, oid: treeOid });
    for (const e of tree) {
      const path = prefix ? `${prefix}/${e.path}` : e.path;
      if (e.type === 'tree') yield* walk(e.oid, path);
      else if (e.type === 'blob' && e.mode !== '120000') yield { path, oid: e.oid };
    }
  }
  const { commit } = await git.readCommit({ ...args, oid: commitOid });
  yield* walk(commit.tree, '');
}

/** Models found in one commit (shared with diffRevisions). */
export async function modelsAt(c: RepoContext, commitOid: string, ref: string, filter?: (p: string) => boolean): Promise<ListedModel[]> {
  const out: ListedModel[] = [];
  for await (const f of treeFiles(c, commitOid)) {
    if (filter && !filter(f.path)) continue;
    const { blob } = await git.readBlob({ ...gitArgs(c), oid: f.oid });
    if (looksLikePyMetadata(blob)) {
      // written by the Python Git-Theta: its file size is not recorded (0)
      out.push({ path: f.path, kind: 'theta', blobOid: f.oid, ...pythonModelListing(blob, f.path), size: 0 });
      continue;
    }
    const m = classifyBlob(blob, f.oid, `${ref}:${f.path}`);
    if (m?.kind === 'theta') {
      out.push({ path: f.path, kind: 'theta', blobOid: f.oid, format: m.metadata.format, size: m.metadata.size, tensors: Object.keys(m.metadata.tensors).length });
    } else if (m?.kind === 'lfs' && isLfsCheckpointPath(f.path)) {
      out.push({ path: f.path, kind: 'lfs', blobOid: f.oid, format: formatFromPath(f.path), size: m.pointer.size, lfsOid: m.pointer.oid });
    }
  }
  return out.sort((a, b) => byCodePoint(a.path, b.path));
}

/**
 * The tracked models at `ref`, sorted by path. The weight shards of a TF.js model are one model,
 * listed under its model.json (format 'tfjs', size the shards' total, tensors its weights).
 */
export async function listModels(o: ListModelsOptions): Promise<ListedModel[]> {
  required('listModels', o as unknown as Record<string, unknown>, ['fs', 'dir']);
  const c = await repoContext('listModels', o);
  const ref = o.ref ?? 'HEAD';
  const commit = await resolveRevision(c, ref);
  const models = await modelsAt(c, commit, ref, o.filter);
  const shards = models.filter((m) => m.format === TFJS_SHARD_FORMAT_ID);
  if (!shards.length) return models;
  const files = commitFiles(c, commit);
  const byPath = new Map(models.map((m) => [m.path, m]));
  const manifests = await tfjsModelsTouched({ shards: shards.map((m) => m.path), changed: [], sides: [files], isShard: async () => false });
  for (const path of manifests) {
    const manifest = await readTfjsManifest(files, path);
    const blob = manifest && (await readBlobAt(c, commit, path));
    if (!manifest || !blob) continue;
    const paths = tfjsShardPaths(path, manifest);
    if (!paths.every((p) => byPath.get(p)?.format === TFJS_SHARD_FORMAT_ID)) continue; // not all stored as its shards: list them one by one
    for (const p of paths) byPath.delete(p);
    const weights = manifest.groups.reduce((n, g) => n + g.weights.length, 0);
    byPath.set(path, { path, kind: 'theta', blobOid: blob.oid, format: TFJS_FORMAT_ID, size: paths.reduce((n, p) => n + (models.find((m) => m.path === p)?.size ?? 0), 0), tensors: weights });
  }
  return [...byPath.values()].sort((a, b) => byCodePoint(a.path, b.path));
}
