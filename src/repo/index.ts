/**
 * The repository library: read, diff and commit models in a git repository through
 * isomorphic-git, with no git binary, in Node, Deno and browsers. Every function takes one options
 * object `{ fs, dir, gitdir?, store?, kernels?, cache?, ... }`; `fs` is node:fs, createMemFs() or
 * any promise-API file system; objects come from `store` (default: git-lfs's local layout under
 * `<gitdir>/lfs` on the same fs; any ObjectStore, e.g. one backed by an LFS server, works).
 */
import './buffer.ts';

export { readMetadata, type ReadMetadataOptions } from './read-metadata.ts';
export { readModel, type ReadModelOptions, type ModelTensor } from './read-model.ts';
export { checkoutModel, type CheckoutModelOptions, type CheckoutResult } from './checkout-model.ts';
export { loadModel, type LoadModelOptions, type LoadedModel } from './load-model.ts';
export { listModels, type ListModelsOptions, type ListedModel } from './list-models.ts';
export { diffModel, type DiffModelOptions, type FileDiff } from './diff-model.ts';
export { diffRevisions, type DiffRevisionsOptions, type RevisionsDiff } from './diff-revisions.ts';
export { saveModel, type SaveModelOptions, type SaveModelResult, type GitIdentity, type TensorsInput } from './save-model.ts';
export { parseLfsPointer, type LfsPointer } from './model-blob.ts';
export { isLfsCheckpointPath, lfsPointerText, openLfsBlob } from './lfs-pointer-model.ts';
export { createMemFs, MemFsError, type MemFs, type MemStats } from '../store/memfs.ts';
export { repoStoreFs, type RepoFs, type PromiseFsLike } from '../store/promise-fs.ts';
export { defaultStore, type RepoOptions } from './context.ts';
export { openRemote, removeTree, CloneMismatchError, CloneFailedError, type OpenRemoteOptions, type RemoteRepo } from './open-remote.ts';
export {
  MissingParameterError, RevisionNotFoundError, PathNotFoundError, NotAModelError, TrackedByOtherFilterError,
} from './errors.ts';
