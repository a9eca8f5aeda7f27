/**
 * Open a remote repository for reading models, the same way in Node, Deno and browsers: clone it
 * (no working tree; models are read from blobs) into `fs` at `dir`, or, when `dir` already holds a
 * clone of the same URL (a persistent fs such as LightningFS on IndexedDB, or node:fs), bring that
 * clone up to date instead. Up to date means: the server's refs are listed first (one small GET);
 * when they equal what the clone has, nothing else is requested; otherwise a fetch asks only for
 * what is new and the local branches are moved to the server's. When the server cannot be reached
 * and a clone is there, the clone is used as it is (`source: 'offline'`).
 *
 * Tensor objects are kept on the same fs in git-lfs's layout (`<dir>/.git/lfs/objects`) and
 * downloaded from the repository's LFS server only when absent, so a persistent fs keeps them
 * across sessions.
 */
import git, { type GitProgressEvent, type HttpClient } from 'isomorphic-git';
import webHttp from 'isomorphic-git/http/web';
import { ThetaError } from '../core/errors.ts';
import { LfsClient, type LfsProgress, type LfsTransferResult } from '../lfs/client.ts';
import { endpointFromGitUrl } from '../lfs/endpoint.ts';
import { createRemoteStore, type RemoteObjectStore } from '../lfs/remote-store.ts';
import type { ObjectStore } from '../store/types.ts';
import { defaultStore, required } from './context.ts';
import { joinPath, promiseFs, type PromiseFsLike, type RepoFs } from '../store/promise-fs.ts';
import { createMemFs } from '../store/memfs.ts';

export interface OpenRemoteOptions {
  /** The repository's git URL (http or https). */
  url: string;
  /** Where the clone lives (default: a new in-memory fs). A persistent fs keeps it for next time. */
  fs?: RepoFs;
  /** Its directory on `fs` (default `/repo`). */
  dir?: string;
  /** Extra HTTP headers for git and LFS requests (e.g. Authorization). */
  headers?: Record<string, string>;
  /** The LFS API URL (default: derived from `url` as git-lfs does; null = none). */
  lfsUrl?: string | null;
  /** isomorphic-git's HTTP client (default: its fetch-based `http/web`, which every runtime has). */
  http?: HttpClient;
  /** isomorphic-git's cache object, shared with later calls. */
  cache?: object;
  /** Clone/fetch progress (isomorphic-git's events). */
  onProgress?: (p: GitProgressEvent) => void;
  /** LFS download progress. */
  onLfsProgress?: (p: LfsProgress) => void;
  /** Called after LFS objects were downloaded. */
  onDownloaded?: (r: LfsTransferResult) => void;
}

export interface RemoteRepo {
  fs: RepoFs;
  dir: string;
  gitdir: string;
  cache: object;
  /** Local first (`<gitdir>/lfs` on `fs`); downloads what is absent from the LFS server. */
  store: RemoteObjectStore<ObjectStore>;
  url: string;
  lfsUrl: string | null;
  /**
   * 'cloned': nothing was there; 'fetched': a clone was there and new commits were fetched;
   * 'current': a clone was there and the server had nothing new (only its refs were read);
   * 'offline': a clone was there and the server did not answer (see `offlineReason`).
   */
  source: 'cloned' | 'fetched' | 'current' | 'offline';
  offlineReason?: string;
}

/** `dir` holds a clone of another URL. */
export class CloneMismatchError extends ThetaError {
  constructor(dir: string, has: string, wanted: string) {
    super('E_CLONE_MISMATCH', `${dir} holds a clone of ${has}, not ${wanted}: pass another dir, or remove it first (removeTree)`, { dir, has, wanted });
    this.name = 'CloneMismatchError';
  }
}

/** The clone could not be made (server unreachable, not a git repository, refused). */
export class CloneFailedError extends ThetaError {
  constructor(url: string, reason: string) {
    super('E_CLONE_FAILED', `could not clone ${url}: ${reason.split('\n')[0]}`, { url });
    this.name = 'CloneFailedError';
  }
}

const isMissing = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes((e as { code?: string })?.code ?? '');

/** Remove a directory and everything under it (rm -r), with only single-level calls. Missing is fine. */
export async function removeTree(fs: RepoFs, path: string): Promise<void> {
  const p = promiseFs(fs);
  await removeIn(p, path);
}

async function removeIn(p: PromiseFsLike, path: string): Promise<void> {
  let st;
  try {
    st = await p.lstat(path);
  } catch (e) {
    if (isMissing(e)) return;
    throw e;
  }
  if (!st.isDirectory()) {
    await p.unlink(path);
    return;
  }
  for (const name of (await p.readdir(path)) as string[]) await removeIn(p, joinPath(path, name));
  await p.rmdir(path);
}

