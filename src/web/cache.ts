/**
 * The page's cache: clones and downloaded LFS objects live in IndexedDB through LightningFS
 * (isomorphic-git's usual browser file system), one directory per repository URL, so reopening a
 * repository fetches only new commits and downloads only objects it does not have, and works
 * offline for what is cached. Where IndexedDB cannot be used (some private modes), the page falls
 * back to memory and says so.
 */
import LightningFS from '@isomorphic-git/lightning-fs';
import { createMemFs, type RepoFs } from '../repo/index.ts';

/** The IndexedDB database LightningFS keeps the cache in. */
export const CACHE_NAME = 'git-theta-cache';

export interface CacheFs {
  fs: RepoFs;
  /** true when the fs is IndexedDB-backed; false when it fell back to memory. */
  persistent: boolean;
  /** Write pending metadata to IndexedDB (LightningFS batches it). */
  flush(): Promise<void>;
}

let lfs: LightningFS | null = null;

/** The cache's file system (LightningFS on IndexedDB), or memory when IndexedDB fails. */
export async function openCacheFs(): Promise<CacheFs> {
  const memory = (): CacheFs => ({ fs: createMemFs(), persistent: false, flush: async () => {} });
  if (typeof indexedDB === 'undefined') return memory();
  try {
    lfs ??= new LightningFS(CACHE_NAME);
    const p = lfs.promises;
    await p.readdir('/'); // fails here when IndexedDB is refused
    return { fs: lfs as unknown as RepoFs, persistent: true, flush: () => p.flush() };
  } catch {
    lfs = null;
    return memory();
  }
}

/** Remove everything cached (all repositories and objects). */
export async function clearCache(): Promise<void> {
  lfs ??= new LightningFS(CACHE_NAME);
  // (typed as void, but it returns the init promise)
  await (lfs.promises.init(CACHE_NAME, { wipe: true }) as unknown as Promise<void>);
}

/** The directory of a repository's clone in the cache: its URL, made a safe single path component. */
export function repoDir(url: string): string {
  return `/${url.replace(/^[a-z]+:\/\//i, '').replace(/[^A-Za-z0-9._-]+/g, '_')}`;
}
