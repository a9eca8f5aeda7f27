/**
 * The Node edge of LFS transfers: configuration from git (`git config --get-regexp`) and
 * `.lfsconfig`, credentials through `git credential fill/approve/reject`, a progress bar on stderr
 * when it is a terminal, local-path remotes (objects copied store to store), and the walks that
 * find which objects a set of commits or refs needs (theta metadata blobs -> referencedObjects).
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pc from 'picocolors';
import { ThetaError } from '../../core/errors.ts';
import { LfsClient, LfsTransferError, type LfsAuth, type LfsObject, type LfsObjectFailure, type LfsProgress, type LfsTransferResult } from '../../lfs/client.ts';
import { discoverLfsEndpoint, type LfsEndpoint, type LfsOperation } from '../../lfs/endpoint.ts';
import type { ObjectDownloader } from '../../lfs/remote-store.ts';
import type { ObjectStore } from '../../store/types.ts';
import { entryObjects, looksLikeMetadata, parseMetadata, referencedObjects } from '../../theta/metadata.ts';
import { git, gitCommonDir, gitText } from '../git/git.ts';
import { openLocalStore } from '../files/store-fs.ts';
import { nodeHttp, readHttpConfig } from './http-node.ts';
import { faultPoint } from '../faults.ts';
import { pythonBlobObjects } from '../repo/python-theta.ts';

/** Largest blob read to look for theta metadata (metadata of a model with ~100k tensors stays well below). */
export const MAX_METADATA_BYTES = 64 << 20;
const ZERO_SHA = /^0+$/;

// ---------------------------------------------------------------- configuration

function parseZConfig(out: Buffer): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const entry of out.toString('utf8').split('\0')) {
    if (!entry) continue;
    const nl = entry.indexOf('\n');
    const key = nl < 0 ? entry : entry.slice(0, nl);
    const value = nl < 0 ? 'true' : entry.slice(nl + 1);
    map.set(key, [...(map.get(key) ?? []), value]);
  }
  return map;
}

const CONFIG_KEYS = '^(lfs|remote|url|branch)\\.';

/** The git config keys endpoint discovery needs (lfs.*, remote.*, url.*, branch.*). */
export async function readGitConfig(cwd: string): Promise<Map<string, string[]>> {
  const r = await git(['config', '-z', '--get-regexp', CONFIG_KEYS], { cwd, allowFail: true });
  return parseZConfig(r.stdout);
}

/** `.lfsconfig` values: the file in the working tree, else the one committed at HEAD (bare repositories). */
export async function readLfsConfig(cwd: string): Promise<Map<string, string[]>> {
  const root = (await git(['rev-parse', '--show-toplevel'], { cwd, allowFail: true })).stdout.toString().trim();
  const file = root ? join(root, '.lfsconfig') : '';
  const source = file && existsSync(file) ? ['-f', file] : ['--blob', 'HEAD:.lfsconfig'];
  const r = await git(['config', '-z', ...source, '--get-regexp', '^(lfs|remote)\\.'], { cwd, allowFail: true });
  return r.code === 0 ? parseZConfig(r.stdout) : new Map();
}

/** The remote objects come from by default: the current branch's, else origin, else the only one. */
export async function defaultRemote(cwd: string): Promise<string> {
  const branch = (await git(['symbolic-ref', '--short', '-q', 'HEAD'], { cwd, allowFail: true })).stdout.toString().trim();
  if (branch) {
    const r = (await git(['config', '--get', `branch.${branch}.remote`], { cwd, allowFail: true })).stdout.toString().trim();
    if (r && r !== '.') return r;
  }
  const remotes = (await git(['remote'], { cwd, allowFail: true })).stdout.toString().split('\n').filter(Boolean);
  if (remotes.includes('origin') || remotes.length !== 1) return 'origin';
  return remotes[0]!;
}

/** The checked-out branch as a full ref (`refs/heads/main`), sent with downloads as git-lfs does; undefined when detached. */
export async function currentRef(cwd: string): Promise<string | undefined> {
  const r = (await git(['symbolic-ref', '-q', 'HEAD'], { cwd, allowFail: true })).stdout.toString().trim();
  return r || undefined;
}

export async function findEndpoint(cwd: string, remote: string, operation: LfsOperation): Promise<LfsEndpoint | null> {
  const [config, lfsconfig] = await Promise.all([readGitConfig(cwd), readLfsConfig(cwd)]);
  return discoverLfsEndpoint({ config, lfsconfig, remote, operation });
}

