/**
 * An in-memory StoreFs (tests, browsers without a file system) and a local store on top of it:
 * the one in-memory file system (memfs.ts) seen through the StoreFs adapter (promise-fs.ts). It
 * behaves like a POSIX file system for what the store needs: parent directories must exist,
 * createWrite fails on an existing file, rename replaces.
 */
import { createLocalStore, type LocalObjectStore } from './local.ts';
import { createMemFs } from './memfs.ts';
import { repoStoreFs } from './promise-fs.ts';
import type { StoreFs } from './types.ts';

export interface MemoryFs extends StoreFs {
  /** Every file path, sorted (for tests). */
  files(): string[];
  /** Replace a file's bytes directly (tests use it to simulate corruption). */
  poke(path: string, bytes: Uint8Array): void;
}

export function memoryFs(): MemoryFs {
  const fs = createMemFs();
  return Object.assign(repoStoreFs(fs), {
    files: () => fs.files(),
    poke: (path: string, bytes: Uint8Array) => fs.writeFileSync(path, bytes),
  });
}

/** A git-lfs-layout store held in memory (lfsDir `/lfs` unless given). */
export function createMemoryStore(options: { fs?: MemoryFs; lfsDir?: string } = {}): LocalObjectStore & { fs: MemoryFs } {
  const fs = options.fs ?? memoryFs();
  return Object.assign(createLocalStore({ fs, lfsDir: options.lfsDir ?? '/lfs' }), { fs });
}
