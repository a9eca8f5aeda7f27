/**
 * A git-lfs batch API client on `fetch` (docs/api/batch.md and basic-transfers.md of git-lfs), the
 * same code in Node, Deno and browsers.
 *
 *   POST <endpoint>/objects/batch   application/vnd.git-lfs+json
 *     {"operation": "download"|"upload", "transfers": ["basic"], "objects": [{oid, size}], "hash_algo": "sha256"}
 *   then per object the server's actions: download (GET href), upload (PUT href) and verify
 *   (POST href {oid, size}), each with the headers the server gave.
 *
 * Everything runtime-specific is injected: `fetch`, extra headers (e.g. Authorization), an `auth`
 * hook asked once after a 401 (the Node edge answers it with `git credential fill`), `sleep` (for
 * tests), and a progress callback. Requests are retried with exponential backoff on network errors
 * (not TLS trust errors) and 5xx, a bounded number of times; 429 waits as Retry-After says, else long
 * enough to outlast a rate window (bounded). Redirects, `_links`, chunked uploads, `authenticated`,
 * expired actions and resumed (Range) downloads are handled as git-lfs handles them (lfs-http.ts). Every download is hashed while it
 * streams into the store and rejected before the store renames it into place when its SHA-256 or
 * size is wrong, so a corrupt object is never stored. Problems with single objects are collected
 * and thrown together as one LfsTransferError naming each object.
 *
 * Why over 500 lines: LfsClient is one batch-then-transfer flow (batch, download with resume,
 * upload, verify, retries) whose steps share the request, auth and progress state; its HTTP
 * behaviours are already in http.ts and endpoint discovery in endpoint.ts.
 */
import { ObjectCorruptError, ThetaError } from '../core/errors.ts';
import { assertOid, isOid, type ObjectStore, type Oid, type PutResult } from '../store/types.ts';
import { bodyChunks, bodyInit, sendableHeaders, describeFetchError, fetchErrorText, fetchFollowing, isExpired, rateLimitDelay, RATE_LIMIT_BACKOFF_MS, RATE_LIMIT_MAX_WAIT_MS, redactUrl } from './http.ts';

export const LFS_MEDIA_TYPE = 'application/vnd.git-lfs+json';
/** Objects per batch request: git-lfs's own batch size. */
export const DEFAULT_BATCH_SIZE = 100;
/** Transfers running at once (git-lfs's lfs.concurrenttransfers default is 8; 4 is kinder to small servers). */
export const DEFAULT_CONCURRENCY = 4;
/** Retries after the first attempt of any one request. */
export const DEFAULT_RETRIES = 4;
/** First backoff delay; doubled per retry up to MAX_BACKOFF_MS. */
export const DEFAULT_BACKOFF_MS = 250;
export const MAX_BACKOFF_MS = 10_000;
/** A server asking us to wait longer than this (Retry-After) is waited for only this long. */
export const MAX_RETRY_AFTER_MS = 60_000;

export type LfsOperation = 'download' | 'upload';

/** An object to move: its id and size, and optionally a name (file / tensor) for messages. */
export interface LfsObject {
  oid: Oid;
  size: number;
  name?: string;
}

export interface LfsAction {
  href: string;
  header?: Record<string, string>;
  expires_in?: number;
  expires_at?: string;
}

export interface LfsBatchObject {
  oid: string;
  size: number;
  authenticated?: boolean;
  actions?: { download?: LfsAction; upload?: LfsAction; verify?: LfsAction };
  /** Legacy name of `actions` (servers from before the batch API's final form); read as `actions`. */
  _links?: { download?: LfsAction; upload?: LfsAction; verify?: LfsAction };
  error?: { code: number; message: string };
}

export interface LfsBatchResponse {
  transfer?: string;
  objects: LfsBatchObject[];
  hash_algo?: string;
  /** When the answer arrived (Date.now()), the base of each action's `expires_in`. Set by the client. */
  receivedAt?: number;
}

export interface LfsProgress {
  operation: LfsOperation;
  /** Objects that need a transfer (known after the batch answers) and those done so far. */
  objects: number;
  doneObjects: number;
  bytes: number;
  doneBytes: number;
}

export interface LfsAuth {
  /**
   * Called once after the server answered 401: headers to retry with (e.g. Basic credentials),
   * or null to give up.
   */
  onUnauthorized(url: string): Promise<Record<string, string> | null>;
  /** The headers from onUnauthorized were accepted / refused (store or forget them). */
  approve?(url: string): Promise<void>;
  reject?(url: string): Promise<void>;
}

