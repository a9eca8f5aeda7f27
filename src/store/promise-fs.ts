/**
 * The file system a repository function is given, as isomorphic-git takes it: an object with the
 * promise API (readFile, writeFile, unlink, readdir, mkdir, rmdir, stat, lstat, readlink, symlink,
 * chmod; our createMemFs, LightningFS's `.promises`) or an object whose enumerable `promises`
 * property is one (node:fs itself). Callback-only file systems are not supported here.
 *
 * `repoStoreFs` adapts it to the StoreFs a local object store needs, so objects live at
 * `<gitdir>/lfs/objects/aa/bb/<oid>` on the same file system as the repository.
 */
import { ArgumentError } from '../core/errors.ts';
import { readHandle } from './file-handle.ts';
import type { StoreFs, StoreReadHandle, StoreStat, StoreWriteHandle } from './types.ts';

// Loosely typed on purpose: node:fs, LightningFS and createMemFs all fit, with their overloads.
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface PromiseFsLike {
  readFile(path: string, options?: any): Promise<any>;
  writeFile(path: string, data: any, options?: any): Promise<any>;
  unlink(path: string): Promise<any>;
  readdir(path: string, options?: any): Promise<any>;
  mkdir(path: string, options?: any): Promise<any>;
  rmdir(path: string, options?: any): Promise<any>;
  stat(path: string, options?: any): Promise<any>;
  lstat(path: string, options?: any): Promise<any>;
  readlink?(path: string, options?: any): Promise<any>;
  symlink?(target: string, path: string, type?: any): Promise<any>;
  chmod?(path: string, mode: any): Promise<any>;
  rename?(from: string, to: string): Promise<any>;
  /** node:fs/promises only: random-access file handles (used for streaming objects when present). */
  open?(path: string, flags?: any, mode?: any): Promise<any>;
}

/** What the repository functions accept as `fs`: a promise-API file system, or node:fs (through its `promises`). */
export type RepoFs = PromiseFsLike | { promises: PromiseFsLike };

/** The promise API of `fs`, found the way isomorphic-git finds it (an enumerable own `promises`). */
export function promiseFs(fs: RepoFs): PromiseFsLike {
  const d = Object.getOwnPropertyDescriptor(fs, 'promises');
  const p = (d && d.enumerable ? (fs as { promises: PromiseFsLike }).promises : fs) as PromiseFsLike;
  for (const fn of ['readFile', 'writeFile', 'unlink', 'readdir', 'mkdir', 'rmdir', 'stat', 'lstat'] as const) {
    if (typeof p?.[fn] !== 'function') throw new ArgumentError(`fs: no ${fn}() (a promise-API file system, or node:fs, is required)`, { missing: fn });
  }
  return p;
}

const codeOf = (e: unknown): string => (e as { code?: unknown })?.code as string ?? '';
const isMissing = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes(codeOf(e));

/** Join path parts with '/', dropping empty parts and duplicate slashes (POSIX paths only). */
export function joinPath(...parts: string[]): string {
  const s = parts.filter((p) => p !== '').join('/');
  return s.replace(/\/{2,}/g, '/');
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function toBytes(x: unknown): Uint8Array {
  if (x instanceof Uint8Array) return x;
  if (typeof x === 'string') return new TextEncoder().encode(x);
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  throw new ArgumentError('fs.readFile returned neither bytes nor a string');
}

/** mkdir -p with only single-level mkdir calls (not every fs supports `recursive`). */
export async function mkdirp(p: PromiseFsLike, path: string): Promise<void> {
  try {
    const st = await p.stat(path);
    if (st.isDirectory()) return;
  } catch (e) {
    if (!isMissing(e)) throw e;
  }
  const parent = parentOf(path);
  if (parent !== path) await mkdirp(p, parent);
  try {
    await p.mkdir(path);
  } catch (e) {
    if (codeOf(e) !== 'EEXIST') throw e;
  }
}

/** The StoreFs over a repository's file system (for createLocalStore). */
export function repoStoreFs(fs: RepoFs): StoreFs {
  const p = promiseFs(fs);

  async function stat(path: string): Promise<StoreStat | null> {
    try {
      const st = await p.stat(path);
      return { size: Number(st.size), isFile: st.isFile(), isDirectory: st.isDirectory() };
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  return {
    async readFile(path) {
      return toBytes(await p.readFile(path));
    },

    async openRead(path): Promise<StoreReadHandle> {
      if (typeof p.open === 'function') {
        // node:fs/promises: read at offsets, so large objects stream without being loaded whole
        return readHandle(await p.open(path, 'r'));
      }
      const data = toBytes(await p.readFile(path));
      return {
        size: data.length,
        async read(offset, length) { return data.subarray(offset, Math.min(data.length, offset + length)); },
        async close() {},
      };
    },

    async createWrite(path): Promise<StoreWriteHandle> {
      if (typeof p.open === 'function') {
        const fh = await p.open(path, 'wx', 0o644);
        return {
          async write(bytes) {
            let off = 0;
            while (off < bytes.length) {
              const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
              off += bytesWritten;
            }
          },
          close: () => fh.close(),
        };
      }
      // Plain promise API: no appends, so the file is written whole on close (temp files only).
      if (await stat(path)) throw Object.assign(new Error(`EEXIST: open '${path}'`), { code: 'EEXIST' });
      await p.writeFile(path, new Uint8Array(0));
      const parts: Uint8Array[] = [];
      let n = 0;
      return {
        async write(bytes) { parts.push(bytes.slice()); n += bytes.length; },
        async close() {
          const out = new Uint8Array(n);
          let off = 0;
          for (const part of parts) { out.set(part, off); off += part.length; }
          parts.length = 0;
          await p.writeFile(path, out);
        },
      };
    },

    mkdirp: (path) => mkdirp(p, path),

    async rename(from, to) {
      if (typeof p.rename === 'function') {
        await p.rename(from, to);
        return;
      }
      // No rename on this fs: copy then remove (not atomic; such file systems are single-process).
      await p.writeFile(to, toBytes(await p.readFile(from)));
      await p.unlink(from);
    },

    stat,

    async unlink(path) {
      try {
        await p.unlink(path);
        return true;
      } catch (e) {
        if (isMissing(e)) return false;
        throw e;
      }
    },

    async readdir(path) {
      try {
        return (await p.readdir(path)) as string[];
      } catch (e) {
        if (isMissing(e)) return [];
        throw e;
      }
    },
  };
}
