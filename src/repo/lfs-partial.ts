/**
 * Reading only part of a git-lfs checkpoint: a diff (or read) restricted to some tensors opens an
 * object that is not in the local store by HTTP Range requests (src/lfs/ranged-object.ts), so
 * only its header and the selected tensors' bytes are downloaded; the formats skip the bytes of
 * tensors nobody reads. Any format read front to back works this way (safetensors, GGUF, NumPy);
 * a format that must see the whole file (zip-based PyTorch and npz, whose directory is at the
 * end) costs more requests but still reads only what it touches.
 *
 * Without a selection every tensor is compared, so both objects are read whole anyway: those are
 * downloaded whole (SHA-256-verified, kept in the local store), not by ranges.
 * Runtime-neutral (no `node:*`).
 */
import { openOrClose, readerFromSource, type ByteReader, type RandomAccessSource } from '../core/io.ts';
import { sniffFormat, SNIFF_BYTES } from '../formats/registry.ts';
import type { CheckpointReader } from '../formats/types.ts';
import type { FetchCount } from '../lfs/ranged-object.ts';
import type { ObjectStore } from '../store/types.ts';
import { lfsObjectReader, openLfsObject, type PartialOpeners } from './lfs-pointer-model.ts';
import type { LfsPointer } from './model-blob.ts';

export { selectNamed, selectTensors, tensorSelection, type TensorSelection } from './tensor-selection.ts';
import type { TensorSelection } from './tensor-selection.ts';

type RangedStore = ObjectStore & { openRanged?(ref: { oid: string; size: number; name?: string }): Promise<(RandomAccessSource & { readonly ranged: boolean }) | null> };

/**
 * Random access to an LFS object for reading part of it: by Range requests when the store can
 * (a remote-backed store, the object not local), else null (read it through the store).
 */
export async function rangedSource(store: ObjectStore, pointer: LfsPointer, filepath: string): Promise<RandomAccessSource | null> {
  const s = store as RangedStore;
  return typeof s.openRanged === 'function' ? s.openRanged({ oid: pointer.oid, size: pointer.size, name: filepath }) : null;
}

/** Open the checkpoint in a random-access source (a ranged LFS object), its format from its first bytes. */
export async function openSourceCheckpoint(src: RandomAccessSource, filepath: string): Promise<CheckpointReader> {
  const head = await src.read(0, Math.min(SNIFF_BYTES, src.size));
  const format = sniffFormat(head.slice(), filepath);
  return openOrClose(readerFromSource(src), (r) => format.open(r, { fileName: filepath }));
}

/** What the store downloaded so far (null for a store that downloads nothing). */
export function fetchedBy(store: ObjectStore): FetchCount | null {
  const f = (store as ObjectStore & { fetched?: FetchCount }).fetched;
  return f ? { ...f } : null;
}

/** The difference of two fetch counts (what one command downloaded). */
export function fetchedSince(store: ObjectStore, before: FetchCount | null): FetchCount | null {
  const now = fetchedBy(store);
  if (!now) return null;
  const b = before ?? { bytes: 0, rangeRequests: 0, wholeObjects: 0, verified: 0 };
  return { bytes: now.bytes - b.bytes, rangeRequests: now.rangeRequests - b.rangeRequests, wholeObjects: now.wholeObjects - b.wholeObjects, verified: now.verified - b.verified };
}

/** An LFS object's checkpoint for reading part of it: by ranges when not local, else through the store. */
export async function openLfsPartial(store: ObjectStore, pointer: LfsPointer, filepath: string): Promise<CheckpointReader> {
  const src = await rangedSource(store, pointer, filepath);
  return src ? openSourceCheckpoint(src, filepath) : openLfsObject(store, pointer, filepath);
}

/** A sharded model's shard bytes for reading part of them: by ranges when not local. */
export async function lfsShardPartial(store: ObjectStore, pointer: LfsPointer, path: string): Promise<ByteReader> {
  const src = await rangedSource(store, pointer, path);
  return src ? readerFromSource(src) : lfsObjectReader(store, pointer, path);
}

/** The openers openLfsBlob takes to read part of an object. */
export const PARTIAL: PartialOpeners = { object: openLfsPartial, shard: lfsShardPartial };