export interface LfsClientOptions {
  /** The LFS API base, e.g. `https://host/org/repo.git/info/lfs`. */
  url: string;
  fetch?: typeof fetch;
  /** Headers sent with every API request (batch, verify), e.g. Authorization. */
  headers?: Record<string, string>;
  auth?: LfsAuth;
  /** A ref the objects belong to (sent as `ref.name`; servers may use it for access control). */
  ref?: string;
  /** Ask `auth` for credentials before the first request (git-lfs's `lfs.<url>.access = basic`). */
  eagerAuth?: boolean;
  /** First wait after a 429 that carries no Retry-After (doubled per retry, bounded in total). */
  rateLimitBackoffMs?: number;
  batchSize?: number;
  concurrency?: number;
  retries?: number;
  backoffMs?: number;
  /** How to wait (tests pass a recorder). */
  sleep?: (ms: number) => Promise<void>;
  onProgress?: (p: LfsProgress) => void;
}

export interface LfsTransferResult {
  /** Objects moved. */
  transferred: LfsObject[];
  /** Objects that needed no transfer (already in the store / already on the server). */
  skipped: LfsObject[];
  bytes: number;
}

export interface LfsObjectFailure {
  oid: string;
  size: number;
  name?: string;
  /** HTTP status (or 0 for a local problem: corrupt download, missing local object). */
  status: number;
  code: string;
  message: string;
}

/** The server or the network refused a whole request (after retries). */
export class LfsRequestError extends ThetaError {
  constructor(message: string, data: { url: string; status?: number; [k: string]: unknown }) {
    super(data.status === 401 || data.status === 403 ? 'E_LFS_AUTH' : 'E_LFS_REQUEST', message, data);
    this.name = 'LfsRequestError';
  }
}

/** Some objects could not be moved; `data.failures` names each one. */
export class LfsTransferError extends ThetaError {
  readonly failures: LfsObjectFailure[];
  constructor(operation: LfsOperation, failures: LfsObjectFailure[], done: number) {
    const shown = failures.slice(0, 3).map((f) => `${f.name ? `${f.name} ` : ''}(${f.oid.slice(0, 12)}): ${f.message}`).join('; ');
    super(
      'E_LFS_TRANSFER',
      `LFS ${operation} failed for ${failures.length} object${failures.length === 1 ? '' : 's'}` +
        `${done ? ` (${done} others done)` : ''}: ${shown}${failures.length > 3 ? `; and ${failures.length - 3} more` : ''}`,
      { operation, failures, done },
    );
    this.name = 'LfsTransferError';
    this.failures = failures;
  }
}

/** A downloaded object's bytes do not hash to its id (or have the wrong size). Nothing was stored. */
export class LfsCorruptDownloadError extends ThetaError {
  constructor(oid: string, detail: string) {
    super('E_LFS_CORRUPT', `downloaded object ${oid} is corrupt (${detail}); it was not stored`, { oid, detail });
    this.name = 'LfsCorruptDownloadError';
  }
}

class HttpStatusError extends Error {
  constructor(readonly status: number, readonly body: string, readonly retryAfterMs: number | null) {
    super(`HTTP ${status}`);
  }
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retry-After as milliseconds: delta-seconds or an HTTP date; null if absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.min(Math.max(0, t - now), MAX_RETRY_AFTER_MS);
}

function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

function serverMessage(body: string): string {
  try {
    const j = JSON.parse(body);
    if (j && typeof j.message === 'string') return j.message;
  } catch {
    // not JSON
  }
  return body.trim().split('\n')[0]!.slice(0, 200);
}

function chunked<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

async function pool<T>(items: T[], n: number, work: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(runners);
}

function dedupe(objects: LfsObject[]): LfsObject[] {
  const seen = new Map<string, LfsObject>();
  for (const o of objects) {
    assertOid(o.oid);
    if (!Number.isSafeInteger(o.size) || o.size < 0) throw new ThetaError('E_ARGUMENT', `object ${o.oid}: size must be a whole number >= 0 (got ${o.size})`, { oid: o.oid });
    if (!seen.has(o.oid)) seen.set(o.oid, o);
  }
  return [...seen.values()];
}

