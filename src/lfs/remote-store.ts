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

/** `local` whose `put` reports each object stored (by its id) to `stored`. */
function storedOneByOne(local: ObjectStore, stored: (oid: Oid) => void): ObjectStore {
  const into = Object.create(local) as ObjectStore;
  into.put = async (data, expect) => {
    const r = await local.put(data, expect);
    stored(r.oid);
    return r;
  };
  return into;
}

/**
 * Wrap `local` (any ObjectStore; its other properties, e.g. `lfsDir`, stay reachable) so missing
 * objects are downloaded on demand.
 */
export function createRemoteStore<S extends ObjectStore>(local: S, options: RemoteStoreOptions): RemoteObjectStore<S> {
  if (!local) throw new ThetaError('E_ARGUMENT', 'createRemoteStore: `local` is required', {});
  const sizes = new Map<Oid, number>();
  const inflight = new Map<Oid, Promise<unknown>>(); // settles with null, or the error that ended a whole download
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

  /**
   * Each object being downloaded has its own promise in `inflight`, settled as soon as that object
   * is stored (or its download is over, failed or not): a reader waits for the object it needs,
   * not for the whole batch, so a checkout can write a file's first tensors while its later ones
   * are still downloading. When the download failed as a whole (server down, auth), the promise
   * settles with that error, and those who waited get it instead of asking the server again.
   */
  async function fetchMissing(refs: LfsObject[]): Promise<LfsTransferResult | null> {
    const waits: Promise<unknown>[] = [];
    const mine = new Map<Oid, { ref: LfsObject; settle: (err: unknown) => void }>();
    for (const r of refs) {
      assertOid(r.oid);
      if (r.size > 0) sizes.set(r.oid, r.size);
      if (mine.has(r.oid)) continue;
      const running = inflight.get(r.oid);
      if (running) { waits.push(running); continue; }
      if (failed.has(r.oid)) continue;
      // claimed before the first await: a reader asking meanwhile waits instead of downloading it again
      let settle!: (err: unknown) => void;
      inflight.set(r.oid, new Promise<unknown>((res) => (settle = res)));
      mine.set(r.oid, { ref: r, settle });
    }
    const release = (oid: Oid, err: unknown = null) => {
      const m = mine.get(oid);
      if (!m) return;
      mine.delete(oid);
      inflight.delete(oid);
      m.settle(err);
    };
    const missing: LfsObject[] = [];
    let result: LfsTransferResult | null = null;
    let whole: unknown = null;
    try {
      for (const { ref } of [...mine.values()]) {
        if (await local.has(ref.oid)) release(ref.oid);
        else missing.push({ ...ref, size: ref.size || sizes.get(ref.oid) || 0 });
      }
      if (missing.length) {
        const d = await getDownloader();
        if (d) { // no remote: reads fail as they would on the local store
          try {
            result = await d.download(missing, storedOneByOne(local, (oid) => release(oid)));
            fetched.bytes += result!.bytes;
            fetched.wholeObjects += result!.transferred.length;
            options.onDownloaded?.(result);
          } catch (e) {
            if (!(e instanceof LfsTransferError)) throw e;
            for (const f of e.failures) {
              failed.set(f.oid, new ThetaError(f.code, f.message.includes(f.oid) ? f.message : `object ${f.oid}: ${f.message}`, { oid: f.oid, status: f.status }));
            }
          }
        }
      }
    } catch (e) {
      whole = e;
      throw e;
    } finally {
      for (const oid of [...mine.keys()]) release(oid, whole);
    }
    const ended = await Promise.all(waits);
    const err = ended.find((x) => x);
    if (err) throw err;
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
    // partial reads never download (they are for heuristics), but wait for an object on its way
    ...(local.readRanges ? {
      async readRanges(oid: Oid, ranges: { offset: number; length: number }[]) {
        const err = await inflight.get(oid);
        if (err) throw err;
        return local.readRanges!(oid, ranges);
      },
    } : {}),
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

/**
 * `work` (a rebuild reading objects) run while `fetching` (a prefetch of those objects) goes on.
 * When both fail, the fetch's error is thrown: a request that failed as a whole (server down,
 * auth) says more than the read that then found no object.
 */
export async function whileFetching<T>(fetching: Promise<unknown> | undefined, work: () => Promise<T>): Promise<T> {
  if (!fetching) return work();
  fetching.catch(() => {}); // awaited below, whichever way work ends
  let out: T;
  try {
    out = await work();
  } catch (e) {
    await fetching;
    throw e;
  }
  await fetching;
  return out;
}
