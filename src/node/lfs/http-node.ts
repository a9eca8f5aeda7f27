/**
 * The Node edge of LFS HTTP: the git configuration git-lfs honours for its requests, turned into a
 * `fetch` for the runtime-neutral LfsClient.
 *
 *   http.sslCAInfo (GIT_SSL_CAINFO)   trust this CA bundle instead of the built-in roots
 *   http.sslVerify (GIT_SSL_NO_VERIFY) false: do not check the server's certificate
 *   http.proxy, else HTTPS_PROXY / HTTP_PROXY / ALL_PROXY with NO_PROXY   send requests through a proxy
 *   http.extraHeader                  extra request headers (multi-valued; an empty value clears the list),
 *                                     e.g. `Authorization: Basic …` as CI checkouts set it
 *   lfs.<url>.access = basic          send credentials from the first request instead of after a 401
 *
 * Every `http.*` key may also be written for a URL, `http.<url>.<key>`, matched as git matches it
 * (scheme, host with `*.` wildcards, port, path prefix on a `/` boundary, user); the longest match wins
 * for single values. The undici package (the engine of Node's own fetch) provides the agents.
 */
import { readFileSync } from 'node:fs';
import { pipeline, Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Dispatcher } from 'undici';
import { ThetaError } from '../../core/errors.ts';
import { BODY_CHUNKS } from '../../lfs/http.ts';
import { git } from '../git/git.ts';

export type GitConfigMap = Map<string, string[]>;

/** `http.*` and `lfs.*` keys of the repository's git config (all scopes), in the order git reads them. */
export async function readHttpConfig(cwd: string): Promise<{ key: string; value: string }[]> {
  const r = await git(['config', '-z', '--get-regexp', '^(http|lfs)\\.'], { cwd, allowFail: true });
  const out: { key: string; value: string }[] = [];
  for (const entry of r.stdout.toString('utf8').split('\0')) {
    if (!entry) continue;
    const nl = entry.indexOf('\n');
    out.push(nl < 0 ? { key: entry, value: 'true' } : { key: entry.slice(0, nl), value: entry.slice(nl + 1) });
  }
  return out;
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * How well a config URL (the `<url>` of `http.<url>.key`) matches a request URL: -1 for no match, else
 * a specificity (longer path, then a user name, wins).
 */
export function urlMatchScore(pattern: string, target: string): number {
  let p: URL;
  let t: URL;
  try {
    p = new URL(pattern);
    t = new URL(target);
  } catch {
    return -1;
  }
  if (p.protocol !== t.protocol) return -1;
  const ph = p.hostname.toLowerCase().split('.');
  const th = t.hostname.toLowerCase().split('.');
  if (ph.length !== th.length || ph.some((part, i) => part !== '*' && part !== th[i])) return -1;
  if ((p.port || DEFAULT_PORT[p.protocol]) !== (t.port || DEFAULT_PORT[t.protocol])) return -1;
  if (p.username && p.username !== t.username) return -1;
  const pp = p.pathname.replace(/\/+$/, '');
  const tp = t.pathname;
  if (pp && tp !== pp && !tp.startsWith(pp + '/')) return -1;
  return pp.length * 2 + (p.username ? 1 : 0);
}

/** Splits `section.<url>.name` into its parts (section and name lower-cased by git already). */
function splitKey(key: string): { section: string; url: string | null; name: string } {
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  const section = key.slice(0, first).toLowerCase();
  const name = key.slice(last + 1).toLowerCase();
  return { section, url: first === last ? null : key.slice(first + 1, last), name };
}

/** The value git would use for `section.name` when talking to `url` (the best URL match, else the plain key). */
export function configForUrl(config: { key: string; value: string }[], section: string, name: string, url: string): string | undefined {
  let best: { score: number; value: string } | undefined;
  for (const { key, value } of config) {
    const k = splitKey(key);
    if (k.section !== section || k.name !== name.toLowerCase()) continue;
    const score = k.url === null ? 0 : urlMatchScore(k.url, url) + 1;
    if (score < 0 || score === 0 && k.url !== null) continue;
    if (!best || score >= best.score) best = { score, value };
  }
  return best?.value;
}

/** Every value of a multi-valued key that applies to `url`, in config order; an empty value clears the list. */
export function configListForUrl(config: { key: string; value: string }[], section: string, name: string, url: string): string[] {
  let out: string[] = [];
  for (const { key, value } of config) {
    const k = splitKey(key);
    if (k.section !== section || k.name !== name.toLowerCase()) continue;
    if (k.url !== null && urlMatchScore(k.url, url) < 0) continue;
    if (value === '') out = [];
    else out.push(value);
  }
  return out;
}

function gitBool(v: string | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  return !/^(false|no|off|0)$/i.test(v.trim());
}

function noProxyMatches(host: string): boolean {
  const list = (process.env.NO_PROXY ?? process.env.no_proxy ?? '').split(/[,\s]+/).filter(Boolean);
  const h = host.toLowerCase();
  return list.some((e) => e === '*' || h === e.replace(/^\./, '').toLowerCase() || h.endsWith('.' + e.replace(/^[.*]+/, '').toLowerCase()));
}

export interface NodeHttp {
  /** fetch with the config's TLS, proxy and extra headers applied per request URL. */
  fetch: typeof fetch;
  /** lfs.<url>.access is `basic`: ask for credentials before the first request. */
  eagerAuth: boolean;
  /** Closes the agents (idle connections would keep the process alive for a few seconds). */
  close(): Promise<void>;
}

/** A web stream over a Node stream that reads nothing until it is read (most are never: see plainRequest). */
function lazyWebStream(body: Readable): ReadableStream<Uint8Array> {
  let it: AsyncIterator<Uint8Array> | null = null;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      it ??= body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
      const r = await it.next();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel() { body.destroy(); },
  }, { highWaterMark: 0 });
}

