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
  const take = (oid: string): Uint8Array | undefined => {
    const b = kept.get(oid);
    if (b) {
      kept.delete(oid);
      total -= b.length;
    }
    return b;
  };
  return {
    async put(bytes) {
      const ref = await store.put(bytes);
      if (bytes.length <= maxObject && total + bytes.length <= maxTotal && !kept.has(ref.oid)) {
        kept.set(ref.oid, bytes.slice());
        total += bytes.length;
      }
      return ref;
    },
    // a whole object is handed over, not copied: the caller may apply an update to it in place, so
    // it is forgotten here (a second read of the same object goes to the store)
    async get(oid) {
      return take(oid) ?? store.get(oid);
    },
    ...(ranges ? {
      async readRanges(oid: string, rs: { offset: number; length: number }[]) {
        const b = kept.get(oid);
        if (!b) return ranges(oid, rs);
        if (rs.length === 1 && rs[0].offset === 0 && rs[0].length >= b.length) return [take(oid)!];
        return rs.map(({ offset, length }) => b.slice(offset, Math.min(b.length, offset + length)));
      },
    } : {}),
  };
}
