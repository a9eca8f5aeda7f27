/**
 * The local object store on the real file system (node:fs), in git-lfs's place:
 * objects under `<gitdir>/lfs/objects/aa/bb/<oid>`, temp files under `<gitdir>/lfs/tmp`.
 */
import { join } from 'node:path';
import { syncStoreFs } from './store-fs-sync.ts';
import { createLocalStore, type LocalObjectStore } from '../../store/local.ts';
import type { StoreFs } from '../../store/types.ts';
import { useNodeSha256 } from './sha256-node.ts';
import { faultPoint } from '../faults.ts';

/**
 * The StoreFs over node:fs (whole-file reads come back as plain Uint8Arrays, not Buffers, as the
 * store promises).
 */
export function nodeStoreFs(): StoreFs {
  // node:fs's synchronous calls: no thread-pool round trip per call (store-fs-sync.ts says why)
  const base = syncStoreFs();
  return {
    ...base,
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
