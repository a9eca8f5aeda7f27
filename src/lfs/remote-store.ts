/**
 * An object store that is local first and downloads what it lacks. Reads go to the local store;
 * an object that is not there is fetched through a downloader (the LFS client, or a copy from
 * another local store) into the local store, verified, and then read from there. `prefetch(refs)`
 * fetches many objects in batched requests before they are read one by one (smudge calls it with
 * every object a file needs), so a checkout costs a few batch requests, not one per tensor.
 *
 * The downloader is created lazily: nothing is read or contacted until an object is missing.
 */
import { ThetaError } from '../core/errors.ts';
import type { RandomAccessSource } from '../core/io.ts';
import { LfsTransferError, type LfsObject, type LfsTransferResult } from './client.ts';
import { newFetchCount, rangedObjectSource, type FetchCount } from './ranged-object.ts';
import { assertOid, type ObjectStore, type Oid } from '../store/types.ts';

/** What a remote store needs from a transfer client (LfsClient has this shape). */
export interface ObjectDownloader {
  download(objects: LfsObject[], into: ObjectStore): Promise<LfsTransferResult>;
  /** GETs on one object's download href with a Range header (LfsClient has it; a local-path remote has not). */
  rangeGetter?(x: LfsObject): Promise<(range: string | null) => Promise<Response>>;
}

export interface RemoteStoreOptions {
  /**
   * The downloader, or a function that makes one on first need (null = no remote is known; a
   * missing object is then an ObjectMissingError as with a plain local store).
   */
  remote: ObjectDownloader | null | (() => Promise<ObjectDownloader | null>);
  /** Called after objects were downloaded (e.g. to print a summary). */
  onDownloaded?: (result: LfsTransferResult) => void;
}

export interface RemoteStoreExtras {
  /**
   * Download, in batches, every object of `refs` the local store lacks. Resolves to the result
   * (null when nothing was missing or no remote is known). Objects that failed one by one (not on
   * the server, corrupt) do not reject it: each is remembered and reading it throws that error
   * (so the reader can name what needed it) without asking the server again. A failed request
   * as a whole (server down, auth) rejects.
   */
  prefetch(refs: LfsObject[]): Promise<LfsTransferResult | null>;
  /** Remember objects' sizes (the batch API wants a size; objects read without one are asked for with size 0). */
  hint(refs: LfsObject[]): void;
  /** The local store underneath. */
  readonly local: ObjectStore;
  /** Bytes downloaded so far (whole objects and ranged reads), for reports such as `diff --json`. */
  readonly fetched: FetchCount;
  /**
   * Random access to an object that is not in the local store, by HTTP Range requests (see
   * ranged-object.ts: nothing is stored; a server ignoring Range makes it a whole, verified
   * download). null when the object is local, or no remote that can serve ranges is known: read it
   * through the store then.
   */
  openRanged(ref: LfsObject): Promise<(RandomAccessSource & { readonly ranged: boolean }) | null>;
}

export type RemoteObjectStore<S extends ObjectStore = ObjectStore> = S & RemoteStoreExtras;

/**
 * Wrap `local` (any ObjectStore; its other properties, e.g. `lfsDir`, stay reachable) so missing
 * objects are downloaded on demand.
 */
