/**
 * The objects one clean has just written, kept in memory for its recipe check (exact.ts) when they
 * are small: the check rebuilds the file from the objects, and reading thousands of small objects
 * back costs file-system calls per object (a model of 5,000 tensors: ~20,000 calls), while their
 * bytes were in hand a moment ago. What the check proves does not change: the bytes kept are the
 * very bytes `put` hashed into the object's id and wrote; they are copied, so a caller's reused
 * buffer cannot change them. Bounded (64 MiB in all, within the memory budget of ARCHITECTURE.md); the rest are read
 * from the store as before.
 */
import type { UpdateStore } from '../updates/types.ts';

export const RECENT_MAX_OBJECT = 64 << 20;
export const RECENT_MAX_TOTAL = 64 << 20;

export function withRecentObjects(store: UpdateStore, o: { maxObject?: number; maxTotal?: number } = {}): UpdateStore {
  const maxObject = o.maxObject ?? RECENT_MAX_OBJECT;
  const maxTotal = o.maxTotal ?? RECENT_MAX_TOTAL;
  const kept = new Map<string, Uint8Array>();
  let total = 0;
  const ranges = store.readRanges?.bind(store);
  return {
    async put(bytes) {
      const ref = await store.put(bytes);
      if (bytes.length <= maxObject && total + bytes.length <= maxTotal && !kept.has(ref.oid)) {
        kept.set(ref.oid, bytes.slice());
        total += bytes.length;
      }
      return ref;
    },
    // copies out, too: a rebuild may apply an update in place on the bytes it is given
    async get(oid) {
      return kept.get(oid)?.slice() ?? store.get(oid);
    },
    ...(ranges ? {
      async readRanges(oid: string, rs: { offset: number; length: number }[]) {
        const b = kept.get(oid);
        return b ? rs.map(({ offset, length }) => b.slice(offset, Math.min(b.length, offset + length))) : ranges(oid, rs);
      },
    } : {}),
  };
}
