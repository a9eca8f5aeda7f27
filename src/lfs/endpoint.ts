/**
 * LFS endpoint discovery, following git-lfs's rules (docs/api/server-discovery.md and its
 * endpoint finder), as pure functions over configuration values the caller has read (git config
 * at the Node edge; whatever a browser or Deno caller knows):
 *
 *   1. `lfs.pushurl` (uploads only), then `lfs.url`
 *   2. `remote.<name>.lfspushurl` (uploads only), then `remote.<name>.lfsurl`
 *   3. the same keys from `.lfsconfig` (only these keys are honoured from that committed file)
 *   4. derived from the remote's git URL (`remote.<name>.pushurl` for uploads, else `.url`, after
 *      `url.<base>.insteadOf` / `pushInsteadOf` rewriting):
 *        https://host/foo/bar.git  ->  https://host/foo/bar.git/info/lfs
 *        https://host/foo/bar      ->  https://host/foo/bar.git/info/lfs
 *        git@host:foo/bar.git      ->  https://host/foo/bar.git/info/lfs   (ssh: only https is derived;
 *        ssh://git@host:22/foo/bar ->  https://host/foo/bar.git/info/lfs    git-lfs-authenticate is not run)
 *        /srv/repo.git, file:///…  ->  a file endpoint (objects copied between local stores)
 *
 * A remote that is not a configured name but looks like a URL is used as the URL itself (what git
 * does for `git push <url>`). Credentials written into a URL are split off (fetch() refuses URLs
 * that carry them) and returned separately.
 */

export type LfsOperation = 'download' | 'upload';

/** Configuration as key -> value(s). Keys are matched the way git does (section and name case-insensitive). */
export type ConfigValues = Map<string, string | string[]> | Record<string, string | string[]>;

export interface LfsEndpoint {
  /** 'http' for an LFS API base URL (ends without a slash), 'file' for a local repository path. */
  kind: 'http' | 'file';
  /** The API base (`…/info/lfs`) for http; for file, the path or file:// URL as configured. */
  url: string;
  /** Where the value came from, e.g. `lfs.url`, `.lfsconfig remote.origin.lfsurl`, `remote.origin.url`. */
  source: string;
  /** User name and password that were written into the URL (removed from `url`). */
  username?: string;
  password?: string;
}

export interface DiscoverOptions {
  /** The repository's git config. */
  config: ConfigValues;
  /** Values from `.lfsconfig` (lower precedence than git config). */
  lfsconfig?: ConfigValues;
  /** A remote name or URL; default `origin`. */
  remote?: string;
  operation?: LfsOperation;
}

const LFSCONFIG_SAFE = /^(lfs\.url|lfs\.pushurl|remote\.[^]*\.lfsurl|remote\.[^]*\.lfspushurl)$/;

/** Canonical key: section and variable name lower-cased, subsection kept as written. */
export function normalizeKey(key: string): string {
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  if (first < 0) return key.toLowerCase();
  if (first === last) return key.toLowerCase();
  return key.slice(0, first).toLowerCase() + key.slice(first, last) + key.slice(last).toLowerCase();
}

class Config {
  private readonly map = new Map<string, string[]>();
  constructor(values: ConfigValues | undefined, filter?: (key: string) => boolean) {
    if (!values) return;
    const entries = values instanceof Map ? [...values.entries()] : Object.entries(values);
    for (const [k, v] of entries) {
      const key = normalizeKey(k);
      if (filter && !filter(key)) continue;
      const list = this.map.get(key) ?? [];
      list.push(...(Array.isArray(v) ? v : [v]));
      this.map.set(key, list);
    }
  }
  /** The last value (git's rule for single-valued keys). */
  get(key: string): string | undefined {
    const v = this.map.get(normalizeKey(key));
    return v && v.length ? v[v.length - 1] : undefined;
  }
  keys(): string[] {
    return [...this.map.keys()];
  }
  all(key: string): string[] {
    return this.map.get(normalizeKey(key)) ?? [];
  }
}

/** Is this string a URL or scp-like address rather than a remote name? */
export function looksLikeUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s) || isScpLike(s) || isLocalPath(s);
}

function isScpLike(s: string): boolean {
  // git's rule: `host:path` where there is no slash before the first colon (and not a drive letter)
  const colon = s.indexOf(':');
  if (colon <= 0) return false;
  if (s.includes('://')) return false;
  const slash = s.indexOf('/');
  if (slash >= 0 && slash < colon) return false;
  if (colon === 1 && /^[a-z]$/i.test(s[0]!)) return false; // C:\…
  return true;
}

function isLocalPath(s: string): boolean {
  return s.startsWith('/') || s.startsWith('./') || s.startsWith('../') || /^[a-z]:[\\/]/i.test(s);
}

