/**
 * The page's worker: clones the repository with isomorphic-git into an in-memory file system,
 * answers questions about it (branches, commits, models) and computes diffs with the Wasm kernels,
 * so the page's main thread only renders. Tensor objects come from the repository's LFS server
 * through the remote store: a diff prefetches, in batches, only the objects it needs (the tensors
 * whose content differs, or the whole file of a plain git-lfs side) and keeps them for later diffs.
 */
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/web';
import { createMemFs, diffRevisions, listModels } from '../repo/index.ts';
import { LfsClient } from '../lfs/client.ts';
import { endpointFromGitUrl } from '../lfs/endpoint.ts';
import { createMemoryStore } from '../store/memory.ts';
import { createRemoteStore, type RemoteObjectStore } from '../lfs/remote-store.ts';
import type { ObjectStore } from '../store/types.ts';
import type { CommitInfo, DiffResult, DownloadStats, OpenResult, Request, Response } from './protocol.ts';

const DIR = '/repo';

interface Opened {
  fs: ReturnType<typeof createMemFs>;
  store: RemoteObjectStore<ObjectStore>;
  cache: object;
}

let opened: Opened | null = null;
/** The request LFS progress belongs to (one diff runs at a time). */
let activeId = 0;
const downloads: DownloadStats = { objects: 0, bytes: 0 };

const post = (m: Response) => (self as unknown as Worker).postMessage(m);

function need(): Opened {
  if (!opened) throw new Error('no repository is open');
  return opened;
}

async function open(id: number, url: string, lfsUrl: string | null | undefined, headers: Record<string, string> = {}): Promise<OpenResult> {
  const fs = createMemFs();
  const cache = {};
  try {
    // the whole history (revisions like HEAD~3 need it), no working tree: models are read from blobs
    await git.clone({
      fs, http, dir: DIR, url, headers, noCheckout: true, cache,
      onProgress: (p) => post({ type: 'progress', id, phase: 'clone', label: p.phase, loaded: p.loaded, total: p.total || 0 }),
    });
  } catch (e) {
    throw new Error(`could not clone ${url}: ${(e as Error).message}`);
  }
  const lfs = lfsUrl ?? endpointFromGitUrl(url)?.url ?? null;
  const client = lfs && /^https?:/i.test(lfs)
    ? new LfsClient({
      url: lfs, headers,
      onProgress: (p) => post({ type: 'progress', id: activeId, phase: 'download', label: `LFS objects ${p.doneObjects}/${p.objects}`, loaded: p.doneBytes, total: p.bytes }),
    })
    : null;
  const store = createRemoteStore(createMemoryStore() as ObjectStore, {
    remote: client,
    onDownloaded: (r) => {
      downloads.objects += r.transferred.length;
      downloads.bytes += r.bytes; // what arrived (a caller may not know an object's size up front)
    },
  });
  opened = { fs, store, cache };

  const args = { fs, dir: DIR, cache };
  const head = (await git.currentBranch({ ...args, fullname: false }).catch(() => undefined)) ?? null;
  const names = new Set<string>(await git.listBranches(args));
  for (const b of await git.listBranches({ ...args, remote: 'origin' })) if (b !== 'HEAD') names.add(b);
  const branches: OpenResult['branches'] = [];
  for (const name of [...names].sort()) {
    const oid = await git.resolveRef({ ...args, ref: name }).catch(() => git.resolveRef({ ...args, ref: `refs/remotes/origin/${name}` }));
    branches.push({ name, oid });
  }
  const tags = (await git.listTags(args)).sort();
  return { url, lfsUrl: lfs, head, branches, tags };
}

async function log(ref: string, depth: number): Promise<CommitInfo[]> {
  const { fs, cache } = need();
  let oid: string;
  try {
    oid = await git.resolveRef({ fs, dir: DIR, ref });
  } catch {
    oid = await git.resolveRef({ fs, dir: DIR, ref: `refs/remotes/origin/${ref}` });
  }
  const entries = await git.log({ fs, dir: DIR, cache, ref: oid, depth });
  return entries.map((e) => ({
    oid: e.oid,
    subject: e.commit.message.split('\n')[0] ?? '',
    author: e.commit.author.name,
    time: e.commit.author.timestamp,
  }));
}

async function diff(id: number, from: string, to: string, paths?: string[]): Promise<DiffResult> {
  const { fs, store, cache } = need();
  const t0 = performance.now();
  activeId = id;
  const result = await diffRevisions({ fs, dir: DIR, cache, store, from, to, filepaths: paths?.length ? paths : undefined, all: true });
  return { diff: result, downloads: { ...downloads }, ms: performance.now() - t0 };
}

async function handle(r: Request): Promise<unknown> {
  switch (r.type) {
    case 'open': return open(r.id, r.url, r.lfsUrl, r.headers);
    case 'log': return log(r.ref, r.depth);
    case 'models': return listModels({ fs: need().fs, dir: DIR, cache: need().cache, store: need().store, ref: r.ref });
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
