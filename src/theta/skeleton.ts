/**
 * The skeleton (a file's non-tensor bytes: zip headers and CRCs, pickle, JSON headers) versioned
 * like a tensor. A PyTorch training checkpoint with hundreds of entries has a skeleton of hundreds
 * of KB that changes in a few places per commit (the CRC-32s of changed members); storing it whole
 * each time would cost more than the changed tensor. So when it has the same size as the previous
 * version's, it is stored as a sparse update over bytes against that version (the same `sparse`
 * update type tensors use): the metadata keeps `skeleton` (the dense object the chain starts from)
 * and `skeleton_delta` (the steps after it, with the skeleton's content hash and size). Chains are
 * capped like tensor chains; past the cap, or when sparse does not pay, the skeleton is stored dense.
 *
 * A document with `skeleton_delta` is written as metadata version 2, so a git-theta that does not
 * know deltas refuses it ("upgrade git-theta") instead of rebuilding from the base skeleton alone.
 */
import type { Kernels } from '../core/kernels.ts';
import { getUpdateType } from '../updates/index.ts';
import type { UpdateStore } from '../updates/types.ts';
import type { ModelMetadata, ObjectRef, SkeletonDelta, TensorEntry } from './metadata.ts';
import { contentHash, rebuildTensor } from './rebuild.ts';

const NAME = '<skeleton>';

/** The skeleton as a U8 tensor entry: the dense base object, then the delta's steps. */
function skeletonEntry(m: Pick<ModelMetadata, 'skeleton' | 'skeleton_delta'>): TensorEntry {
  const d = m.skeleton_delta;
  const size = d ? d.size : m.skeleton.size;
  return {
    dtype: 'U8', shape: [size], bytes: size, hash: d?.hash ?? '', lsh: [], update: d ? d.chain[d.chain.length - 1].update : 'dense',
    chain: [{ update: 'dense', object: m.skeleton }, ...(d?.chain ?? [])],
  };
}

/** The skeleton's bytes (rebuilt from its base and delta when it has one, verified by its hash). */
export async function readSkeleton(m: Pick<ModelMetadata, 'skeleton' | 'skeleton_delta'>, store: UpdateStore, kernels: Kernels): Promise<Uint8Array> {
  if (!m.skeleton_delta) return store.get(m.skeleton.oid);
  return rebuildTensor(NAME, skeletonEntry(m), store, kernels);
}

/** Objects of the delta steps (the base is `skeleton`). */
export function skeletonDeltaObjects(d: SkeletonDelta): ObjectRef[] {
  const out: ObjectRef[] = [];
  for (const step of d.chain) for (const v of Object.values(step)) if (v && typeof v === 'object' && typeof (v as ObjectRef).oid === 'string') out.push(v as ObjectRef);
  return out;
}

/** A delta pays when its objects are at most this fraction of the skeleton. */
const DELTA_MAX_FRACTION = 0.5;

/**
 * Store a new version's skeleton: reuse the previous one when the bytes are equal, a sparse delta
 * against it when that is small, else a dense object.
 */
export async function storeSkeleton(
  bytes: Uint8Array, previous: ModelMetadata | null, store: UpdateStore, kernels: Kernels, chainCap: number,
): Promise<Pick<ModelMetadata, 'skeleton' | 'skeleton_delta'>> {
  const dense = async () => ({ skeleton: await store.put(bytes) });
  const prevSize = previous ? (previous.skeleton_delta?.size ?? previous.skeleton.size) : -1;
  if (!previous || prevSize !== bytes.length || bytes.length < 1024) return dense();
  const depth = previous.skeleton_delta?.chain.length ?? 0;
  if (depth + 1 >= chainCap) return dense();
  let prev: Uint8Array;
  try {
    prev = await readSkeleton(previous, store, kernels);
  } catch {
    return dense(); // the previous objects are not here (a partial clone): nothing to build on
  }
  let same = prev.length === bytes.length;
  for (let i = 0; same && i < bytes.length; i++) same = prev[i] === bytes[i];
  if (same) return { skeleton: previous.skeleton, ...(previous.skeleton_delta ? { skeleton_delta: previous.skeleton_delta } : {}) };
  const step = await getUpdateType('sparse').encode({
    name: NAME, dtype: 'U8', shape: [bytes.length], next: bytes, prev: async () => prev, side: new Map(), store, kernels,
  });
  if (!step) return dense();
  const cost = skeletonDeltaObjects({ hash: '', size: 0, chain: [step] }).reduce((n, r) => n + r.size, 0);
  if (cost > DELTA_MAX_FRACTION * bytes.length) return dense();
  return {
    skeleton: previous.skeleton,
    skeleton_delta: { hash: contentHash(kernels, bytes), size: bytes.length, chain: [...(previous.skeleton_delta?.chain ?? []), step] },
  };
}
