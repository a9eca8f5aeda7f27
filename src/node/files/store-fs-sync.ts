/**
 * The object store's file system on node:fs's synchronous calls, behind the StoreFs promise API.
 * A model of 5,000 tensors costs the store ~10 file-system calls per object (mkdir, open, write,
 * close, stat, rename, and the recipe check's reads): through node:fs/promises each one is a round
 * trip through libuv's thread pool and the event loop, which on a busy 2-core machine left the
 * filter waiting 14 of 20 s (`git add` of the many-tensor set in bench/git.ts). The calls are
 * short (page cache) and the filter and CLI handle one file at a time, so doing them in place is
 * cheaper; reads and writes of 1 MiB or more stay asynchronous, and so does `writeNew` (a deferred
 * put's whole object file, see store/local.ts). Directories made once are remembered (and made
 * again if something removed them).
 */
import {
  closeSync, fstatSync, mkdirSync, openSync, read, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, write, writeSync,
} from 'node:fs';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { faultPoint } from '../faults.ts';
import type { StoreFs, StoreReadHandle, StoreStat, StoreWriteHandle } from '../../store/types.ts';

/**
 * Reads and writes of at least this many bytes still go through the thread pool: there the call
 * costs little next to the copy, and a write the kernel holds back (dirty pages being flushed)
 * does not stop the event loop.
 */
const ASYNC_BYTES = 1 << 20;
const readAsync = (fd: number, b: Uint8Array, off: number, len: number, pos: number) =>
  new Promise<number>((res, rej) => read(fd, b, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
const writeAsync = (fd: number, b: Uint8Array, off: number, len: number) =>
  new Promise<number>((res, rej) => write(fd, b, off, len, null, (e, n) => (e ? rej(e) : res(n))));

const codeOf = (e: unknown): string => ((e as { code?: unknown })?.code as string) ?? '';
const isMissing = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes(codeOf(e));

export function syncStoreFs(): StoreFs {
  const made = new Set<string>();
  const mkdirp = (path: string) => {
    if (made.has(path)) return;
    mkdirSync(path, { recursive: true });
    made.add(path);
  };
  /** Run `op`; when its directory has gone (ENOENT), forget it, make it again and retry once. */
  const inDir = <T>(path: string, op: () => T): T => {
    try {
      return op();
    } catch (e) {
      if (codeOf(e) !== 'ENOENT') throw e;
      made.delete(dirname(path));
      mkdirp(dirname(path));
      return op();
    }
  };

  return {
    async readFile(path) {
      const b = readFileSync(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },

    async openRead(path): Promise<StoreReadHandle> {
      const fd = openSync(path, 'r');
      let size: number;
      try {
        size = fstatSync(fd).size;
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      let open = true;
      return {
        size,
        async read(offset, length) {
          const buf = new Uint8Array(length);
          let got = 0;
          while (got < length) {
            const n = length - got >= ASYNC_BYTES ? await readAsync(fd, buf, got, length - got, offset + got) : readSync(fd, buf, got, length - got, offset + got);
            if (n === 0) break; // end of file
            got += n;
          }
          return got === length ? buf : buf.subarray(0, got);
        },
        async close() {
          if (open) { open = false; closeSync(fd); }
        },
      };
    },

    async createWrite(path): Promise<StoreWriteHandle> {
      const fd = inDir(path, () => openSync(path, 'wx', 0o644));
      let open = true;
      return {
        async write(bytes) {
          let off = 0;
          while (off < bytes.length) off += bytes.length - off >= ASYNC_BYTES ? await writeAsync(fd, bytes, off, bytes.length - off) : writeSync(fd, bytes, off, bytes.length - off);
        },
        async close() {
          if (open) { open = false; closeSync(fd); }
        },
      };
    },

    async mkdirp(path) {
      mkdirp(path);
    },

    async rename(from, to) {
      inDir(to, () => renameSync(from, to));
    },

    async stat(path): Promise<StoreStat | null> {
      try {
        const st = statSync(path);
        return { size: st.size, isFile: st.isFile(), isDirectory: st.isDirectory() };
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
    },

    async unlink(path) {
      try {
        unlinkSync(path);
        return true;
      } catch (e) {
        if (isMissing(e)) return false;
        throw e;
      }
    },

    // the one asynchronous path: a deferred put's whole object, written in libuv's thread pool
    // while the caller goes on hashing (creating hundreds of files costs the kernel a few hundred
    // µs each while much data is being written, which then overlaps the caller's work)
    async writeNew(tmp, path, bytes) {
      const dir = dirname(path);
      try {
        try {
          await writeFile(tmp, bytes, { flag: 'wx', mode: 0o644 });
        } catch (e) {
          if (codeOf(e) !== 'ENOENT') throw e;
          made.delete(dirname(tmp));
          await mkdir(dirname(tmp), { recursive: true });
          await writeFile(tmp, bytes, { flag: 'wx', mode: 0o644 });
        }
        faultPoint('object-write');
        if (!made.has(dir)) {
          await mkdir(dir, { recursive: true });
          made.add(dir);
        }
        try {
          await rename(tmp, path);
        } catch (e) {
          if (codeOf(e) !== 'ENOENT') throw e;
          made.delete(dir);
          await mkdir(dir, { recursive: true });
          await rename(tmp, path);
        }
      } catch (e) {
        await unlink(tmp).catch(() => {});
        throw e;
      }
    },

    async readdir(path) {
      try {
        return readdirSync(path);
      } catch (e) {
        if (isMissing(e)) return [];
        throw e;
      }
    },
  };
}
