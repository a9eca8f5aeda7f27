/**
 * The local object store, in git-lfs's layout so git-lfs tooling (and `git lfs push`) sees our
 * objects as its own:
 *
 *   <lfsDir>/objects/<oid[0:2]>/<oid[2:4]>/<oid>   the object's bytes
 *   <lfsDir>/tmp/                                  files being written
 *
 * where lfsDir is normally `<gitdir>/lfs`. Objects are written to a temp file while being hashed,
 * then renamed into place (atomic on one file system), and verified against their id on every read.
 * The file system is injected (StoreFs), so this file runs in any runtime.
 */
import { ArgumentError, ObjectCorruptError, ObjectMissingError } from '../core/errors.ts';
import { createSha256, toHex } from '../core/sha256.ts';
import { assertOid, type DeferredPuts, type ObjectStore, type Oid, type PutResult, type StoreFs } from './types.ts';

/** Default read chunk: large enough to amortise the per-call cost, small enough to stream multi-GB objects. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

const HEX2 = /^[0-9a-f]{2}$/;

export interface LocalStoreOptions {
  fs: StoreFs;
  /** The git-lfs directory, normally `<gitdir>/lfs` (objects go under `objects/`, temp files under `tmp/`). */
  lfsDir: string;
  /** Bytes deferred puts may hold at a time (default DEFERRED_MAX_PENDING). */
  deferredMaxPending?: number;
}

export interface LocalObjectStore extends ObjectStore, DeferredPuts {
  readonly lfsDir: string;
  /** Where an object lives (the oid is validated first). */
  objectPath(oid: Oid): string;
}

/**
 * Deferred puts (types.ts DeferredPuts) take arrays up to this size (larger ones are written at
 * once: their copy would cost more than the file system's wait), and hold at most this many
 * bytes of copies at a time (a put waits for the oldest writes beyond it).
 */
export const DEFERRED_MAX_OBJECT = 4 << 20;
export const DEFERRED_MAX_PENDING = 64 << 20;

