/**
 * The page's worker: opens the repository with the library's openRemote (a clone kept in IndexedDB
 * through LightningFS, see cache.ts: a reopening fetches only new commits), answers questions about
 * it (branches, commits, models) and computes diffs with the Wasm kernels, so the page's main
 * thread only renders. Tensor objects come from the repository's LFS server through the remote
 * store: a diff prefetches, in batches, only the objects it needs (the tensors whose content
 * differs, or the whole file of a plain git-lfs side) and that the cache does not hold already.
 */
import git from 'isomorphic-git';
import { diffRevisions, listModels, openRemote, type RemoteRepo } from '../repo/index.ts';
import { clearCache, openCacheFs, repoDir, type CacheFs } from './cache.ts';
import type { CommitInfo, DiffResult, DownloadStats, OpenResult, Request, Response } from './protocol.ts';
import { ThetaError } from '../core/errors.ts';

type Opened = RemoteRepo & { flush: CacheFs['flush'] };

let opened: Opened | null = null;
/** The request LFS progress belongs to (one diff runs at a time). */
let activeId = 0;
const downloads: DownloadStats = { objects: 0, bytes: 0 };

const post = (m: Response) => (self as unknown as Worker).postMessage(m);

function need(): Opened {
  if (!opened) throw new ThetaError('E_NOT_OPEN', 'no repository is open; open one first');
  return opened;
}

async function open(id: number, url: string, lfsUrl: string | null | undefined, headers: Record<string, string> = {}): Promise<OpenResult> {
  const cacheFs = await openCacheFs();
  const repo = await openRemote({
    url, lfsUrl: lfsUrl ?? undefined, headers, fs: cacheFs.fs, dir: repoDir(url),
    onProgress: (p) => post({ type: 'progress', id, phase: 'clone', label: p.phase, loaded: p.loaded, total: p.total || 0 }),
    onLfsProgress: (p) => post({ type: 'progress', id: activeId, phase: 'download', label: `LFS objects ${p.doneObjects}/${p.objects}`, loaded: p.doneBytes, total: p.bytes }),
    onDownloaded: (r) => {
      downloads.objects += r.transferred.length;
      downloads.bytes += r.bytes; // what arrived (a caller may not know an object's size up front)
    },
  });
  await cacheFs.flush();
  opened = { ...repo, flush: cacheFs.flush };
  const { fs, dir, cache } = repo;

  const args = { fs, dir, cache };
  const head = (await git.currentBranch({ ...args, fullname: false }).catch(() => undefined)) ?? null;
  const names = new Set<string>(await git.listBranches(args));
  for (const b of await git.listBranches({ ...args, remote: 'origin' })) if (b !== 'HEAD') names.add(b);
  const branches: OpenResult['branches'] = [];
  for (const name of [...names].sort()) {
    const oid = await git.resolveRef({ ...args, ref: name }).catch(() => git.resolveRef({ ...args, ref: `refs/remotes/origin/${name}` }));
    branches.push({ name, oid });
  }
  const tags = (await git.listTags(args)).sort();
  return {
    url, lfsUrl: repo.lfsUrl, head, branches, tags,
    cache: { persistent: cacheFs.persistent, source: repo.source, ...(repo.offlineReason ? { offlineReason: repo.offlineReason } : {}) },
  };
}

async function log(ref: string, depth: number): Promise<CommitInfo[]> {
  const { fs, dir, cache } = need();
  let oid: string;
  try {
    oid = await git.resolveRef({ fs, dir, ref });
  } catch {
    oid = await git.resolveRef({ fs, dir, ref: `refs/remotes/origin/${ref}` });
  }
  const entries = await git.log({ fs, dir, cache, ref: oid, depth });
  return entries.map((e) => ({
    oid: e.oid,
    subject: e.commit.message.split('\n')[0] ?? '',
    author: e.commit.author.name,
    time: e.commit.author.timestamp,
  }));
}

async function diff(id: number, from: string, to: string, paths?: string[]): Promise<DiffResult> {
  const { fs, dir, store, cache, flush } = need();
  const t0 = performance.now();
  activeId = id;
  const result = await diffRevisions({ fs, dir, cache, store, from, to, filepaths: paths?.length ? paths : undefined, all: true });
  await flush(); // the downloaded objects stay for the next opening
  return { diff: result, downloads: { ...downloads }, ms: performance.now() - t0 };
}

async function handle(r: Request): Promise<unknown> {
  switch (r.type) {
    case 'open': return open(r.id, r.url, r.lfsUrl, r.headers);
    case 'log': return log(r.ref, r.depth);
    case 'models': return listModels({ fs: need().fs, dir: need().dir, cache: need().cache, store: need().store, ref: r.ref });
    case 'clear':
      opened = null;
      await clearCache();
      return true;
    case 'diff': return diff(r.id, r.from, r.to, r.paths);
  }
}

// Requests run one at a time, in order (the page never needs two at once).
let queue: Promise<unknown> = Promise.resolve();
self.onmessage = (ev: MessageEvent<Request>) => {
  const r = ev.data;
  queue = queue.then(async () => {
    try {
      post({ type: 'result', id: r.id, value: await handle(r) });
    } catch (e) {
      const err = e as Error & { code?: string };
      post({ type: 'error', id: r.id, message: String(err?.message ?? e).split('\n')[0]!, code: typeof err?.code === 'string' ? err.code : undefined });
    }
  });
};
