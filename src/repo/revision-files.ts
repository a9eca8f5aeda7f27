/**
 * FileAccess (src/formats/types.ts) over the files of one commit, read with isomorphic-git: what a
 * TF.js shard's model.json says at that revision. Blobs are what git stores (a tracked checkpoint
 * reads as its metadata).
 */
import git from 'isomorphic-git';
import type { FileAccess } from '../formats/types.ts';
import { gitArgs, type RepoContext } from './context.ts';
import { readBlobAt } from './model-blob.ts';

export function commitFiles(c: RepoContext, commitOid: string): FileAccess {
  const blobs = new Map<string, Uint8Array | null>();
  const blob = async (path: string) => {
    if (!blobs.has(path)) blobs.set(path, (await readBlobAt(c, commitOid, path))?.blob ?? null);
    return blobs.get(path)!;
  };
  return {
    async list(dir) {
      try {
        const { tree } = await git.readTree({ ...gitArgs(c), oid: commitOid, filepath: dir || undefined });
        return tree.filter((e) => e.type === 'blob' && e.mode !== '120000').map((e) => e.path);
      } catch {
        return []; // no such directory at this commit
      }
    },
    async read(path, maxBytes) {
      const b = await blob(path);
      return b && b.length <= maxBytes ? b : null;
    },
    async size(path) {
      return (await blob(path))?.length ?? null;
    },
  };
}
