/**
 * Who may talk to `git theta serve`, decided per request before anything is answered:
 *
 * - **Host**: only the names the server listens on (loopback names by default, the `--host` name,
 *   and every `--allow-host`). A page on another origin that re-points its own DNS name at
 *   127.0.0.1 (DNS rebinding) still sends its own name as Host and is refused; and since every
 *   accepted Host is ours, LFS hrefs built from it never point elsewhere.
 * - **Reads** (GET/HEAD, the LFS batch `download`, `git-upload-pack`) are open to pages of any
 *   origin (`Access-Control-Allow-Origin: *`, no credentials): that is how the browser page clones.
 * - **Writes** (LFS `PUT`, `verify`, the batch `upload`, `git-receive-pack`): only with
 *   `--allow-push`; a browser request (one with an `Origin` header) only from an origin given with
 *   `--cors-origin`; and, when `--token` is set, only with that token as a Bearer token or as the
 *   password of Basic credentials, compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface AccessOptions {
  /** The address given with --host (its name is accepted as Host unless it is a wildcard). */
  host: string;
  /** More Host names to accept (--allow-host). */
  allowHosts?: string[];
  /** Origins whose pages may write (--cors-origin), e.g. https://app.example:8443. */
  corsOrigins?: string[];
  /** Needed for writes when set (--token). */
  token?: string;
  allowPush: boolean;
}

export interface Refusal {
  status: number;
  message: string;
  /** Extra response headers (WWW-Authenticate). */
  headers?: Record<string, string>;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const WILDCARDS = ['0.0.0.0', '::', ''];

/** Request headers a browser page may send (the preflight never echoes what it is asked for). */
export const ALLOWED_REQUEST_HEADERS = 'Accept, Content-Type, Authorization, Git-Protocol, Range';
export const EXPOSED_HEADERS = 'Content-Length, Content-Type, Retry-After, Git-Protocol, Content-Range, Accept-Ranges';

/** The host name of a Host header value (port and IPv6 brackets removed, lower case), or null. */
export function hostName(header: string | undefined): string | null {
  if (!header) return null;
  const h = header.trim().toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h) ?? /^([a-z0-9._-]+)(?::\d{1,5})?$/.exec(h);
  return m ? m[1].replace(/\.$/, '') : null;
}

function normalizeName(s: string): string {
  return s.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

function normalizeOrigin(s: string): string {
  try {
    const u = new URL(s.trim());
    return u.origin.toLowerCase();
  } catch {
    return s.trim().toLowerCase().replace(/\/+$/, '');
  }
}

export interface Access {
  readonly allowedHosts: ReadonlySet<string>;
  /** A refusal when the Host header is not one of ours. */
  checkHost(req: IncomingMessage): Refusal | null;
  /** A refusal when this write may not happen (no --allow-push, a foreign origin, a missing or wrong token). */
  checkWrite(req: IncomingMessage): Refusal | null;
  /** CORS headers for the answer to this request (`write`: it changes the repository). */
  cors(req: IncomingMessage, write: boolean): Record<string, string>;
  /** The answer to an OPTIONS preflight. */
  preflight(req: IncomingMessage): { status: number; headers: Record<string, string> };
}

/** SHA-256 of both sides first, so that the comparison takes the same time whatever their lengths. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The token a request carries: a Bearer token, or the password of Basic credentials. */
export function presentedToken(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const bearer = /^Bearer\s+(.+)$/i.exec(h);
  if (bearer) return bearer[1].trim();
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h);
  if (basic) {
    const text = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = text.indexOf(':');
    return colon < 0 ? text : text.slice(colon + 1);
  }
  return null;
}

export function createAccess(o: AccessOptions): Access {
  const hosts = new Set(LOOPBACK_NAMES);
  const own = normalizeName(o.host);
  if (!WILDCARDS.includes(own)) hosts.add(own);
  for (const h of o.allowHosts ?? []) hosts.add(normalizeName(h));
  const origins = new Set((o.corsOrigins ?? []).map(normalizeOrigin));

  const originOf = (req: IncomingMessage): string | null => {
    const v = req.headers.origin;
    return typeof v === 'string' && v ? normalizeOrigin(v) : null;
  };

  return {
    allowedHosts: hosts,
    checkHost(req) {
      const name = hostName(req.headers.host);
      if (name && hosts.has(name)) return null;
      return {
        status: 421,
        message: `this git-theta server answers only to ${[...hosts].join(', ')} (Host was ${JSON.stringify(String(req.headers.host ?? '').slice(0, 100))}); start it with --allow-host <name> to accept another name`,
      };
    },
    checkWrite(req) {
      if (!o.allowPush) return { status: 403, message: "this git-theta server is read-only; restart it with 'git theta serve --allow-push' to accept pushes" };
      const origin = originOf(req);
      if (origin !== null && !origins.has(origin)) {
        return { status: 403, message: `pages from ${origin} may not write to this server; start it with --cors-origin ${origin} to allow them` };
      }
      if (o.token !== undefined) {
        const given = presentedToken(req);
        if (given === null || !tokenMatches(given, o.token)) {
          return {
            status: 401,
            message: 'writing needs the token given with --token (as a Bearer token, or as the password of Basic credentials)',
            headers: { 'WWW-Authenticate': 'Basic realm="git-theta"', 'LFS-Authenticate': 'Basic realm="git-theta"' },
          };
        }
      }
      return null;
    },
    cors(req, write): Record<string, string> {
      const origin = originOf(req);
      if (!write) return { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': EXPOSED_HEADERS };
      if (origin !== null && origins.has(origin)) {
        return { 'Access-Control-Allow-Origin': req.headers.origin as string, 'Access-Control-Expose-Headers': EXPOSED_HEADERS, Vary: 'Origin' };
      }
      return { Vary: 'Origin' };
    },
    preflight(req): { status: number; headers: Record<string, string> } {
      const method = String(req.headers['access-control-request-method'] ?? '').toUpperCase();
      const origin = originOf(req);
      const trusted = origin !== null && origins.has(origin) && o.allowPush;
      // reads (GET, HEAD, and POST for clones and batch downloads) from anywhere; PUT only from trusted origins
      const readMethods = ['GET', 'HEAD', 'POST'];
      if (!readMethods.includes(method) && !(method === 'PUT' && trusted)) return { status: 403, headers: { Vary: 'Origin', 'Content-Length': '0' } };
      return {
        status: 204,
        headers: {
          'Access-Control-Allow-Origin': trusted ? (req.headers.origin as string) : '*',
          'Access-Control-Allow-Methods': trusted ? 'GET, HEAD, POST, PUT' : 'GET, HEAD, POST',
          'Access-Control-Allow-Headers': ALLOWED_REQUEST_HEADERS,
          'Access-Control-Max-Age': '600',
          Vary: 'Origin',
          'Content-Length': '0',
        },
      };
    },
  };
}