export class LfsClient {
  readonly url: string;
  private readonly fetchFn: typeof fetch;
  private headers: Record<string, string>;
  private readonly o: LfsClientOptions;
  private authTried = false;

  constructor(options: LfsClientOptions) {
    if (!options || typeof options.url !== 'string' || !/^https?:\/\//i.test(options.url)) {
      throw new ThetaError('E_ARGUMENT', `LfsClient: \`url\` must be an http(s) URL (got ${JSON.stringify(options?.url)})`, {});
    }
    this.o = options;
    this.url = options.url.replace(/\/+$/, '');
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new ThetaError('E_ARGUMENT', 'LfsClient: no fetch available; pass `fetch`', {});
    this.fetchFn = (input, init) => f(input, init);
    this.headers = { ...(options.headers ?? {}) };
  }

  /** One request with retries; resolves with a 2xx response, else throws (HttpStatusError or a network error). */
  private async request(url: string, init: () => RequestInit, what: string): Promise<Response> {
    const retries = this.o.retries ?? DEFAULT_RETRIES;
    const base = this.o.backoffMs ?? DEFAULT_BACKOFF_MS;
    const sleep = this.o.sleep ?? defaultSleep;
    let failures = 0;
    let limited = 0;
    let limitedWait = 0;
    for (;;) {
      let res: Response;
      try {
        res = await fetchFollowing(this.fetchFn, url, init);
      } catch (e) {
        const info = describeFetchError(e);
        if (!info.retryable || failures >= retries) {
          const attempts = failures + 1;
          throw new LfsRequestError(
            `${what}: ${info.retryable ? `network error after ${attempts} attempt${attempts === 1 ? '' : 's'}: ` : ''}${fetchErrorText(e)} (${redactUrl(url)})`,
            { url: redactUrl(url), attempts, errno: info.code },
          );
        }
        await sleep(Math.min(base * 2 ** failures++, MAX_BACKOFF_MS));
        continue;
      }
      if (res.ok) return res;
      const body = await res.text().catch(() => '');
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
      if (res.status === 429) {
        // rate limited: wait as told, else long enough to outlast a typical window (bounded in total)
        const wait = retryAfter ?? rateLimitDelay(limited, this.o.rateLimitBackoffMs ?? RATE_LIMIT_BACKOFF_MS);
        if (limitedWait + wait <= RATE_LIMIT_MAX_WAIT_MS) {
          limited++;
          limitedWait += wait;
          await sleep(wait);
          continue;
        }
      } else if (isRetryableStatus(res.status) && failures < retries) {
        await sleep(retryAfter ?? Math.min(base * 2 ** failures++, MAX_BACKOFF_MS));
        continue;
      }
      throw new HttpStatusError(res.status, body, retryAfter);
    }
  }

  private apiInit(body: unknown): () => RequestInit {
    return () => ({
      method: 'POST',
      headers: { ...this.headers, Accept: LFS_MEDIA_TYPE, 'Content-Type': LFS_MEDIA_TYPE },
      body: JSON.stringify(body),
    });
  }

