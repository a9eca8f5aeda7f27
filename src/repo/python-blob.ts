/**
 * Models the Python Git-Theta committed, read through isomorphic-git (Node, Deno, browsers): the
 * metadata blob is converted (src/interop/python-git-theta) with its `last_commit` history read
 * from the same repository, so every library function sees it as a git-theta model.
 */
import git from 'isomorphic-git';
import { convertPyMetadata, looksLikePyMetadata, parsePyMetadata, pyCheckpointFormat } from '../interop/python-git-theta/index.ts';
import { gitArgs, type RepoContext } from './context.ts';
import type { ModelBlob } from './blob-types.ts';

export { looksLikePyMetadata };

/** The metadata blob `blob` of `filepath` as a git-theta model; `skeleton` when it will be checked out. */
export async function pythonModelBlob(
  c: RepoContext, filepath: string, blob: Uint8Array, blobOid: string, where: string, o: { skeleton?: boolean } = {},
): Promise<ModelBlob> {
  const metadata = await convertPyMetadata(blob, {
    path: filepath,
    where,
    skeleton: o.skeleton,
    store: c.store,
    kernels: c.kernels,
    history: {
      async readAt(commit, path) {
        try {
          await git.readCommit({ ...gitArgs(c), oid: commit });
        } catch {
          return 'missing-commit';
        }
        try {
          return (await git.readBlob({ ...gitArgs(c), oid: commit, filepath: path })).blob;
        } catch {
          return null;
        }
      },
    },
  });
  return { kind: 'theta', blobOid, metadata };
}

/** What listModels says of a Python-written model, from its blob alone (no object is read). */
export function pythonModelListing(blob: Uint8Array, path: string): { format: string; tensors: number } {
  return { format: pyCheckpointFormat(path), tensors: parsePyMetadata(blob, path).length };
}
