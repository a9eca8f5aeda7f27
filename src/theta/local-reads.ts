/**
 * Checkout's reads of the objects it wrote itself. Every object in the local store was hashed
 * when it got there (our `put` hashes as it writes; downloads are checked against their SHA-256
 * by the LFS client, git-lfs checks its own), so SHA-256 again on every checkout only guards
 * against the disk changing bytes afterwards. That guard stays, at a fifth of the cost: a tensor
 * stored as one dense object is read without SHA-256 and compared with the 128-bit content hash
 * the metadata records for it (the Wasm hash runs ~5x faster than node's SHA-256 here).
 * Objects that are not local (fetched now), skeletons and update chains keep the verified path;
 * fetch, push and fsck never come through here.
 */
import { ThetaError, quoteName } from '../core/errors.ts';
import type { Kernels } from '../core/kernels.ts';
import type { UpdateStore } from '../updates/types.ts';
import type { ModelMetadata } from './metadata.ts';

/** A local object's bytes do not have the content hash its tensor's metadata records (the disk changed them). */
export class LocalObjectCorruptError extends ThetaError {
  constructor(tensor: string, oid: string) {
    super('E_OBJECT_CORRUPT', `tensor ${quoteName(tensor)}: object ${oid} is corrupt (its bytes do not match the tensor's recorded hash); delete it and fetch it again, or run 'git theta fsck'`, { tensor, oid });
    this.name = 'LocalObjectCorruptError';
  }
}

const CONTENT_HASH = /^[0-9a-f]{32}$/;

/**
 * `store` with the objects of single-dense tensors read unverified by SHA-256 and checked by
 * content hash instead. Stores without `readRanges` are returned as they are.
 */
export function contentCheckedReads(store: UpdateStore, metadata: ModelMetadata, kernels: Kernels): UpdateStore {
  const ranges = store.readRanges?.bind(store);
  if (!ranges) return store;
  const expect = new Map<string, { size: number; hash: string; tensor: string }>();
  for (const [name, e] of Object.entries(metadata.tensors)) {
    const step = e.chain.length === 1 ? e.chain[0] : undefined;
    const ref = step?.update === 'dense' ? (step.object as { oid?: unknown; size?: unknown } | undefined) : undefined;
    if (!ref || typeof ref.oid !== 'string' || typeof ref.size !== 'number' || ref.size !== e.bytes || !CONTENT_HASH.test(e.hash)) continue;
    expect.set(ref.oid, { size: ref.size, hash: e.hash, tensor: name });
  }
  return {
    put: (b) => store.put(b),
    readRanges: ranges,
    async get(oid) {
      const x = expect.get(oid);
      if (!x) return store.get(oid);
      let bytes: Uint8Array | undefined;
      try {
        [bytes] = await ranges(oid, [{ offset: 0, length: x.size }]);
      } catch {
        return store.get(oid); // not local (fetched and verified there), or unreadable: that path says why
      }
      // a short read: the object is not the size recorded; the dense update type names it
      if (!bytes || bytes.length !== x.size) return store.get(oid);
      const h = kernels.contentHasher();
      h.update(bytes);
      if (h.digest() !== x.hash) throw new LocalObjectCorruptError(x.tensor, oid);
      return bytes;
    },
  };
}