  /** POST <url>/objects/batch for up to batchSize objects; the parsed answer. */
  async batch(operation: LfsOperation, objects: LfsObject[]): Promise<LfsBatchResponse> {
    const url = `${this.url}/objects/batch`;
    const body = {
      operation,
      transfers: ['basic'],
      ...(this.o.ref ? { ref: { name: this.o.ref } } : {}),
      objects: objects.map((x) => ({ oid: x.oid, size: x.size })),
      hash_algo: 'sha256',
    };
    let res: Response;
    if (this.o.eagerAuth && this.o.auth && !this.authTried) {
      this.authTried = true;
      const h = await this.o.auth.onUnauthorized(this.url);
      if (h) this.headers = { ...this.headers, ...h };
    }
    try {
      res = await this.request(url, this.apiInit(body), `LFS batch ${operation}`);
    } catch (e) {
      if (e instanceof HttpStatusError && e.status === 401 && this.o.auth && !this.authTried) {
        this.authTried = true;
        const h = await this.o.auth.onUnauthorized(this.url);
        if (h) {
          this.headers = { ...this.headers, ...h };
          try {
            const r = await this.batch(operation, objects);
            await this.o.auth.approve?.(this.url);
            return r;
          } catch (e2) {
            // only a 401 says the credentials are wrong; a 403 (a ref rule, a read-only token) does not,
            // and forgetting them would break the user's next git or git-lfs command (git-lfs rejects on 401 only)
            if ((e2 as ThetaError).data?.status === 401) await this.o.auth.reject?.(this.url);
            throw e2;
          }
        }
      }
      throw this.requestError(e, `LFS batch ${operation}`, url);
    }
    const receivedAt = Date.now();
    let doc: LfsBatchResponse;
    try {
      doc = JSON.parse(await res.text());
    } catch (e) {
      throw new LfsRequestError(`LFS batch ${operation} (${url}): the server's answer is not JSON (${(e as Error).message})`, { url, status: res.status });
    }
    if (!doc || !Array.isArray(doc.objects)) {
      throw new LfsRequestError(`LFS batch ${operation} (${url}): the server's answer has no "objects" list`, { url, status: res.status });
    }
    doc.receivedAt = receivedAt;
    for (const o of doc.objects) {
      // legacy servers answer with `_links`; an upload link there is as binding as in `actions`
      if (o && typeof o === 'object' && !o.actions && o._links && typeof o._links === 'object') o.actions = o._links;
    }
    if (doc.transfer && doc.transfer !== 'basic') {
      throw new LfsRequestError(`LFS batch ${operation} (${url}): the server chose transfer '${doc.transfer}'; only 'basic' is supported`, { url });
    }
    if (doc.hash_algo && doc.hash_algo !== 'sha256') {
      throw new LfsRequestError(`LFS batch ${operation} (${url}): the server uses hash '${doc.hash_algo}'; only sha256 is supported`, { url });
    }
    return doc;
  }

  private requestError(e: unknown, what: string, url: string): ThetaError {
    if (e instanceof ThetaError) return e;
    if (e instanceof HttpStatusError) {
      const msg = serverMessage(e.body);
      const hint = e.status === 401 ? ' (credentials needed or refused)' : e.status === 403 ? ' (forbidden)' : e.status === 404 ? ' (no LFS server at this URL?)' : '';
      return new LfsRequestError(`${what} (${url}): HTTP ${e.status}${hint}${msg ? `: ${msg}` : ''}`, { url, status: e.status });
    }
    return new LfsRequestError(`${what} (${url}): ${(e as Error)?.message ?? String(e)}`, { url });
  }

  /**
   * Headers for an action: the server's, plus ours when the href is on the API's own origin and sets
   * none — unless the server marked the object `authenticated` (its href needs no credentials, and
   * some storage refuses requests that carry them).
   */
  private actionHeaders(action: LfsAction, authenticated = false): Record<string, string> {
    const h: Record<string, string> = { ...(action.header ?? {}) };
    if (authenticated) return h;
    try {
      const same = new URL(action.href).origin === new URL(this.url).origin;
      const hasAuth = Object.keys(h).some((k) => k.toLowerCase() === 'authorization');
      if (same && !hasAuth) for (const [k, v] of Object.entries(this.headers)) if (k.toLowerCase() === 'authorization') h[k] = v;
    } catch {
      // a bad href fails at fetch time with a clear message
    }
    return h;
  }

