/**
 * The local store with missing objects downloaded from the repository's default remote, as every
 * ThetaRepo opens it. Kept apart from lfs-node.ts, which is imported when an object is first
 * missing: the filter process, merge driver and hooks then start without the LFS transfer code
 * (endpoint discovery, HTTP agent, progress bars).
 */
import { LfsClient, type LfsObject, type LfsProgress } from '../../lfs/client.ts';
import { createRemoteStore, type RemoteObjectStore } from '../../lfs/remote-store.ts';
import type { LocalObjectStore } from '../../store/local.ts';

/**
 * `store` with missing objects downloaded from the repository's default remote (found lazily:
 * no config is read and nothing is contacted until an object is missing).
 */
export function withRemoteObjects(store: LocalObjectStore, cwd: string): RemoteObjectStore<LocalObjectStore> {
  let bar: { onProgress?: (p: LfsProgress) => void; done(): void } | null = null;
  return createRemoteStore(store, {
    remote: async () => {
      const { currentRef, defaultRemote, openTransfer, progressBar } = await import('./lfs-node.ts');
      const [remote, ref] = await Promise.all([defaultRemote(cwd), currentRef(cwd)]);
      bar = progressBar('git-theta: downloading');
      const t = await openTransfer({ cwd, remote, operation: 'download', onProgress: (p) => bar?.onProgress?.(p), ref });
      if (!t) return null;
      const ranged = t instanceof LfsClient ? { rangeGetter: (x: LfsObject) => t.rangeGetter(x) } : {};
      return { download: async (objects, into) => { try { return await t.download(objects, into); } finally { bar?.done(); } }, ...ranged };
    },
  });
}