/** `<lfsDir>/objects/aa/bb/<oid>` for a validated oid. */
export function lfsObjectPath(lfsDir: string, oid: Oid): string {
  assertOid(oid);
  return `${trimSlash(lfsDir)}/objects/${oid.slice(0, 2)}/${oid.slice(2, 4)}/${oid}`;
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

function parentOf(p: string): string {
  return p.slice(0, p.lastIndexOf('/'));
}

function randomName(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return toHex(b);
}

async function* chunksOf(data: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array): AsyncIterable<Uint8Array> {
  if (data instanceof Uint8Array) { yield data; return; }
  if (Symbol.asyncIterator in data) { yield* data as AsyncIterable<Uint8Array>; return; }
  yield* data as Iterable<Uint8Array>;
}

export function createLocalStore(options: LocalStoreOptions): LocalObjectStore {
  const { fs } = options;
  if (!fs) throw new ArgumentError('createLocalStore: `fs` is required');
  if (typeof options.lfsDir !== 'string' || !options.lfsDir) throw new ArgumentError('createLocalStore: `lfsDir` is required');
  const lfsDir = trimSlash(options.lfsDir);
  const tmpDir = `${lfsDir}/tmp`;
  const objectsDir = `${lfsDir}/objects`;
  const objectPath = (oid: Oid) => lfsObjectPath(lfsDir, oid);
  // temp names: one random prefix per store, then a counter (no random draw per object)
  const tmpPrefix = `theta-${randomName()}`;
  let tmpCount = 0;

  // deferred puts: their writes by oid, the bytes they hold, the first failure (thrown by flush)
  const pending = new Map<Oid, Promise<void>>();
  const maxPending = options.deferredMaxPending ?? DEFERRED_MAX_PENDING;
  let pendingBytes = 0;
  let failure: unknown = null;
  /** A pending write of this object has finished (or failed: then its failure is thrown). */
  async function settled(oid: Oid): Promise<void> {
    const p = pending.get(oid);
    if (!p) return;
    await p;
    if (failure) throw failure;
  }

  async function statObject(oid: Oid) {
    await settled(oid);
    const path = objectPath(oid);
    const st = await fs.stat(path);
    if (!st || !st.isFile) throw new ObjectMissingError(oid, path);
    return { path, size: st.size };
  }

  const store: LocalObjectStore = {
    lfsDir,
    objectPath,

    async has(oid) {
      if (pending.has(oid)) return true; // being written (a failure is thrown by flush)
      const st = await fs.stat(objectPath(oid));
      return !!st && st.isFile;
    },

    async put(data, expect): Promise<PutResult> {
      await fs.mkdirp(tmpDir);
      const tmp = `${tmpDir}/${tmpPrefix}-${(tmpCount++).toString(36)}.tmp`;
      const w = await fs.createWrite(tmp);
      const h = createSha256();
      let size = 0;
      let open = true;
      try {
        for await (const chunk of chunksOf(data)) {
          if (!chunk.length) continue;
          h.update(chunk);
          await w.write(chunk);
          size += chunk.length;
        }
        open = false;
        await w.close();
        const oid = h.digestHex();
        if (expect !== undefined && oid !== expect) throw new ObjectCorruptError(expect, oid, 'not stored');
        const path = objectPath(oid);
        const existing = await fs.stat(path);
        if (existing?.isFile && existing.size === size) {
          // Same id, same size: already stored (identical content by construction). Leave it be.
          await fs.unlink(tmp);
        } else {
          // Absent, or a wrong-sized (damaged) file under this name: replace it atomically.
          await fs.mkdirp(parentOf(path));
          await fs.rename(tmp, path);
        }
        return { oid, size };
      } catch (e) {
        if (open) await w.close().catch(() => {});
        await fs.unlink(tmp).catch(() => false);
        throw e;
      }
    },

    async putDeferred(bytes) {
      if (!fs.writeNew || bytes.length > DEFERRED_MAX_OBJECT) return store.put(bytes);
      if (failure) throw failure;
      const oid = createSha256().update(bytes).digestHex();
      const size = bytes.length;
      if (pending.has(oid)) return { oid, size };
      const path = objectPath(oid);
      const existing = await fs.stat(path);
      if (existing?.isFile && existing.size === size) return { oid, size }; // already stored
      while (pendingBytes + size > maxPending && pending.size) await Promise.race(pending.values());
      // from here to pending.set nothing awaits: the budget check and the reservation are one step
      if (pending.has(oid)) return { oid, size };
      const tmp = `${tmpDir}/${tmpPrefix}-${(tmpCount++).toString(36)}.tmp`;
      const copy = bytes.slice();
      const write = fs.writeNew;
      pendingBytes += size;
      const job = (async () => {
        await fs.mkdirp(tmpDir);
        await write(tmp, path, copy);
      })().then(
        () => {},
        (e) => { failure ??= e; },
      ).finally(() => {
        pending.delete(oid);
        pendingBytes -= size;
      });
      pending.set(oid, job);
      return { oid, size };
    },

    async flush() {
      while (pending.size) await Promise.all(pending.values());
      if (failure) {
        const e = failure;
        failure = null;
        throw e;
      }
    },

    async get(oid) {
      const { path } = await statObject(oid);
      const bytes = await fs.readFile(path);
      const actual = createSha256().update(bytes).digestHex();
      if (actual !== oid) throw new ObjectCorruptError(oid, actual, path);
      return bytes;
    },

    async readRanges(oid, ranges) {
      const { path } = await statObject(oid);
      const r = await fs.openRead(path);
      try {
        const out: Uint8Array[] = [];
        for (const { offset, length } of ranges) out.push(await r.read(offset, length));
        return out;
      } finally {
        await r.close();
      }
    },

    getChunks(oid, chunkBytes = DEFAULT_CHUNK_BYTES) {
      assertOid(oid);
      if (!Number.isInteger(chunkBytes) || chunkBytes <= 0) {
        throw new ArgumentError(`getChunks: chunkBytes must be a positive integer, got ${chunkBytes}`, { chunkBytes });
      }
      return (async function* () {
        const { path } = await statObject(oid);
        const r = await fs.openRead(path);
        const h = createSha256();
        try {
          let off = 0;
          while (off < r.size) {
            const part = await r.read(off, Math.min(chunkBytes, r.size - off));
            if (!part.length) break;
            h.update(part);
            off += part.length;
            yield part;
          }
        } finally {
          await r.close();
        }
        const actual = h.digestHex();
        if (actual !== oid) throw new ObjectCorruptError(oid, actual, path);
      })();
    },

    async size(oid) {
      return (await statObject(oid)).size;
    },

    async delete(oid) {
      await pending.get(oid);
      return fs.unlink(objectPath(oid));
    },

    async *list() {
      while (pending.size) await Promise.all(pending.values());
      for (const a of (await fs.readdir(objectsDir)).sort()) {
        if (!HEX2.test(a)) continue;
        for (const b of (await fs.readdir(`${objectsDir}/${a}`)).sort()) {
          if (!HEX2.test(b)) continue;
          for (const name of (await fs.readdir(`${objectsDir}/${a}/${b}`)).sort()) {
            if (name.length === 64 && name.startsWith(a + b) && /^[0-9a-f]{64}$/.test(name)) yield name;
          }
        }
      }
    },
  };
  return store;
}