  /**
   * Download the objects `into` lacks (checked with `has`). Each is hashed as it streams and stored
   * only if its SHA-256 and size match. Throws LfsTransferError naming every object that failed
   * (the others are stored), or LfsRequestError when a batch request itself fails.
   */
  async download(objects: LfsObject[], into: ObjectStore): Promise<LfsTransferResult> {
    const all = dedupe(objects);
    const result: LfsTransferResult = { transferred: [], skipped: [], bytes: 0 };
    const wanted: LfsObject[] = [];
    for (const x of all) ((await into.has(x.oid)) ? result.skipped : wanted).push(x);
    const failures: LfsObjectFailure[] = [];
    const progress: LfsProgress = { operation: 'download', objects: wanted.length, doneObjects: 0, bytes: wanted.reduce((a, x) => a + x.size, 0), doneBytes: 0 };
    if (wanted.length) this.o.onProgress?.({ ...progress });
    for (const group of chunked(wanted, this.o.batchSize ?? DEFAULT_BATCH_SIZE)) {
      const answer = await this.batch('download', group);
      const byOid = new Map(answer.objects.filter((a) => a && typeof a.oid === 'string').map((a) => [a.oid, a]));
      await pool(group, this.o.concurrency ?? DEFAULT_CONCURRENCY, async (x) => {
        const a = byOid.get(x.oid);
        const fail = (status: number, code: string, message: string) => failures.push({ oid: x.oid, size: x.size, name: x.name, status, code, message });
        if (!a) return void fail(0, 'E_LFS_NO_ANSWER', 'the server did not mention this object');
        if (a.error) return void fail(a.error.code, 'E_LFS_OBJECT', `server: ${a.error.code} ${a.error.message}`);
        // the server's size is authoritative when we did not know it (size 0 = unknown to the caller)
        const size = x.size || (Number.isSafeInteger(a.size) ? a.size : 0);
        try {
          const fresh = await this.fresh('download', x, a, answer.receivedAt);
          const action = fresh.actions?.download;
          if (!action?.href) return void fail(0, 'E_LFS_NO_ACTION', 'the server gave no download action');
          const got = await this.downloadOne(x.oid, size, action, into, fresh.authenticated === true, (n) => {
            progress.doneBytes += n;
            this.o.onProgress?.({ ...progress });
          });
          result.transferred.push(x);
          result.bytes += got;
          progress.doneObjects++;
          this.o.onProgress?.({ ...progress });
        } catch (e) {
          const t = e as ThetaError;
          const status = e instanceof HttpStatusError ? e.status : 0;
          const msg = e instanceof HttpStatusError ? `HTTP ${e.status}${serverMessage(e.body) ? `: ${serverMessage(e.body)}` : ''}` : t.message;
          fail(status, t.code ?? 'E_LFS_DOWNLOAD', msg);
        }
      });
    }
    if (failures.length) throw new LfsTransferError('download', failures, result.transferred.length);
    return result;
  }

  /**
   * A GET on one object's download href (asked of the batch API once, refreshed when expired),
   * with a `Range` header when `range` is given (`bytes=a-b`) and no content coding, so the body
   * is the plain bytes asked for. For reading parts of an object (ranged-object.ts); the caller
   * checks the status (206, or 200 when the server ignores Range) and the bytes.
   */
  async rangeGetter(x: LfsObject): Promise<(range: string | null) => Promise<Response>> {
    assertOid(x.oid);
    const answer = await this.batch('download', [x]);
    const a = answer.objects.find((o) => o && o.oid === x.oid);
    if (!a) throw new ThetaError('E_LFS_NO_ANSWER', `object ${x.oid}: the server did not mention this object`, { oid: x.oid });
    if (a.error) throw new ThetaError('E_LFS_OBJECT', `object ${x.oid}: server: ${a.error.code} ${a.error.message}`, { oid: x.oid, status: a.error.code });
    const fresh = await this.fresh('download', x, a, answer.receivedAt);
    const action = fresh.actions?.download;
    if (!action?.href) throw new ThetaError('E_LFS_NO_ACTION', `object ${x.oid}: the server gave no download action`, { oid: x.oid });
    const authenticated = fresh.authenticated === true;
    return (range) => this.request(action.href, () => ({
      method: 'GET',
      headers: { ...sendableHeaders(this.actionHeaders(action, authenticated)), ...(range ? { Range: range, 'Accept-Encoding': '' } : {}) },
    }), `download ${x.oid}${range ? ` (${range})` : ''}`);
  }

  /**
   * GET one object into `into`. A body cut off by the network is resumed with a Range request from the
   * bytes already stored (a server that ignores Range sends the whole object again and the bytes we
   * have are skipped), a bounded number of times; the SHA-256 covers every byte stored.
   */
  private async downloadOne(oid: Oid, size: number, action: LfsAction, into: ObjectStore, authenticated: boolean, onBytes: (n: number) => void): Promise<number> {
    const retries = this.o.retries ?? DEFAULT_RETRIES;
    const sleep = this.o.sleep ?? defaultSleep;
    const base = this.o.backoffMs ?? DEFAULT_BACKOFF_MS;
    const open = (from: number) =>
      this.request(action.href, () => ({
        method: 'GET',
        // a resumed download asks for the rest of the plain bytes: no content coding (an empty
        // Accept-Encoding), since the count of bytes we have is of the decoded body
        headers: { ...sendableHeaders(this.actionHeaders(action, authenticated)), ...(from > 0 ? { Range: `bytes=${from}-`, 'Accept-Encoding': '' } : {}) },
      }), `download ${oid}`);
    const first = await open(0);
    let counted = 0;
    const count = (k: number) => { counted += k; onBytes(k); };
    try {
      // the store's put hashes what it writes (once: the body is not hashed here) and, given the
      // expected id, keeps nothing that hashes to another one
      let put: PutResult;
      try {
        put = await into.put(resumableBody(first, open, oid, size, count, retries, (k) => sleep(Math.min(base * 2 ** k, MAX_BACKOFF_MS))), oid);
      } catch (e) {
        if (e instanceof ObjectCorruptError && e.data.oid === oid) throw new LfsCorruptDownloadError(oid, `its bytes hash to ${String(e.data.actual)}`);
        throw e;
      }
      // a store that does not take `expect` has kept the bytes under their own id
      if (put.oid !== oid) throw new LfsCorruptDownloadError(oid, `its bytes hash to ${put.oid}`);
      return put.size;
    } catch (e) {
      onBytes(-counted);
      throw e;
    }
  }

