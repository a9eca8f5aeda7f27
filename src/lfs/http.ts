/**
 * The HTTP details of the LFS protocol that git-lfs handles and a bare `fetch` does not, the same
 * code in Node, Deno and browsers:
 *
 *   - redirects (307/308 from upload and download hrefs) followed by hand, so a request body is sent
 *     again after the redirect and credentials are not carried to another origin;
 *   - an action's `Transfer-Encoding: chunked` header (a header fetch refuses to set): the body is sent
 *     as a stream instead, which makes the runtime send it chunked;
 *   - legacy `_links` in a batch answer (servers from before `actions`);
 *   - `expires_at` / `expires_in` on actions: an action that has (nearly) expired is asked for again;
 *   - 429 without Retry-After: a backoff long enough to outlast a typical rate-limit window, bounded;
 *   - error text: the network or TLS error's code, URLs without credentials or query strings.
 */

/** An action whose link expires sooner than this is treated as expired (git-lfs uses 5 s too). */
export const EXPIRY_MARGIN_MS = 5_000;
/** First wait after a 429 without Retry-After; doubled per retry up to RATE_LIMIT_MAX_STEP_MS. */
export const RATE_LIMIT_BACKOFF_MS = 1_000;
export const RATE_LIMIT_MAX_STEP_MS = 16_000;
/** Total time spent waiting out 429 answers for one request before giving up. */
export const RATE_LIMIT_MAX_WAIT_MS = 120_000;
export const MAX_REDIRECTS = 5;

export interface LfsActionLike {
  href: string;
  header?: Record<string, string>;
  expires_in?: number;
  expires_at?: string;
}

/** A URL for messages: no `user:pass@`, no query string (signed storage URLs carry tokens there). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//').replace(/\?.*$/, '');
  }
}

/** Has this action expired (or will it within `marginMs`)? `receivedAt`: when the batch answer arrived. */
export function isExpired(action: LfsActionLike, receivedAt: number, now = Date.now(), marginMs = EXPIRY_MARGIN_MS): boolean {
  if (typeof action.expires_in === 'number' && action.expires_in !== 0 && receivedAt + action.expires_in * 1000 < now + marginMs) return true;
  if (typeof action.expires_at === 'string' && action.expires_at) {
    const t = Date.parse(action.expires_at);
    // Go's zero time (0001-01-01T00:00:00Z) means "no expiry"
    if (!Number.isNaN(t) && t > Date.UTC(1970, 0, 2) && t < now + marginMs) return true;
  }
  return false;
}

/** How long to wait after the n-th (0-based) 429 without Retry-After. */
export function rateLimitDelay(n: number, base = RATE_LIMIT_BACKOFF_MS): number {
  return Math.min(base * 2 ** n, RATE_LIMIT_MAX_STEP_MS);
}

/** Error codes that no retry fixes: TLS trust and certificate problems, invalid requests. */
const PERMANENT_CODE = /CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET)|ERR_TLS|ERR_SSL|HOSTNAME|ALTNAME|INVALID_ARG|NOT_SUPPORTED|ERR_INVALID/i;
const PERMANENT_TEXT = /certificate|invalid peer|UnknownIssuer|self[- ]signed|invalid (header|transfer-encoding)|not supported/i;

export interface FetchErrorInfo {
  /** e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ECONNREFUSED`, `UND_ERR_SOCKET` (Node); absent when unknown. */
  code?: string;
  /** The most specific message found along the error's `cause` chain. */
  detail: string;
  /** Could trying again help (a dropped connection, a refused connection), or not (TLS trust)? */
  retryable: boolean;
  tls: boolean;
}

/** What a fetch() rejection means: Node's undici puts the real reason in `cause` (`fetch failed` says nothing). */
export function describeFetchError(e: unknown): FetchErrorInfo {
  const messages: string[] = [];
  let code: string | undefined;
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 6; depth++) {
    const c = cur as { message?: unknown; code?: unknown; cause?: unknown };
    if (typeof c.message === 'string' && c.message) messages.push(c.message);
    if (typeof c.code === 'string' && c.code) code = c.code;
    cur = c.cause;
  }
  if (!messages.length) messages.push(String(e));
  const specific = messages.filter((m) => m !== 'fetch failed');
  const detail = (specific.length ? specific[specific.length - 1]! : messages[0]!).split('\n')[0]!;
  const text = messages.join(' ');
  const tls = (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_|TLS|SSL|ALTNAME/i.test(code)) || /certificate|invalid peer|UnknownIssuer|tls|ssl/i.test(text);
  const permanent = (code !== undefined && PERMANENT_CODE.test(code)) || PERMANENT_TEXT.test(text);
  return { code, detail, retryable: !permanent, tls };
}

