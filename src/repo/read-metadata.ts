/** readMetadata: the git-theta metadata committed for a path at a revision. */
import type { ModelMetadata } from '../theta/metadata.ts';
import { repoContext, required, type RepoOptions } from './context.ts';
import { NotAModelError } from './errors.ts';
import { requireBlob } from './model-blob.ts';

export interface ReadMetadataOptions extends RepoOptions {
  /** Path of the model in the repository, relative to `dir`. */
  filepath: string;
  /** A revision: branch, tag, commit id, `HEAD~1`, ... (default 'HEAD'). */
  ref?: string;
}

/**
 * The metadata document git stores for `filepath` at `ref` (parsed and validated).
 * Errors: MissingParameterError, RevisionNotFoundError, PathNotFoundError, NotAModelError (the blob
 * is not git-theta metadata, e.g. a plain git-lfs pointer), MetadataError (damaged metadata).
 */
export async function readMetadata(o: ReadMetadataOptions): Promise<ModelMetadata> {
  required('readMetadata', o as unknown as Record<string, unknown>, ['fs', 'dir', 'filepath']);
  const c = await repoContext('readMetadata', o);
  const ref = o.ref ?? 'HEAD';
  const m = await requireBlob(c, ref, o.filepath);
  if (m?.kind !== 'theta') throw new NotAModelError(o.filepath, ref, 'git-theta metadata');
  return m.metadata;
}
