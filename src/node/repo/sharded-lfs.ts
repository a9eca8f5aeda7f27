/**
 * A sharded safetensors model git-lfs stores (the Hugging Face layout: `model.safetensors.index.json`
 * as a plain blob, each `model-0000k-of-0000n.safetensors` shard a git-lfs pointer) as ONE model in
 * `git theta diff` and `git theta log`, named by its index (the diff itself: src/repo/diff-sharded.ts,
 * shared with diffRevisions). Between revisions (or a revision and the index); against the work tree
 * the shards are diffed one by one. Shards git-theta stores itself (filter=theta) keep their per-shard diffs.
 */
import { isShardIndexName } from '../../formats/sharded.ts';
import { allShardsLfs, diffShardedSides, shardPathsOf, type ShardedSide } from '../../repo/diff-sharded.ts';
import { prefetchObjects, tensorHashes } from '../../repo/lfs-pointer-model.ts';
import { parseLfsPointer, type LfsPointer } from '../../repo/model-blob.ts';
import { git } from '../git/git.ts';
import { batchReadBlob } from '../git/git-batch.ts';
import { ApproxNeedsMetadataError, blobSpec, openRevisionCheckpoint } from './lfs-models.ts';
import { step, type LogEntry } from './log-steps.ts';
import type { DiffSpec, PathDiff, ThetaRepo } from './theta-repo.ts';

const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);

/** Index files at a revision (':' = the index). */
async function indexPathsAt(repo: ThetaRepo, rev: string): Promise<string[]> {
  const r = rev === ':'
    ? await git(['ls-files', '-z'], { cwd: repo.root })
    : await git(['ls-tree', '-r', '-z', '--name-only', rev], { cwd: repo.root, allowFail: true });
  return r.stdout.toString().split('\0').filter((p) => p && isShardIndexName(p));
}

/** A sharded model at a revision: its index blob and its shards' blobs (null when absent or not a valid index). */
async function sideAt(repo: ThetaRepo, rev: string, index: string): Promise<ShardedSide | null> {
  const b = await batchReadBlob(repo.root, blobSpec(rev, index));
  const paths = b && shardPathsOf(index, u8(b));
  if (!b || !paths) return null;
  const shards = new Map<string, Uint8Array | null>();
  for (const p of paths) {
    const x = await batchReadBlob(repo.root, blobSpec(rev, p));
    shards.set(p, x && u8(x));
  }
  return { blob: u8(b), shards };
}

export interface ShardedModel {
  index: string;
  from: ShardedSide | null;
  to: ShardedSide | null;
}

/**
 * The sharded models git-lfs stores among the changed paths (an index, or a shard an index lists at
 * either revision); `covered` are the index and shard paths they stand for. None against the work tree.
 */
export async function shardedModelsAmong(repo: ThetaRepo, candidates: string[], spec: DiffSpec): Promise<{ models: ShardedModel[]; covered: Set<string> }> {
  const covered = new Set<string>();
  const models: ShardedModel[] = [];
  if (spec.to === null) return { models, covered };
  const changed = new Set(candidates);
  const indexes = [...new Set([...(await indexPathsAt(repo, spec.from)), ...(await indexPathsAt(repo, spec.to))])].sort();
  for (const index of indexes) {
    const a = await sideAt(repo, spec.from, index);
    const b = await sideAt(repo, spec.to, index);
    const shards = [...new Set([...(a?.shards.keys() ?? []), ...(b?.shards.keys() ?? [])])];
    if (!shards.length || (!changed.has(index) && !shards.some((s) => changed.has(s)))) continue;
    if (!allShardsLfs([a, b])) continue;
    models.push({ index, from: a, to: b });
    covered.add(index);
    for (const s of shards) covered.add(s);
  }
  return { models, covered };
}

/** `git theta diff` of one sharded model, as one model under its index's path. */
export async function diffShardedModel(repo: ThetaRepo, m: ShardedModel, spec: DiffSpec): Promise<PathDiff> {
  if (spec.approx) throw new ApproxNeedsMetadataError(m.index, m.from ? spec.from : spec.to!);
  const d = await diffShardedSides(repo.store, repo.kernels, m.index, m.from, m.to, spec.tensors ?? null, `${spec.from}:${m.index}`);
  const label = (r: string) => (r === ':' ? 'index' : r);
  return { path: m.index, format: d.format, from: label(spec.from), to: label(spec.to!), approx: d.approx, tensors: d.tensors, summary: d.summary };
}

function shardPointers(side: ShardedSide | null): LfsPointer[] {
  return [...(side?.shards.values() ?? [])].flatMap((b) => (b && parseLfsPointer(b)) || []);
}

/**
 * `git theta log` of a sharded model, named by its index: per commit that touched the index or a
 * shard it lists (at `rev`), the model's tensors changed, added and removed; the bytes of shard
 * objects that commit added; the shards' total size. null when `index` is not such a model.
 */
export async function logShardedModel(repo: ThetaRepo, index: string, rev = 'HEAD'): Promise<(LogEntry & { storage: 'lfs' })[] | null> {
  if (!isShardIndexName(index)) return null;
  const head = await sideAt(repo, rev, index);
  if (!head || !allShardsLfs([head])) return null;
  const r = await git(['log', '--format=%H%x09%P%x09%s', rev, '--', index, ...head.shards.keys()], { cwd: repo.root });
  const lines = r.stdout.toString().split('\n').filter(Boolean).map((l) => l.split('\t'));
  const sides = new Map<string, ShardedSide | null>();
  const sideOf = async (commit: string) => {
    if (!sides.has(commit)) sides.set(commit, await sideAt(repo, commit, index));
    return sides.get(commit)!;
  };
  // every shard object the log reads, in one batch when they must come from the server
  const all: LfsPointer[] = [];
  for (const [commit, parents] of lines) for (const c of [commit, parents.split(' ')[0]]) if (c) all.push(...shardPointers(await sideOf(c)));
  await prefetchObjects(repo.store, all);
  const hashes = new Map<string, Map<string, { hash: string; dtype: string; shape: number[] }>>();
  const versionAt = async (commit: string) => {
    const side = await sideOf(commit);
    let t = hashes.get(commit);
    if (!t) {
      const reader = side ? await openRevisionCheckpoint(repo, commit, index) : null;
      hashes.set(commit, (t = reader ? await tensorHashes(repo.kernels, reader) : new Map()));
    }
    return { tensors: t, pointers: shardPointers(side) };
  };
  const out: (LogEntry & { storage: 'lfs' })[] = [];
  for (const [commit, parents, subject] of lines) {
    const parent = parents.split(' ')[0];
    const now = await versionAt(commit);
    const before = parent ? await versionAt(parent) : { tensors: new Map(), pointers: [] };
    const size = now.pointers.reduce((a, p) => a + p.size, 0);
    out.push({ commit, subject, ...step(before.tensors, now.tensors, before.pointers, now.pointers, size), storage: 'lfs' });
  }
  return out;
}
