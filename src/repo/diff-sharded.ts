/**
 * A sharded safetensors model git-lfs stores (`model.safetensors.index.json` + shards that are
 * git-lfs pointers, the Hugging Face layout) diffed as ONE model, under its index's path: the diff
 * is of the model's tensors, not shard by shard (a tensor moved to another shard is no change).
 * Used by diffRevisions and by `git theta diff` (src/node/repo/sharded-lfs.ts). Runtime-neutral.
 *
 * A shard whose object is the same on both sides holds the same tensors with the same bytes: its
 * tensors are unchanged without reading them (only its header, by a Range request when the object
 * is not local). The other shards are downloaded whole (every tensor compared) or, with a tensor
 * selection, read in part (lfs-partial.ts).
 */
import { ThetaError } from '../core/errors.ts';
import type { Kernels } from '../core/kernels.ts';
import { isShardIndexName, parseShardIndex, type ShardedTensor } from '../formats/sharded.ts';
import type { CheckpointReader } from '../formats/types.ts';
import type { ObjectStore } from '../store/types.ts';
import { hashOf } from '../theta/clean.ts';
import { diffModels, type DiffTensor, type ModelDiff } from '../theta/diff.ts';
import type { RepoContext } from './context.ts';
import type { FileDiff } from './diff-model.ts';
import { lfsShardPartial, selectTensors, type TensorSelection } from './lfs-partial.ts';
import { lfsObjectReader, openShardedBlobs, prefetchObjects, rereader, type Rereader } from './lfs-pointer-model.ts';
import { parseLfsPointer, readBlobAt, type LfsPointer } from './model-blob.ts';
import { treeFiles } from './list-models.ts';

/** One side of a sharded model: the index blob and each listed shard's blob (null when missing). */
export interface ShardedSide {
  blob: Uint8Array;
  shards: Map<string, Uint8Array | null>;
}

export function shardDir(index: string): string {
  const i = index.lastIndexOf('/');
  return i < 0 ? '' : index.slice(0, i + 1);
}

/** The shard paths an index blob lists (null when it is not a valid index). */
export function shardPathsOf(index: string, blob: Uint8Array): string[] | null {
  try {
    return parseShardIndex(blob, index).shards.map((s) => shardDir(index) + s);
  } catch (e) {
    if (e instanceof ThetaError) return null; // not a valid index: its shards stay files of their own
    throw e;
  }
}

/** Whether every shard of the sides present is a git-lfs pointer (git-theta's own shards diff as files). */
export function allShardsLfs(sides: (ShardedSide | null)[]): boolean {
  return sides.every((x) => !x || [...x.shards.values()].every((blob) => !!blob && !!parseLfsPointer(blob)));
}

function pointers(side: ShardedSide | null): Map<string, LfsPointer> {
  const m = new Map<string, LfsPointer>();
  for (const [p, blob] of side?.shards ?? []) {
    const ptr = blob && parseLfsPointer(blob);
    if (ptr) m.set(p, ptr);
  }
  return m;
}

/** A sharded reader's tensors as the diff wants them; tensors of shards in `same` by name only (never read). */
async function* shardedDiffTensors(kernels: Kernels, reader: CheckpointReader, dir: string, same: Map<string, string>, again?: Rereader): AsyncGenerator<DiffTensor> {
  try {
    for await (const t of reader.tensors()) {
      const name = t.name;
      const oid = same.get(dir + (t as ShardedTensor).shard);
      if (oid) {
        // the same object on both sides: equal by construction (the hash names the object, not the bytes)
        yield { name, dtype: t.dtype, shape: t.shape, hash: `object ${oid} ${name}`, lsh: [], load: async () => { throw new ThetaError('E_INTERNAL', `tensor '${name}' of an unchanged shard was asked for`, { tensor: name }); } };
        continue;
      }
      if (again) {
        const h = kernels.contentHasher();
        for await (const c of t.chunks()) h.update(c);
        yield { name, dtype: t.dtype, shape: t.shape, hash: h.digest(), lsh: [], load: () => again.load(name) };
        continue;
      }
      const bytes = await t.bytes();
      yield { name, dtype: t.dtype, shape: t.shape, hash: hashOf(kernels, bytes), lsh: [], load: async () => bytes };
    }
  } finally {
    await reader.close();
  }
}