/** A one-line description of a fetch() rejection, with its code and what to do for TLS problems. */
export function fetchErrorText(e: unknown): string {
  const i = describeFetchError(e);
  const code = i.code && !i.detail.includes(i.code) ? ` (${i.code})` : '';
  const hint = i.tls ? '; if the server uses a private CA, set http.sslCAInfo to its certificate' : '';
  return `${i.tls ? 'TLS error: ' : ''}${i.detail}${code}${hint}`;
}

function headerKey(h: Record<string, string>, name: string): string | undefined {
  return Object.keys(h).find((k) => k.toLowerCase() === name);
}

/** An action's headers without the ones fetch refuses to send (the runtime sets them itself). */
export function sendableHeaders(headers: Record<string, string>): Record<string, string> {
  const h = { ...headers };
  for (const k of Object.keys(h)) if (/^(transfer-encoding|content-length|host|connection)$/i.test(k)) delete h[k];
  return h;
}

let streamBodies: boolean | undefined;
/** Can this runtime send a ReadableStream as a request body (Node 18+, Deno, Chromium over HTTP/2)? */
export function canStreamRequestBodies(): boolean {
  if (streamBodies !== undefined) return streamBodies;
  try {
    let duplexRead = false;
    const r = new Request('http://127.0.0.1/', {
      method: 'PUT',
      body: new ReadableStream(),
      get duplex() {
        duplexRead = true;
        return 'half';
      },
    } as RequestInit);
    streamBodies = duplexRead && !r.headers.has('Content-Type');
  } catch {
    streamBodies = false;
  }
  return streamBodies;
}

/**
 * Request options for sending `bytes` with an action's headers. A `Transfer-Encoding` header (which
 * fetch refuses) is removed; when it asks for `chunked`, the body goes as a stream so the runtime
 * sends it chunked.
 */
export function bodyInit(headers: Record<string, string>, bytes: Uint8Array): { headers: Record<string, string>; body: BodyInit; duplex?: 'half' } {
  const te = headerKey(headers, 'transfer-encoding');
  const chunked = te !== undefined && /chunked/i.test(headers[te]!);
  const h = sendableHeaders(headers);
  if (chunked && canStreamRequestBodies()) {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        if (bytes.length) c.enqueue(bytes);
        c.close();
      },
    });
    return { headers: h, body, duplex: 'half' };
  }
  return { headers: h, body: bytes as unknown as BodyInit };
}

/**
 * A platform's fetch may attach a response body's chunks as a plain async iterable under this key
 * (Node: undici's own stream), which the client then reads instead of the web stream: on a big
 * download the web stream's machinery costs about a third of the CPU time.
 */
export const BODY_CHUNKS = Symbol.for('git-theta.lfs.body-chunks');

/** The body's chunks as the platform attached them, else null (read `res.body`). */
export function bodyChunks(res: Response): AsyncIterable<Uint8Array> | null {
  return ((res as unknown as Record<symbol, unknown>)[BODY_CHUNKS] as AsyncIterable<Uint8Array> | undefined) ?? null;
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);

/**
 * fetch() that follows redirects itself: the body is built again for each hop (`init()` is called per
 * request, so a stream body is fresh), 303 (and 301/302 after POST) become GET, and Authorization is
 * dropped when the redirect leaves the origin. Browsers hide redirects from `redirect: 'manual'`
 * (an opaque answer); there the request is sent again with `redirect: 'follow'`.
 */
export async function fetchFollowing(fetchFn: typeof fetch, url: string, init: () => RequestInit, maxRedirects = MAX_REDIRECTS): Promise<Response> {
  let current = url;
  let method: string | undefined;
  let dropAuth = false;
  let dropBody = false;
  for (let hop = 0; ; hop++) {
    const base = init();
    const headers: Record<string, string> = {};
    new Headers(base.headers).forEach((v, k) => (headers[k] = v));
    if (dropAuth) delete headers['authorization'];
    if (dropBody) {
      delete headers['content-type'];
      delete headers['content-length'];
    }
    const req: RequestInit = { ...base, headers, redirect: 'manual', ...(method ? { method } : {}), ...(dropBody ? { body: undefined, duplex: undefined } : {}) } as RequestInit;
    const res = await fetchFn(current, req);
    if (res.type === 'opaqueredirect') return fetchFn(current, { ...req, redirect: 'follow' });
    const location = res.headers.get('location');
    if (!REDIRECT.has(res.status) || !location) return res;
    await res.body?.cancel().catch(() => {});
    if (hop >= maxRedirects) throw new TypeError(`too many redirects (more than ${maxRedirects}) from ${redactUrl(url)}`);
    const next = new URL(location, current).href;
    const m = (method ?? base.method ?? 'GET').toUpperCase();
    if (res.status === 303 ? m !== 'HEAD' : (res.status === 301 || res.status === 302) && m === 'POST') {
      method = 'GET';
      dropBody = true;
    }
    if (new URL(next).origin !== new URL(current).origin) dropAuth = true;
    current = next;
  }
}
