/**
 * What git holds for a model path: git-theta metadata (the blob our clean filter commits), or a
 * plain git-lfs pointer (how Hugging Face and other git-lfs repositories keep checkpoints; the
 * object in the LFS store is the whole file). Anything else is not a model.
 */
import git from 'isomorphic-git';
import { looksLikeMetadata, parseMetadata, type ModelMetadata } from '../theta/metadata.ts';
import { gitArgs, type RepoContext } from './context.ts';
import { PathNotFoundError } from './errors.ts';
import { resolveRevision } from './revision.ts';
import { looksLikePyMetadata, pythonModelBlob } from './python-blob.ts';

export { MAX_LFS_POINTER_BYTES, parseLfsPointer } from './lfs-pointer.ts';
export type { LfsPointer, ModelBlob } from './blob-types.ts';
import type { LfsPointer, ModelBlob } from './blob-types.ts';
import { parseLfsPointer } from './lfs-pointer.ts';

/** Classify blob bytes (`where` names it in errors). */
export function classifyBlob(blob: Uint8Array, blobOid: string, where: string): ModelBlob | null {
  if (looksLikeMetadata(blob)) return { kind: 'theta', blobOid, metadata: parseMetadata(blob, where) };
  const pointer = parseLfsPointer(blob);
  if (pointer) return { kind: 'lfs', blobOid, pointer };
  return null;
}

/**
 * The blob at `filepath` in commit `commitOid`: its id and bytes, or null when the path does not
 * exist there (or is a directory).
 */
export async function readBlobAt(c: RepoContext, commitOid: string, filepath: string): Promise<{ oid: string; blob: Uint8Array } | null> {
  try {
    const { oid, blob } = await git.readBlob({ ...gitArgs(c), oid: commitOid, filepath });
    return { oid, blob };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'NotFoundError' || code === 'ObjectTypeError') return null;
    throw e;
  }
}

/** classifyBlob, and metadata the Python Git-Theta wrote, converted (`skeleton` when it will be checked out). */
export async function classifyModelBlob(c: RepoContext, filepath: string, blob: Uint8Array, blobOid: string, where: string, o: { skeleton?: boolean } = {}): Promise<ModelBlob | null> {
  if (looksLikePyMetadata(blob)) return pythonModelBlob(c, filepath, blob, blobOid, where, o);
  return classifyBlob(blob, blobOid, where);
}

/** The model at `filepath` in revision `ref`: null if the path is absent or holds no model. */
export async function readModelBlob(c: RepoContext, ref: string, filepath: string, commitOid?: string): Promise<ModelBlob | null> {
  const commit = commitOid ?? (await resolveRevision(c, ref));
  const b = await readBlobAt(c, commit, filepath);
  if (!b) return null;
  return classifyModelBlob(c, filepath, b.blob, b.oid, `${ref}:${filepath}`);
}

/** Like readModelBlob, but a missing path is PathNotFoundError; a blob that is no model is returned as null. */
export async function requireBlob(c: RepoContext, ref: string, filepath: string, o: { skeleton?: boolean } = {}): Promise<ModelBlob | null> {
  const commit = await resolveRevision(c, ref);
  const b = await readBlobAt(c, commit, filepath);
  if (!b) throw new PathNotFoundError(filepath, ref);
  return classifyModelBlob(c, filepath, b.blob, b.oid, `${ref}:${filepath}`, o);
}