/** The diff of one sharded model between two sides (null = absent on that side). */
export async function diffShardedSides(
  store: ObjectStore, kernels: Kernels, index: string, a: ShardedSide | null, b: ShardedSide | null, select: TensorSelection, what: string,
): Promise<ModelDiff & { format: string }> {
  const pa = pointers(a), pb = pointers(b);
  const same = new Map<string, string>();
  for (const [p, x] of pa) if (pb.get(p)?.oid === x.oid) same.set(p, x.oid);
  if (!select) {
    // every tensor of the changed shards compared: their objects downloaded whole (verified) in one batch
    await prefetchObjects(store, [...pa, ...pb].filter(([p]) => !same.has(p)).map(([, x]) => x));
  }
  const dir = shardDir(index);
  const shardReader = (s: ObjectStore, pointer: LfsPointer, path: string) =>
    select || same.has(path) ? lfsShardPartial(s, pointer, path) : lfsObjectReader(s, pointer, path);
  const open = async (side: ShardedSide) =>
    selectTensors(await openShardedBlobs(store, side.blob, index, async (p) => side.shards.get(p) ?? null, shardReader), select);
  let format = 'unknown';
  const older: DiffTensor[] = [];
  // without a selection the older side is kept as hashes (modified tensors read again); with one, as bytes
  const again = a && !select ? rereader(() => open(a), what) : undefined;
  try {
    if (a) {
      const ra = await open(a);
      format = ra.format;
      for await (const t of shardedDiffTensors(kernels, ra, dir, same, again)) older.push(t);
    }
    const rb = b ? await open(b) : null;
    if (rb) format = rb.format;
    const d = await diffModels(older, rb ? shardedDiffTensors(kernels, rb, dir, same) : [], { kernels });
    return { format, ...d };
  } finally {
    await again?.close();
  }
}

type Rev = { ref: string; commit: string };

async function sideAt(c: RepoContext, rev: Rev, index: string): Promise<ShardedSide | null> {
  const b = await readBlobAt(c, rev.commit, index);
  const paths = b && shardPathsOf(index, b.blob);
  if (!b || !paths) return null;
  const shards = new Map<string, Uint8Array | null>();
  for (const p of paths) shards.set(p, (await readBlobAt(c, rev.commit, p))?.blob ?? null);
  return { blob: b.blob, shards };
}

/**
 * diffRevisions' sharded models: those among the changed paths (an index, or a shard an index lists
 * at either revision), each diffed as one model; `covered` are the index and shard paths they stand for.
 */
export async function diffShardedAt(c: RepoContext, from: Rev, to: Rev, changed: Set<string>, approx: boolean, select: TensorSelection): Promise<{ diff: () => Promise<FileDiff[]>; covered: Set<string> }> {
  const covered = new Set<string>();
  const models: { index: string; a: ShardedSide | null; b: ShardedSide | null }[] = [];
  const indexes = new Set<string>();
  for (const rev of [from, to]) for await (const f of treeFiles(c, rev.commit)) if (isShardIndexName(f.path)) indexes.add(f.path);
  for (const index of [...indexes].sort()) {
    const a = await sideAt(c, from, index);
    const b = await sideAt(c, to, index);
    const shards = new Set([...(a?.shards.keys() ?? []), ...(b?.shards.keys() ?? [])]);
    if (!shards.size || (!changed.has(index) && ![...shards].some((s) => changed.has(s)))) continue;
    if (!allShardsLfs([a, b])) continue;
    models.push({ index, a, b });
    covered.add(index);
    for (const s of shards) covered.add(s);
  }
  // the diffs themselves run when asked (after the other files', as the CLI orders them)
  const diff = async () => {
    const diffs: FileDiff[] = [];
    for (const { index, a, b } of models) {
      if (approx) throw new ThetaError('E_APPROX_NEEDS_METADATA', `--approx cannot answer for ${index} at ${from.ref}: git-lfs stores its shards as whole files, with none of the per-tensor signatures --approx reads; diff without approx`, { path: index, rev: from.ref });
      const d = await diffShardedSides(c.store, c.kernels, index, a, b, select, `${from.ref}:${index}`);
      diffs.push({ path: index, format: d.format, from: from.ref, to: to.ref, approx: d.approx, tensors: d.tensors, summary: d.summary });
    }
    return diffs;
  };
  return { diff, covered };
}