export function createRemoteStore<S extends ObjectStore>(local: S, options: RemoteStoreOptions): RemoteObjectStore<S> {
  if (!local) throw new ThetaError('E_ARGUMENT', 'createRemoteStore: `local` is required', {});
  const sizes = new Map<Oid, number>();
  const inflight = new Map<Oid, Promise<void>>();
  const failed = new Map<Oid, ThetaError>();
  let downloader: Promise<ObjectDownloader | null> | null = null;
  const fetched = newFetchCount();

  const getDownloader = (): Promise<ObjectDownloader | null> => {
    if (!downloader) {
      const r = options.remote;
      downloader = typeof r === 'function' ? r() : Promise.resolve(r);
      downloader.catch(() => (downloader = null)); // a failed set-up may be retried later
    }
    return downloader;
  };

  async function fetchMissing(refs: LfsObject[]): Promise<LfsTransferResult | null> {
    const missing: LfsObject[] = [];
    const waits: Promise<void>[] = [];
    const seen = new Set<Oid>();
    for (const r of refs) {
      assertOid(r.oid);
      if (seen.has(r.oid)) continue;
      seen.add(r.oid);
      if (r.size > 0) sizes.set(r.oid, r.size);
      const running = inflight.get(r.oid);
      if (running) { waits.push(running); continue; }
      if (failed.has(r.oid)) continue;
      if (!(await local.has(r.oid))) missing.push({ ...r, size: r.size || sizes.get(r.oid) || 0 });
    }
    let result: LfsTransferResult | null = null;
    if (missing.length) {
      const job = (async () => {
        const d = await getDownloader();
        if (!d) return; // no remote: reads fail as they would on the local store
        try {
          result = await d.download(missing, local);
          fetched.bytes += result!.bytes;
          fetched.wholeObjects += result!.transferred.length;
          options.onDownloaded?.(result);
        } catch (e) {
          if (!(e instanceof LfsTransferError)) throw e;
          for (const f of e.failures) {
            failed.set(f.oid, new ThetaError(f.code, f.message.includes(f.oid) ? f.message : `object ${f.oid}: ${f.message}`, { oid: f.oid, status: f.status }));
          }
        }
      })();
      const settled = job.then(() => {}, () => {});
      for (const m of missing) inflight.set(m.oid, settled);
      try {
        await job;
      } finally {
        for (const m of missing) if (inflight.get(m.oid) === settled) inflight.delete(m.oid);
      }
    }
    await Promise.all(waits);
    return result;
  }

  async function ensure(oid: Oid): Promise<void> {
    assertOid(oid);
    if (await local.has(oid)) return;
    if (!failed.has(oid)) await fetchMissing([{ oid, size: sizes.get(oid) ?? 0 }]);
    const err = failed.get(oid);
    if (err) throw err;
    // still absent (no remote known): the local store's own ObjectMissingError follows
  }

  /** A downloaded (verified) local object read at offsets. */
  const localSource = (ref: LfsObject): RandomAccessSource => {
    let all: Promise<Uint8Array> | null = null;
    return {
      name: ref.name ?? ref.oid,
      size: ref.size,
      async read(offset, length) {
        if (local.readRanges) return (await local.readRanges(ref.oid, [{ offset, length: Math.min(length, ref.size - offset) }]))[0]!;
        all ??= local.get(ref.oid);
        return (await all).subarray(offset, offset + length);
      },
    };
  };

  const extras: RemoteStoreExtras & Partial<ObjectStore> = {
    local,
    fetched,
    async openRanged(ref) {
      assertOid(ref.oid);
      if (!(ref.size > 0) || (await local.has(ref.oid)) || failed.has(ref.oid)) return null;
      const d = await getDownloader();
      if (!d?.rangeGetter) return null;
      const get = await d.rangeGetter(ref);
      return rangedObjectSource({
        oid: ref.oid, size: ref.size, name: ref.name ?? ref.oid, get, count: fetched,
        whole: async (body) => {
          const put = await local.put(body);
          if (put.oid !== ref.oid) throw new ThetaError('E_OBJECT_CORRUPT', `object ${ref.oid} was stored as ${put.oid}`, { oid: ref.oid });
          return localSource(ref);
        },
      });
    },
    prefetch: (refs) => fetchMissing(refs),
    hint(refs) {
      for (const r of refs) if (r.size > 0) sizes.set(r.oid, r.size);
    },
    async get(oid) {
      await ensure(oid);
      return local.get(oid);
    },
    getChunks(oid, chunkBytes) {
      return (async function* () {
        await ensure(oid);
        yield* local.getChunks(oid, chunkBytes);
      })();
    },
    async size(oid) {
      await ensure(oid);
      return local.size(oid);
    },
  };
  // Everything else (has, put, delete, list, lfsDir, objectPath, ...) is the local store's.
  return Object.assign(Object.create(local), extras) as RemoteObjectStore<S>;
}