/** Decoders for the content codings fetch() would decode. */
const DECODERS: Record<string, () => NodeJS.ReadWriteStream> = { gzip: () => createGunzip(), 'x-gzip': () => createGunzip(), deflate: () => createInflate(), br: () => createBrotliDecompress() };

/**
 * A GET (or HEAD) without a request body through undici's request() instead of fetch(): an object
 * download's body is then undici's Node stream, attached under BODY_CHUNKS for the LFS client to
 * read directly (fetch's web stream cost a third of the download's CPU time), with a web stream
 * over it for everything else. No content coding is asked for; one sent anyway is decoded as fetch
 * would. Redirects come back as they are (the client follows them, fetchFollowing).
 */
async function plainRequest(undiciRequest: typeof import('undici').request, url: string, init: RequestInit, headers: Headers, dispatcher: Dispatcher | undefined): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase() as 'GET';
  const plain: Record<string, string> = {};
  headers.forEach((v, k) => (plain[k] = v));
  const r = await undiciRequest(url, { method, headers: plain, ...(dispatcher ? { dispatcher } : {}), signal: init.signal ?? undefined });
  const out = new Headers();
  for (const [k, v] of Object.entries(r.headers)) for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) out.append(k, x);
  const empty = method === ('HEAD' as string) || [101, 204, 205, 304].includes(r.statusCode);
  if (empty) {
    r.body.resume();
    return new Response(null, { status: r.statusCode, headers: out });
  }
  const codings = (out.get('content-encoding') ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c && c !== 'identity');
  // a body nobody reads (an error answer, a redirect) may still fail (an abort): that is not a crash
  r.body.on('error', () => {});
  let body: Readable = r.body;
  if (codings.length && codings.every((c) => DECODERS[c])) {
    for (const c of codings.reverse()) body = pipeline(body, DECODERS[c]!(), () => {}) as unknown as Readable; // an error anywhere reaches the last stream
  }
  const res = new Response(lazyWebStream(body), { status: r.statusCode, headers: out });
  Object.defineProperty(res, BODY_CHUNKS, { value: body });
  return res;
}

/**
 * Load undici ahead of need (it takes ~60 ms), e.g. while `git clone` runs before the clone's
 * objects are downloaded over HTTP.
 */