// ---------------------------------------------------------------- credentials

function credentialInput(url: string, extra: Record<string, string> = {}): string {
  const u = new URL(url);
  const fields: Record<string, string> = { protocol: u.protocol.replace(/:$/, ''), host: u.host, path: u.pathname.replace(/^\//, ''), ...extra };
  return Object.entries(fields).map(([k, v]) => `${k}=${v}\n`).join('') + '\n';
}

/** LfsAuth answered by `git credential fill`, remembered with `approve`, forgotten with `reject`. */
export function gitCredentialAuth(cwd: string): LfsAuth {
  let filled: Record<string, string> | null = null;
  return {
    async onUnauthorized(url) {
      const r = await git(['credential', 'fill'], { cwd, input: credentialInput(url), allowFail: true });
      if (r.code !== 0) return null;
      const cred: Record<string, string> = {};
      for (const line of r.stdout.toString().split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) cred[line.slice(0, eq)] = line.slice(eq + 1);
      }
      if (cred.username === undefined || cred.password === undefined) return null;
      filled = cred;
      return { Authorization: `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}` };
    },
    async approve(url) {
      if (filled) await git(['credential', 'approve'], { cwd, input: credentialInput(url, filled), allowFail: true });
    },
    async reject(url) {
      if (filled) await git(['credential', 'reject'], { cwd, input: credentialInput(url, filled), allowFail: true });
    },
  };
}

// ---------------------------------------------------------------- progress

function mb(n: number): string {
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
}

/** A one-line progress bar on stderr, only when stderr is a terminal; `done()` ends the line. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): { onProgress?: (p: LfsProgress) => void; done(): void } {
  if (!stream.isTTY) return { done() {} };
  let last = 0;
  let shown = false;
  const draw = (p: LfsProgress) => {
    const width = 24;
    const frac = p.bytes ? Math.min(1, p.doneBytes / p.bytes) : p.objects ? p.doneObjects / p.objects : 1;
    const fill = Math.round(frac * width);
    stream.write(`\r${label} ${pc.cyan('█'.repeat(fill))}${pc.dim('░'.repeat(width - fill))} ${p.doneObjects}/${p.objects} objects, ${mb(p.doneBytes)}/${mb(p.bytes)}\x1b[K`);
    shown = true;
  };
  return {
    onProgress(p) {
      const now = Date.now();
      if (now - last < 80 && p.doneObjects < p.objects) return;
      last = now;
      draw(p);
    },
    done() {
      if (shown) stream.write('\n');
      shown = false;
    },
  };
}

// ---------------------------------------------------------------- transfer clients

/** What push and fetch need from a transfer client (LfsClient, or a copy between local stores). */
export interface Transfer extends ObjectDownloader {
  upload(objects: LfsObject[], from: ObjectStore): Promise<LfsTransferResult>;
  /** For messages. */
  readonly url: string;
}

/** The git directory of a local repository path (a bare repository or a work tree). */
function localGitDir(path: string): string {
  const dotGit = join(path, '.git');
  if (existsSync(dotGit) && statSync(dotGit).isDirectory()) return dotGit;
  return path;
}

/** Objects copied between this repository's store and another local repository's (remotes that are paths). */
export function fileTransfer(path: string): Transfer {
  const other = openLocalStore(localGitDir(path));
  async function copy(objects: LfsObject[], from: ObjectStore, to: ObjectStore, operation: 'upload' | 'download'): Promise<LfsTransferResult> {
    const result: LfsTransferResult = { transferred: [], skipped: [], bytes: 0 };
    const failures: LfsObjectFailure[] = [];
    for (const x of objects) {
      if (await to.has(x.oid)) { result.skipped.push(x); continue; }
      try {
        const r = await to.put(from.getChunks(x.oid), x.oid);
        result.transferred.push(x);
        result.bytes += r.size;
      } catch (e) {
        const t = e as ThetaError;
        failures.push({ oid: x.oid, size: x.size, name: x.name, status: 0, code: t.code ?? 'E_COPY', message: t.message });
      }
    }
    if (failures.length) throw new LfsTransferError(operation, failures, result.transferred.length);
    return result;
  }
  return {
    url: path,
    download: (objects, into) => copy(objects, other, into, 'download'),
    upload: (objects, from) => copy(objects, from, other, 'upload'),
  };
}

export interface NodeTransferOptions {
  cwd: string;
  remote: string;
  operation: LfsOperation;
  /** Shown before the progress bar. */
  label?: string;
  /** The ref the transfer is for (sent in the batch request; some servers require it). */
  ref?: string;
  onProgress?: (p: LfsProgress) => void;
}

/** The transfer client for a remote, or null when no LFS endpoint can be found for it. */
export async function openTransfer(o: NodeTransferOptions): Promise<(Transfer & { endpoint: LfsEndpoint }) | null> {
  // (the http.* config is read alongside: an HTTP endpoint needs it next)
  const httpConfig = readHttpConfig(o.cwd);
  httpConfig.catch(() => {});
  const endpoint = await findEndpoint(o.cwd, o.remote, o.operation);
  if (!endpoint) return null;
  if (endpoint.kind === 'file') {
    const root = (await git(['rev-parse', '--show-toplevel'], { cwd: o.cwd, allowFail: true })).stdout.toString().trim() || o.cwd;
    const p = /^file:\/\//i.test(endpoint.url) ? fileURLToPath(endpoint.url) : isAbsolute(endpoint.url) ? endpoint.url : resolve(root, endpoint.url);
    return Object.assign(fileTransfer(p), { endpoint });
  }
  const headers: Record<string, string> = {};
  if (endpoint.username !== undefined) {
    headers.Authorization = `Basic ${Buffer.from(`${endpoint.username}:${endpoint.password ?? ''}`).toString('base64')}`;
  }
  const http = await nodeHttp(o.cwd, endpoint.url, httpConfig);
  const client = new LfsClient({ url: endpoint.url, headers, auth: gitCredentialAuth(o.cwd), onProgress: o.onProgress, ref: o.ref, fetch: http.fetch, eagerAuth: http.eagerAuth });
  return Object.assign(client, { endpoint });
}

// ---------------------------------------------------------------- which objects commits need

interface BlobAt { sha: string; path: string }

/** Read blobs with one `git cat-file --batch`, skipping ones larger than MAX_METADATA_BYTES. */
async function readSmallBlobs(cwd: string, blobs: BlobAt[]): Promise<{ blob: BlobAt; bytes: Buffer }[]> {
  if (!blobs.length) return [];
  const unique = [...new Map(blobs.map((b) => [b.sha, b])).values()];
  const check = await git(['cat-file', '--batch-check=%(objectname) %(objecttype) %(objectsize)'], { cwd, input: unique.map((b) => b.sha).join('\n') + '\n' });
  const small = new Set<string>();
  for (const line of check.stdout.toString().split('\n')) {
    const [sha, type, size] = line.split(' ');
    // metadata starts with a fixed prefix, so anything shorter than ~16 bytes is not metadata
    if (type === 'blob' && Number(size) >= 16 && Number(size) <= MAX_METADATA_BYTES) small.add(sha!);
  }
  const wanted = unique.filter((b) => small.has(b.sha));
  if (!wanted.length) return [];
  const out = (await git(['cat-file', '--batch'], { cwd, input: wanted.map((b) => b.sha).join('\n') + '\n' })).stdout;
  const res: { blob: BlobAt; bytes: Buffer }[] = [];
  let off = 0;
  for (const b of wanted) {
    const nl = out.indexOf(0x0a, off);
    const header = out.subarray(off, nl).toString();
    const size = Number(header.split(' ')[2]);
    if (!header.startsWith(b.sha) || !Number.isFinite(size)) throw new ThetaError('E_GIT', `git cat-file --batch: unexpected answer '${header}'`, {});
    res.push({ blob: b, bytes: out.subarray(nl + 1, nl + 1 + size) });
    off = nl + 1 + size + 1;
  }
  return res;
}

/** An object a tracked file needs: `name` says file and tensor (for messages), `path` the file. */
export type ThetaObject = LfsObject & { path: string };

/** Every object the theta metadata among `blobs` names, each named by its file path and tensor. */
async function objectsOfBlobs(cwd: string, blobs: BlobAt[]): Promise<ThetaObject[]> {
  const objects = new Map<string, ThetaObject>();
  for (const { blob, bytes } of await readSmallBlobs(cwd, blobs)) {
    // metadata the Python Git-Theta wrote names its objects directly (earlier ones are in earlier commits' blobs)
    const py = pythonBlobObjects(bytes);
    if (!py && !looksLikeMetadata(bytes)) continue;
    if (py) {
      for (const r of py) if (!objects.has(r.oid)) objects.set(r.oid, { oid: r.oid, size: r.size, name: `${blob.path} (Python Git-Theta object)`, path: blob.path });
      continue;
    }
    const meta = parseMetadata(bytes, blob.path);
    // each object named by file and tensor, so a failed transfer says what it was for
    const add = (r: { oid: string; size: number }, what: string) => {
      if (!objects.has(r.oid)) objects.set(r.oid, { oid: r.oid, size: r.size, name: `${blob.path} ${what}`, path: blob.path });
    };
    add(meta.skeleton, '(file skeleton)');
    for (const [tensor, entry] of Object.entries(meta.tensors)) for (const r of entryObjects(entry)) add(r, `tensor '${tensor}'`);
  }
  return [...objects.values()];
}

/** Blobs added or changed by these commits (against each parent; the whole tree for a root commit). */
export async function objectsOfCommits(cwd: string, commits: string[]): Promise<ThetaObject[]> {
  if (!commits.length) return [];
  const r = await git(['diff-tree', '--stdin', '-r', '-m', '--root', '--no-commit-id', '--no-renames', '-z'], { cwd, input: commits.join('\n') + '\n' });
  const parts = r.stdout.toString('utf8').split('\0');
  const blobs: BlobAt[] = [];
  for (let i = 0; i < parts.length; i++) {
    const m = /^:(\d{6}) (\d{6}) [0-9a-f]+ ([0-9a-f]+) ([A-Z])\d*$/.exec(parts[i]!);
    if (!m) continue;
    const path = parts[++i] ?? '';
    if (m[4] === 'D' || !m[2]!.startsWith('100') || ZERO_SHA.test(m[3]!)) continue;
    blobs.push({ sha: m[3]!, path });
  }
  return objectsOfBlobs(cwd, blobs);
}

/** Every object the theta-tracked files at these revisions need. */
export async function objectsAtRefs(cwd: string, refs: string[]): Promise<ThetaObject[]> {
  const blobs: BlobAt[] = [];
  for (const ref of refs) {
    const out = (await git(['ls-tree', '-r', '-z', '--full-tree', ref], { cwd })).stdout.toString('utf8');
    for (const entry of out.split('\0')) {
      const m = /^(\d{6}) blob ([0-9a-f]+)\t(.*)$/s.exec(entry);
      if (m && m[1]!.startsWith('100')) blobs.push({ sha: m[2]!, path: m[3]! });
    }
  }
  return objectsOfBlobs(cwd, blobs);
}

// ---------------------------------------------------------------- push and fetch

export interface PushSummary {
  objects: number;
  uploaded: number;
  bytes: number;
  present: number;
  url: string | null;
}

/**
 * The pre-push work: upload exactly the objects the pushed commits need and the server lacks.
 * `stdin` is what git gives the hook: lines `<local ref> <local sha> <remote ref> <remote sha>`.
 * Throws (so the hook exits non-zero and git refuses the push) when anything could not be sent.
 */
export async function prePushUpload(o: { cwd: string; remote: string; url?: string; stdin: string; log?: (s: string) => void }): Promise<PushSummary> {
  // the commits each pushed ref brings, grouped by the remote ref (sent as the batch's `ref`)
  const byRef = new Map<string, Set<string>>();
  for (const line of o.stdin.split('\n')) {
    // git's lines only; anything else (blank, malformed) names no commits
    const m = /^(\S+) ([0-9a-f]{40}|[0-9a-f]{64}) (\S+) ([0-9a-f]{40}|[0-9a-f]{64})$/.exec(line.trim());
    if (!m) continue;
    const [, , localSha, remoteRef, remoteSha] = m as unknown as [string, string, string, string, string];
    if (ZERO_SHA.test(localSha)) continue; // a deletion sends nothing
    const known = !ZERO_SHA.test(remoteSha) && (await git(['cat-file', '-e', `${remoteSha}^{commit}`], { cwd: o.cwd, allowFail: true })).code === 0;
    const not = known ? [remoteSha] : [o.remote ? `--remotes=${o.remote}` : '--remotes'];
    const list = await gitText(['rev-list', localSha, '--not', ...not], { cwd: o.cwd });
    const set = byRef.get(remoteRef) ?? new Set<string>();
    for (const c of list.split('\n')) if (c) set.add(c);
    byRef.set(remoteRef, set);
  }
  const groups: { ref: string; objects: ThetaObject[] }[] = [];
  const seen = new Set<string>();
  for (const [ref, commits] of byRef) {
    const objects = (await objectsOfCommits(o.cwd, [...commits])).filter((x) => !seen.has(x.oid));
    for (const x of objects) seen.add(x.oid);
    if (objects.length) groups.push({ ref, objects });
  }
  const summary: PushSummary = { objects: seen.size, uploaded: 0, bytes: 0, present: 0, url: null };
  if (!groups.length) return summary;
  // a remote given as a URL: git passes the URL as both arguments
  const remote = o.remote || o.url || 'origin';
  const store = openLocalStore(await gitCommonDir(o.cwd));
  const bar = progressBar('git-theta: uploading');
  try {
    for (const g of groups) {
      const transfer = await openTransfer({ cwd: o.cwd, remote, operation: 'upload', onProgress: (p) => { faultPoint('upload'); bar.onProgress?.(p); }, ref: g.ref });
      if (!transfer) {
        throw new ThetaError('E_LFS_NO_ENDPOINT', `no LFS server known for remote '${remote}': set one with 'git config lfs.url <url>' (or remote.${remote}.lfsurl); the push was stopped before anything was sent`, { remote });
      }
      summary.url = transfer.url;
      // the push-safety rule: every object is either confirmed present by the server's batch answer or
      // uploaded (and verified when the server asks for it); anything else throws, naming file and tensor
      const r = await transfer.upload(g.objects, store);
      if (r.transferred.length + r.skipped.length !== g.objects.length) {
        const done = new Set([...r.transferred, ...r.skipped].map((x) => x.oid));
        const lost = g.objects.filter((x) => !done.has(x.oid));
        throw new LfsTransferError('upload', lost.map((x) => ({ oid: x.oid, size: x.size, name: x.name, status: 0, code: 'E_LFS_UNCONFIRMED', message: 'neither uploaded nor confirmed present by the server' })), r.transferred.length);
      }
      summary.uploaded += r.transferred.length;
      summary.bytes += r.bytes;
      summary.present += r.skipped.length;
    }
  } finally {
    bar.done();
  }
  o.log?.(`git-theta: ${summary.uploaded} object${summary.uploaded === 1 ? '' : 's'} uploaded (${mb(summary.bytes)}), ${summary.present} already on ${summary.url}\n`);
  return summary;
}

export interface FetchSummary {
  objects: number;
  missing: LfsObject[];
  downloaded: number;
  bytes: number;
}

/** Download every object the theta files at `refs` need that the local store lacks. */
export async function fetchObjects(o: { cwd: string; remote?: string; refs?: string[]; log?: (s: string) => void }): Promise<FetchSummary> {
  const refs = o.refs?.length ? o.refs : ['HEAD'];
  const objects = await objectsAtRefs(o.cwd, refs);
  const store = openLocalStore(await gitCommonDir(o.cwd));
  const missing: LfsObject[] = [];
  for (const x of objects) if (!(await store.has(x.oid))) missing.push(x);
  const summary: FetchSummary = { objects: objects.length, missing, downloaded: 0, bytes: 0 };
  if (!missing.length) return summary;
  const remote = o.remote ?? (await defaultRemote(o.cwd));
  const bar = progressBar('git-theta: downloading');
  const transfer = await openTransfer({ cwd: o.cwd, remote, operation: 'download', onProgress: bar.onProgress, ref: await currentRef(o.cwd) });
  if (!transfer) throw new ThetaError('E_LFS_NO_ENDPOINT', `no LFS server known for remote '${remote}': set one with 'git config lfs.url <url>' (or remote.${remote}.lfsurl)`, { remote });
  try {
    const r = await transfer.download(missing, store);
    summary.downloaded = r.transferred.length;
    summary.bytes = r.bytes;
  } finally {
    bar.done();
  }
  o.log?.(`git-theta: ${summary.downloaded} object${summary.downloaded === 1 ? '' : 's'} downloaded (${mb(summary.bytes)}) from ${transfer.url}\n`);
  return summary;
}
