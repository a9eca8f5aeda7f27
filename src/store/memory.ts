/**
 * An in-memory StoreFs (tests, browsers without a file system) and a local store on top of it.
 * It behaves like a POSIX file system for what the store needs: parent directories must exist,
 * createWrite fails on an existing file, rename replaces.
 */
import { createLocalStore, type LocalObjectStore } from './local.ts';
import type { StoreFs, StoreReadHandle, StoreStat, StoreWriteHandle } from './types.ts';

export interface MemoryFs extends StoreFs {
  /** Every file path, sorted (for tests). */
  files(): string[];
  /** Replace a file's bytes directly (tests use it to simulate corruption). */
  poke(path: string, bytes: Uint8Array): void;
}

class FsError extends Error {
  constructor(readonly code: string, op: string, path: string) {
    super(`${code}: ${op} '${path}'`);
  }
}

function norm(p: string): string {
  const parts: string[] = [];
  for (const s of p.split('/')) {
    if (!s || s === '.') continue;
    if (s === '..') parts.pop();
    else parts.push(s);
  }
  return '/' + parts.join('/');
}

function parent(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function memoryFs(): MemoryFs {
  const files = new Map<string, Uint8Array>();
  const dirs = new Set<string>(['/']);

  function needDir(path: string, op: string) {
    if (!dirs.has(parent(path))) throw new FsError('ENOENT', op, path);
  }
  function needFile(path: string, op: string): Uint8Array {
    const f = files.get(path);
    if (!f) throw new FsError(dirs.has(path) ? 'EISDIR' : 'ENOENT', op, path);
    return f;
  }

  return {
    async readFile(p) {
      return needFile(norm(p), 'readFile').slice();
    },
    async openRead(p): Promise<StoreReadHandle> {
      const data = needFile(norm(p), 'open');
      return {
        size: data.length,
        async read(offset, length) { return data.slice(offset, Math.min(data.length, offset + length)); },
        async close() {},
      };
    },
    async createWrite(p): Promise<StoreWriteHandle> {
      const path = norm(p);
      needDir(path, 'open');
      if (files.has(path) || dirs.has(path)) throw new FsError('EEXIST', 'open', path);
      let buf = new Uint8Array(0); // grows by doubling, so n writes cost O(total bytes)
      let len = 0;
      files.set(path, buf);
      let closed = false;
      return {
        async write(bytes) {
          if (closed) throw new FsError('EBADF', 'write', path);
          if (!files.has(path)) return; // unlinked while open: writes go nowhere, as on POSIX
          if (len + bytes.length > buf.length) {
            const next = new Uint8Array(Math.max(len + bytes.length, buf.length * 2, 1024));
            next.set(buf.subarray(0, len));
            buf = next;
          }
          buf.set(bytes, len);
          len += bytes.length;
          files.set(path, buf.subarray(0, len));
        },
        async close() { closed = true; },
      };
    },
    async mkdirp(p) {
      const path = norm(p);
      let cur = '';
      for (const s of path.split('/').filter(Boolean)) {
        cur += '/' + s;
        if (files.has(cur)) throw new FsError('ENOTDIR', 'mkdir', cur);
        dirs.add(cur);
      }
    },
    async rename(from, to) {
      const a = norm(from);
      const b = norm(to);
      const data = needFile(a, 'rename');
      needDir(b, 'rename');
      if (dirs.has(b)) throw new FsError('EISDIR', 'rename', b);
      files.delete(a);
      files.set(b, data);
    },
    async stat(p): Promise<StoreStat | null> {
      const path = norm(p);
      const f = files.get(path);
      if (f) return { size: f.length, isFile: true, isDirectory: false };
      if (dirs.has(path)) return { size: 0, isFile: false, isDirectory: true };
      return null;
    },
    async unlink(p) {
      const path = norm(p);
      if (dirs.has(path)) throw new FsError('EISDIR', 'unlink', path);
      return files.delete(path);
    },
    async readdir(p) {
      const path = norm(p);
      if (!dirs.has(path)) return [];
      const prefix = path === '/' ? '/' : path + '/';
      const out = new Set<string>();
      for (const k of [...files.keys(), ...dirs]) {
        if (k.startsWith(prefix) && k.length > prefix.length) out.add(k.slice(prefix.length).split('/')[0]!);
      }
      return [...out].sort();
    },
    files() {
      return [...files.keys()].sort();
    },
    poke(p, bytes) {
      const path = norm(p);
      needDir(path, 'poke');
      files.set(path, bytes.slice());
    },
  };
}

/** A git-lfs-layout store held in memory (lfsDir `/lfs` unless given). */
export function createMemoryStore(options: { fs?: MemoryFs; lfsDir?: string } = {}): LocalObjectStore & { fs: MemoryFs } {
  const fs = options.fs ?? memoryFs();
  return Object.assign(createLocalStore({ fs, lfsDir: options.lfsDir ?? '/lfs' }), { fs });
}