  /**
   * The batch answer for `x` with a usable action for `operation`: when the action has expired (or is
   * about to), the batch is asked again for this object, up to twice, as git-lfs does.
   */
  private async fresh(operation: LfsOperation, x: LfsObject, a: LfsBatchObject, receivedAt = Date.now()): Promise<LfsBatchObject> {
    for (let round = 0; ; round++) {
      const action = a.actions?.[operation];
      if (!action || !isExpired(action, receivedAt)) return a;
      if (round >= 2) throw new ThetaError('E_LFS_EXPIRED', `the server keeps answering with an expired ${operation} link (expires_at ${action.expires_at ?? '-'}, expires_in ${action.expires_in ?? '-'})`, { oid: x.oid });
      const again = await this.batch(operation, [x]);
      const next = again.objects.find((o) => o && o.oid === x.oid);
      if (!next) throw new ThetaError('E_LFS_NO_ANSWER', 'the server did not mention this object when asked again', { oid: x.oid });
      if (next.error) throw new ThetaError('E_LFS_OBJECT', `server: ${next.error.code} ${next.error.message}`, { oid: x.oid, status: next.error.code });
      a = next;
      receivedAt = again.receivedAt ?? Date.now();
    }
  }

  /**
   * Upload the objects the server lacks (the batch API decides: objects it has get no upload
   * action and are not sent), reading them from `from` (verified reads), then call verify when
   * the server asks for it. Throws LfsTransferError naming every object that failed.
   */
  async upload(objects: LfsObject[], from: ObjectStore): Promise<LfsTransferResult> {
    const all = dedupe(objects);
    const result: LfsTransferResult = { transferred: [], skipped: [], bytes: 0 };
    const failures: LfsObjectFailure[] = [];
    const progress: LfsProgress = { operation: 'upload', objects: 0, doneObjects: 0, bytes: 0, doneBytes: 0 };
    for (const group of chunked(all, this.o.batchSize ?? DEFAULT_BATCH_SIZE)) {
      const answer = await this.batch('upload', group);
      const byOid = new Map(answer.objects.filter((a) => a && typeof a.oid === 'string').map((a) => [a.oid, a]));
      const todo: { x: LfsObject; a: LfsBatchObject }[] = [];
      for (const x of group) {
        const a = byOid.get(x.oid);
        const fail = (status: number, code: string, message: string) => failures.push({ oid: x.oid, size: x.size, name: x.name, status, code, message });
        if (!a) fail(0, 'E_LFS_NO_ANSWER', 'the server did not mention this object');
        else if (a.error) fail(a.error.code, 'E_LFS_OBJECT', `server: ${a.error.code} ${a.error.message}`);
        else if (!a.actions?.upload) result.skipped.push(x); // the server has it (its answer is the confirmation)
        else todo.push({ x, a });
      }
      const receivedAt = answer.receivedAt;
      progress.objects += todo.length;
      progress.bytes += todo.reduce((s, t) => s + t.x.size, 0);
      if (todo.length) this.o.onProgress?.({ ...progress });
      await pool(todo, this.o.concurrency ?? DEFAULT_CONCURRENCY, async ({ x, a }) => {
        try {
          const bytes = await from.get(x.oid);
          if (bytes.length !== x.size) throw new ThetaError('E_LFS_SIZE', `local object has ${bytes.length} bytes, expected ${x.size}`, { oid: x.oid });
          const f = await this.fresh('upload', x, a, receivedAt);
          const up = f.actions?.upload;
          if (!up?.href) {
            // asked again, the server no longer wants it: it has the object now
            result.skipped.push(x);
            return;
          }
          const authd = f.authenticated === true;
          await this.request(up.href, () => ({
            method: 'PUT',
            ...bodyInit({ 'Content-Type': 'application/octet-stream', ...this.actionHeaders(up, authd) }, bytes),
          }), `upload ${x.oid}`);
          const verify = f.actions?.verify;
          if (verify?.href) {
            await this.request(verify.href, () => ({
              method: 'POST',
              headers: { ...sendableHeaders(this.actionHeaders(verify, authd)), Accept: LFS_MEDIA_TYPE, 'Content-Type': LFS_MEDIA_TYPE },
              body: JSON.stringify({ oid: x.oid, size: x.size }),
            }), `verify ${x.oid}`);
          }
          result.transferred.push(x);
          result.bytes += x.size;
          progress.doneObjects++;
          progress.doneBytes += x.size;
          this.o.onProgress?.({ ...progress });
        } catch (e) {
          const t = e as ThetaError;
          const status = e instanceof HttpStatusError ? e.status : 0;
          const msg = e instanceof HttpStatusError ? `HTTP ${e.status}${serverMessage(e.body) ? `: ${serverMessage(e.body)}` : ''}` : t.message;
          failures.push({ oid: x.oid, size: x.size, name: x.name, status, code: t.code ?? 'E_LFS_UPLOAD', message: msg });
        }
      });
    }
    if (failures.length) throw new LfsTransferError('upload', failures, result.transferred.length);
    return result;
  }
}