/** The URL of the clone's `origin`, or null when `dir` holds no clone. */
async function clonedUrl(fs: RepoFs, dir: string): Promise<string | null> {
  try {
    const url = await git.getConfig({ fs, dir, path: 'remote.origin.url' });
    return typeof url === 'string' ? url : null;
  } catch {
    return null;
  }
}

/** The server's branches and tags (name -> oid), by one ref listing. */
async function serverRefs(http: HttpClient, url: string, headers: Record<string, string>): Promise<Map<string, string>> {
  const refs = await git.listServerRefs({ http, url, headers, protocolVersion: 1 });
  const out = new Map<string, string>();
  for (const r of refs) {
    if (r.ref.startsWith('refs/heads/')) out.set(`refs/remotes/origin/${r.ref.slice(11)}`, r.oid);
    else if (r.ref.startsWith('refs/tags/') && !r.ref.endsWith('^{}')) out.set(r.ref, r.oid);
  }
  return out;
}

/** The clone's remote-tracking branches and tags (name -> oid), named as serverRefs names them. */
async function localRefs(fs: RepoFs, dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const b of await git.listBranches({ fs, dir, remote: 'origin' })) {
    if (b === 'HEAD') continue;
    out.set(`refs/remotes/origin/${b}`, await git.resolveRef({ fs, dir, ref: `refs/remotes/origin/${b}` }));
  }
  for (const t of await git.listTags({ fs, dir })) out.set(`refs/tags/${t}`, await git.resolveRef({ fs, dir, ref: `refs/tags/${t}`, depth: 1 }));
  return out;
}

const sameRefs = (a: Map<string, string>, b: Map<string, string>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/** Move every local branch to its remote-tracking branch (the clone is a read-only mirror), creating missing ones. */
async function followRemote(fs: RepoFs, dir: string): Promise<void> {
  for (const b of await git.listBranches({ fs, dir, remote: 'origin' })) {
    if (b === 'HEAD') continue;
    const oid = await git.resolveRef({ fs, dir, ref: `refs/remotes/origin/${b}` });
    await git.writeRef({ fs, dir, ref: `refs/heads/${b}`, value: oid, force: true });
  }
}

export async function openRemote(o: OpenRemoteOptions): Promise<RemoteRepo> {
  required('openRemote', o as unknown as Record<string, unknown>, ['url']);
  const fs = o.fs ?? createMemFs();
  const dir = o.dir ?? '/repo';
  const gitdir = joinPath(dir, '.git');
  const http = o.http ?? webHttp;
  const headers = o.headers ?? {};
  const cache = o.cache ?? {};
  const { url } = o;

  let source: RemoteRepo['source'];
  let offlineReason: string | undefined;
  const has = await clonedUrl(fs, dir);
  if (has === null) {
    try {
      // the whole history (revisions like HEAD~3 need it), no working tree: models are read from blobs
      await git.clone({ fs, http, dir, url, headers, noCheckout: true, cache, onProgress: o.onProgress });
    } catch (e) {
      await removeTree(fs, dir).catch(() => {}); // no half clone left for next time
      throw new CloneFailedError(url, (e as Error).message);
    }
    source = 'cloned';
  } else {
    if (has !== url) throw new CloneMismatchError(dir, has, url);
    try {
      const remote = await serverRefs(http, url, headers);
      if (sameRefs(remote, await localRefs(fs, dir))) {
        source = 'current';
      } else {
        await git.fetch({ fs, http, dir, url, headers, cache, tags: true, prune: true, pruneTags: true, onProgress: o.onProgress });
        await followRemote(fs, dir);
        source = 'fetched';
      }
    } catch (e) {
      source = 'offline';
      offlineReason = String((e as Error)?.message ?? e).split('\n')[0];
    }
  }

  const lfsUrl = o.lfsUrl !== undefined ? o.lfsUrl : endpointFromGitUrl(url)?.url ?? null;
  const client = lfsUrl && /^https?:/i.test(lfsUrl) ? new LfsClient({ url: lfsUrl, headers, onProgress: o.onLfsProgress }) : null;
  const store = createRemoteStore(defaultStore(fs, gitdir), { remote: client, onDownloaded: o.onDownloaded });
  return { fs, dir, gitdir, cache, store, url, lfsUrl, source, ...(offlineReason !== undefined ? { offlineReason } : {}) };
}
