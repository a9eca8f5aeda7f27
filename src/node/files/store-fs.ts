/**
 * The local object store on the real file system (node:fs), in git-lfs's place:
 * objects under `<gitdir>/lfs/objects/aa/bb/<oid>`, temp files under `<gitdir>/lfs/tmp`.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { repoStoreFs } from '../../store/promise-fs.ts';
import { createLocalStore, type LocalObjectStore } from '../../store/local.ts';
import type { StoreFs } from '../../store/types.ts';
import { useNodeSha256 } from './sha256-node.ts';
import { faultPoint } from '../faults.ts';

/**
 * The StoreFs over node:fs: the adapter the repository library uses for any promise-API fs, except
 * that whole-file reads come back as plain Uint8Arrays (not Buffers), as the store promises.
 */
export function nodeStoreFs(): StoreFs {
  const base = repoStoreFs(fsp);
  return {
    ...base,
    async readFile(path) {
      const b = await fsp.readFile(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    async createWrite(path) {
      const h = await base.createWrite(path);
      // the fault tests' kill point: an object's bytes written to its temp file, not yet renamed
      return { ...h, write: async (bytes) => { await h.write(bytes); faultPoint('object-write'); } };
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