/** Content-Range of a 206 answer says the body starts at `from`. */
function rangeStartsAt(res: Response, from: number): boolean {
  const m = /^bytes (\d+)-/i.exec(res.headers.get('content-range') ?? '');
  return res.status === 206 && !!m && Number(m[1]) === from;
}

/**
 * A response body as chunks, counted as they pass (the store's put hashes them). When the body
 * breaks off (a network error mid-stream), it asks `open(n)` for the rest (a Range request from
 * byte n) up to `retries` times; an answer that is not the asked-for range is read from the start
 * with the first n bytes skipped. It throws LfsCorruptDownloadError as soon as there are more than
 * `size` bytes and at the end when there are fewer, which makes the store's put discard its temp
 * file instead of renaming it into place.
 */
async function* resumableBody(
  first: Response,
  open: (from: number) => Promise<Response>,
  oid: Oid,
  size: number,
  onBytes: (n: number) => void,
  retries: number,
  backoff: (attempt: number) => Promise<void>,
): AsyncGenerator<Uint8Array> {
  let n = 0;
  let res = first;
  let skip = 0;
  for (let attempt = 0; ; ) {
    try {
      const chunks = bodyChunks(res);
      if (chunks) {
        // the platform's own stream (http.ts BODY_CHUNKS); leaving the loop early destroys it
        for await (const value of chunks) yield* past(value);
        break;
      }
      if (!res.body) {
        const b = new Uint8Array(await res.arrayBuffer());
        if (b.length > skip) yield* take(b.subarray(skip));
        skip = 0;
        break;
      }
      const reader = res.body.getReader();
      let finished = false;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (value) yield* past(value);
        }
        finished = true;
      } finally {
        if (!finished) await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
      break;
    } catch (e) {
      // a complete body with the wrong bytes is not retried; a body cut off by the network is resumed
      if (e instanceof ThetaError || attempt >= retries) throw e;
      await backoff(attempt++);
      res = await open(n);
      skip = rangeStartsAt(res, n) ? 0 : n;
    }
  }
  if (size && n !== size) throw new LfsCorruptDownloadError(oid, `${n} bytes, expected ${size}`);

  /** A chunk less the bytes still to skip (a resumed answer that starts over), then taken. */
  function* past(value: Uint8Array): Generator<Uint8Array> {
    let chunk = value;
    if (skip) {
      const drop = Math.min(skip, chunk.length);
      skip -= drop;
      chunk = chunk.subarray(drop);
    }
    if (chunk.length) yield* take(chunk);
  }

  function* take(chunk: Uint8Array): Generator<Uint8Array> {
    n += chunk.length;
    if (size && n > size) throw new LfsCorruptDownloadError(oid, `more than the ${size} bytes announced`);
    onBytes(chunk.length);
    yield chunk;
  }
}

export function isLfsObject(x: unknown): x is LfsObject {
  return !!x && typeof x === 'object' && isOid((x as LfsObject).oid) && Number.isSafeInteger((x as LfsObject).size);
}