/** Apply `url.<base>.insteadOf` (and `pushInsteadOf` for uploads): the longest matching prefix wins. */
export function rewriteUrl(url: string, config: ConfigValues, forPush = false): string {
  const c = new Config(config);
  let best: { from: string; to: string } | null = null;
  const consider = (suffix: string) => {
    for (const key of c.keys()) {
      if (!key.startsWith('url.') || !key.endsWith(suffix)) continue;
      const base = key.slice(4, key.length - suffix.length);
      for (const from of c.all(key)) {
        if (url.startsWith(from) && (!best || from.length > best.from.length)) best = { from, to: base };
      }
    }
  };
  if (forPush) consider('.pushinsteadof');
  if (!best) consider('.insteadof');
  const b = best as { from: string; to: string } | null;
  return b ? b.to + url.slice(b.from.length) : url;
}

/** Split `user:pass@` off an http(s) URL. */
function splitCredentials(url: string): { url: string; username?: string; password?: string } {
  const m = /^(https?:\/\/)([^/@]*)@(.*)$/i.exec(url);
  if (!m) return { url };
  const [user, ...rest] = m[2]!.split(':');
  return {
    url: m[1]! + m[3]!,
    username: user ? decodeURIComponent(user) : undefined,
    password: rest.length ? decodeURIComponent(rest.join(':')) : undefined,
  };
}

function bareEndpoint(url: string, source: string): LfsEndpoint {
  if (/^file:\/\//i.test(url) || isLocalPath(url)) return { kind: 'file', url, source };
  const c = splitCredentials(url.replace(/\/+$/, ''));
  return { kind: 'http', source, ...c };
}

/**
 * The LFS API base for a git clone URL, or null when none can be derived (an unknown scheme).
 * Local paths and file:// URLs give a file endpoint.
 */
export function endpointFromGitUrl(gitUrl: string, source = 'remote url'): LfsEndpoint | null {
  let url = gitUrl.trim();
  if (!url) return null;
  if (/^file:\/\//i.test(url) || isLocalPath(url)) return { kind: 'file', url, source };
  let m: RegExpExecArray | null;
  let base: string;
  if ((m = /^(?:ssh|git\+ssh|ssh\+git):\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)(?::\d*)?(\/.*)?$/i.exec(url))) {
    base = `https://${m[1]}${m[2] ?? ''}`;
  } else if ((m = /^git:\/\/(?:[^@/]*@)?([^/]+)(\/.*)?$/i.exec(url))) {
    base = `https://${m[1]!.replace(/:\d+$/, '')}${m[2] ?? ''}`;
  } else if (/^https?:\/\//i.test(url)) {
    base = url;
  } else if (isScpLike(url)) {
    const colon = url.indexOf(':');
    const host = url.slice(0, colon).replace(/^[^@]*@/, '');
    const path = url.slice(colon + 1);
    base = `https://${host}${path.startsWith('/') ? '' : '/'}${path}`;
  } else {
    return null;
  }
  base = base.replace(/\/+$/, '');
  const c = splitCredentials(base);
  url = c.url;
  // strip a query or fragment, then append info/lfs the way git-lfs does
  url = url.replace(/[?#].*$/, '');
  url = /\.git$/.test(url) ? `${url}/info/lfs` : `${url}.git/info/lfs`;
  return { kind: 'http', url, source, username: c.username, password: c.password };
}

/** The endpoint git-lfs would use for `operation` against `remote`, or null when none is known. */
export function discoverLfsEndpoint(o: DiscoverOptions): LfsEndpoint | null {
  const operation = o.operation ?? 'download';
  const remote = o.remote || 'origin';
  const cfg = new Config(o.config);
  const lfs = new Config(o.lfsconfig, (k) => LFSCONFIG_SAFE.test(k));
  const push = operation === 'upload';

  // git-lfs reads each key from git config, then from .lfsconfig, in this order of keys
  const k = `remote.${remote}`;
  const keys = [...(push ? ['lfs.pushurl'] : []), 'lfs.url', ...(push ? [`${k}.lfspushurl`] : []), `${k}.lfsurl`];
  for (const key of keys) {
    for (const [c, label] of [[cfg, ''], [lfs, '.lfsconfig ']] as const) {
      const v = c.get(key);
      if (v) return bareEndpoint(v, `${label}${key}`);
    }
  }
  const configured = (push && cfg.get(`remote.${remote}.pushurl`)) || cfg.get(`remote.${remote}.url`);
  const key = push && cfg.get(`remote.${remote}.pushurl`) ? `remote.${remote}.pushurl` : `remote.${remote}.url`;
  if (configured) return endpointFromGitUrl(rewriteUrl(configured, o.config, push), key);
  if (looksLikeUrl(remote)) return endpointFromGitUrl(rewriteUrl(remote, o.config, push), 'remote url');
  return null;
}
