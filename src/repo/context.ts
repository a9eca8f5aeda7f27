/**
 * What every repository function shares: checking the common options up front, the default
 * object store (git-lfs layout under `<gitdir>/lfs`, on the same `fs`) and the kernels.
 */
import './buffer.ts';
import { getKernels, type Kernels } from '../core/kernels.ts';
import { createLocalStore } from '../store/local.ts';
import type { ObjectStore } from '../store/types.ts';
import { MissingParameterError } from './errors.ts';
import { joinPath, promiseFs, repoStoreFs, type PromiseFsLike, type RepoFs } from '../store/promise-fs.ts';

/** Options every repository function takes. */
export interface RepoOptions {
  /** The file system holding the repository (createMemFs(), node:fs, LightningFS, ...). */
  fs: RepoFs;
  /** The working tree. */
  dir: string;
  /** The git directory (default `<dir>/.git`). */
  gitdir?: string;
  /**
   * Where tensor objects are read and written (default: the local store at `<gitdir>/lfs`, in
   * git-lfs's layout, on `fs`). Any ObjectStore works, e.g. one that fetches from an LFS server.
   */
  store?: ObjectStore;
  /** The Wasm kernels (default: getKernels()). */
  kernels?: Kernels;
  /** isomorphic-git's cache object, shared across calls to speed up repeated reads. */
  cache?: object;
}

export interface RepoContext {
  /** The fs as given (handed to isomorphic-git unchanged). */
  fs: RepoFs;
  /** Its promise API. */
  pfs: PromiseFsLike;
  dir: string;
  gitdir: string;
  store: ObjectStore;
  kernels: Kernels;
  cache: object;
}

/** Throws MissingParameterError for each required option that is undefined or null. */
export function required(caller: string, o: Record<string, unknown> | undefined, names: string[]): void {
  if (!o || typeof o !== 'object') throw new MissingParameterError(caller, names[0] ?? 'options');
  for (const n of names) if (o[n] === undefined || o[n] === null) throw new MissingParameterError(caller, n);
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** The default store for a repository: git-lfs's local layout under `<gitdir>/lfs`. */
export function defaultStore(fs: RepoFs, gitdir: string): ObjectStore {
  return createLocalStore({ fs: repoStoreFs(fs), lfsDir: joinPath(gitdir, 'lfs') });
}

export async function repoContext(caller: string, o: RepoOptions, extra: string[] = []): Promise<RepoContext> {
  required(caller, o as unknown as Record<string, unknown>, ['fs', 'dir', ...extra]);
  const pfs = promiseFs(o.fs);
  const dir = trimSlash(o.dir);
  const gitdir = trimSlash(o.gitdir ?? joinPath(dir, '.git'));
  return {
    fs: o.fs,
    pfs,
    dir,
    gitdir,
    store: o.store ?? defaultStore(o.fs, gitdir),
    kernels: o.kernels ?? (await getKernels()),
    cache: o.cache ?? {},
  };
}

/**
 * Ask the store to fetch these objects ahead of reading them, when it can (a remote-backed store
 * has `prefetch`, which downloads what is missing in batched requests instead of one request per
 * object). A plain local store has nothing to do.
 */
export async function prefetch(c: RepoContext, refs: { oid: string; size: number }[]): Promise<void> {
  const s = c.store as ObjectStore & { prefetch?: (refs: { oid: string; size: number }[]) => Promise<unknown> };
  if (refs.length && typeof s.prefetch === 'function') await s.prefetch(refs);
}

/** The options isomorphic-git functions take, from a context. */
// isomorphic-git's own fs type is a union we satisfy structurally; cast once here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function gitArgs(c: RepoContext): { fs: any; dir: string; gitdir: string; cache: object } {
  return { fs: c.fs, dir: c.dir, gitdir: c.gitdir, cache: c.cache };
}
