/**
 * The local object store on the real file system (node:fs), in git-lfs's place:
 * objects under `<gitdir>/lfs/objects/aa/bb/<oid>`, temp files under `<gitdir>/lfs/tmp`.
 */
import { readHandle } from '../store/file-handle.ts';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { createLocalStore, type LocalObjectStore } from '../store/local.ts';
import type { StoreFs, StoreReadHandle, StoreStat, StoreWriteHandle } from '../store/types.ts';
import { useNodeSha256 } from './sha256-node.ts';
import { faultPoint } from './faults.ts';

const isErr = (e: unknown, ...codes: string[]) => codes.includes((e as NodeJS.ErrnoException)?.code ?? '');

export function nodeStoreFs(): StoreFs {
  return {
    async readFile(path) {
      const b = await fsp.readFile(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    async openRead(path): Promise<StoreReadHandle> {
      return readHandle(await fsp.open(path, 'r'));
    },
    async createWrite(path): Promise<StoreWriteHandle> {
      const fh = await fsp.open(path, 'wx', 0o644);
      return {
        async write(bytes) {
          let off = 0;
          while (off < bytes.length) {
            const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
            off += bytesWritten;
          }
          faultPoint('object-write');
        },
        close: () => fh.close(),
      };
    },
    async mkdirp(path) {
      await fsp.mkdir(path, { recursive: true });
    },
    async rename(from, to) {
      await fsp.rename(from, to);
    },
    async stat(path): Promise<StoreStat | null> {
      try {
        const s = await fsp.stat(path);
        return { size: s.size, isFile: s.isFile(), isDirectory: s.isDirectory() };
      } catch (e) {
        if (isErr(e, 'ENOENT', 'ENOTDIR')) return null;
        throw e;
      }
    },
    async unlink(path) {
      try {
        await fsp.unlink(path);
        return true;
      } catch (e) {
        if (isErr(e, 'ENOENT', 'ENOTDIR')) return false;
        throw e;
      }
    },
    async readdir(path) {
      try {
        return await fsp.readdir(path);
      } catch (e) {
        if (isErr(e, 'ENOENT', 'ENOTDIR')) return [];
        throw e;
      }
    },
  };
}

/**
 * The store of the repository whose git directory is `gitDir` (the `.git` directory, or the bare
 * repository itself), shared with git-lfs. Also switches hashing to node:crypto.
 */
export function openLocalStore(gitDir: string): LocalObjectStore {
  useNodeSha256();
  return createLocalStore({ fs: nodeStoreFs(), lfsDir: join(gitDir, 'lfs') });
}