export function warmHttp(): void {
  import('undici').catch(() => {});
}

/** The fetch git-lfs's configuration describes, for requests made on behalf of the LFS API at `apiUrl` (`httpConfig`: readHttpConfig's answer, when it was asked already). */
export async function nodeHttp(cwd: string, apiUrl: string, httpConfig?: Promise<{ key: string; value: string }[]>): Promise<NodeHttp> {
  // undici (~60 ms to load) only when an LFS server is talked to: a filter smudging local objects never is
  const [{ Agent, EnvHttpProxyAgent, fetch: undiciFetch, ProxyAgent, request: undiciRequest }, config] = await Promise.all([import('undici'), httpConfig ?? readHttpConfig(cwd)]);
  const agents = new Map<string, Dispatcher>();
  const cas = new Map<string, Buffer>();

  const dispatcherFor = (url: string): Dispatcher | undefined => {
    const caPath = process.env.GIT_SSL_CAINFO || configForUrl(config, 'http', 'sslcainfo', url);
    const verify = process.env.GIT_SSL_NO_VERIFY ? false : gitBool(configForUrl(config, 'http', 'sslverify', url), true);
    let proxy = configForUrl(config, 'http', 'proxy', url) ?? '';
    if (proxy && !/^[a-z][a-z0-9+.-]*:\/\//i.test(proxy)) proxy = `http://${proxy}`;
    const envProxy = !proxy && !!(process.env.HTTPS_PROXY || process.env.https_proxy || process.env.HTTP_PROXY || process.env.http_proxy || process.env.ALL_PROXY || process.env.all_proxy);
    if (proxy && noProxyMatches(new URL(url).hostname)) proxy = '';
    const key = JSON.stringify([caPath ?? '', verify, proxy, envProxy]);
    if (!caPath && verify && !proxy && !envProxy) return undefined;
    let d = agents.get(key);
    if (d) return d;
    let ca: Buffer | undefined;
    if (caPath) {
      ca = cas.get(caPath);
      if (!ca) {
        try {
          ca = readFileSync(caPath);
        } catch (e) {
          throw new ThetaError('E_CONFIG', `http.sslCAInfo: cannot read ${caPath} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); fix the path in git config`, { path: caPath });
        }
        cas.set(caPath, ca);
      }
    }
    const tls = { ...(ca ? { ca } : {}), ...(verify ? {} : { rejectUnauthorized: false }) };
    if (proxy) d = new ProxyAgent({ uri: proxy, requestTls: tls, proxyTls: tls });
    else if (envProxy) d = new EnvHttpProxyAgent({ connect: tls, requestTls: tls, proxyTls: tls } as ConstructorParameters<typeof EnvHttpProxyAgent>[0]);
    else d = new Agent({ connect: tls });
    agents.set(key, d);
    return d;
  };

  const wrapped = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const headers = new Headers(init.headers);
    for (const line of configListForUrl(config, 'http', 'extraheader', url)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim();
      // a header the request sets itself (an action's own Authorization) wins over the configured one
      if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
    }
    const dispatcher = dispatcherFor(url);
    // downloads (and any request without a body) go through undici's request(): see plainRequest. (It also
    // keeps Range requests as git-lfs sends them: fetch() adds `Accept-Encoding: identity` to every one, the
    // Fetch standard says so, and some servers refuse the pair.)
    if (!init.body && /^(GET|HEAD)$/i.test(init.method ?? 'GET')) return plainRequest(undiciRequest, url, init, headers, dispatcher);
    return undiciFetch(url, { ...(init as object), headers, ...(dispatcher ? { dispatcher } : {}) } as Parameters<typeof undiciFetch>[1]) as unknown as Response;
  }) as typeof fetch;

  const access = configForUrl(config, 'lfs', 'access', apiUrl);
  return {
    fetch: wrapped,
    eagerAuth: access?.toLowerCase() === 'basic',
    async close() {
      await Promise.all([...agents.values()].map((a) => a.close().catch(() => {})));
    },
  };
}
