/**
 * `git theta serve`: one node:http server for one repository, at `/<name>` and `/<name>.git`
 * (name = the directory's name without `.git`):
 *
 *   /<name>[.git]/info/lfs/...         the LFS batch API and basic transfers (lfs-api.ts)
 *   /<name>[.git]/info/refs, /git-upload-pack, /git-receive-pack, ...
 *                                      git smart HTTP, answered by the real `git http-backend` (CGI)
 *   /.theta/serve.json                 what is served (for the web page)
 *   /, /<file>                         the web page from build/web, when it has been built
 *
 * Who may ask what (Host names, CORS, --allow-push, --cors-origin, --token) is decided in access.ts:
 * reads from any origin, writes only with `allowPush`, from allowed origins, with the token if set.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { ThetaError } from '../../core/errors.ts';
import { binPath } from '../cli/self.ts';
import { handleLfs, sendJson, type LfsApiContext, type ServeFaults, type ServeStats } from './lfs-api.ts';
import { createAccess, type Refusal } from './access.ts';

export interface ServeOptions {
  /** A bare repository or a work tree (its .git is served). */
  repo: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  allowPush?: boolean;
  /** More Host names to answer to than the loopback names and `host` (--allow-host). */
  allowHosts?: string[];
  /** Origins whose pages may write (--cors-origin). */
  corsOrigins?: string[];
  /** When set, writes need it as a Bearer token or the password of Basic credentials (--token). */
  token?: string;
  /** Where the built web page is (default: the package's build/web); null serves no page. */
  webDir?: string | null;
  /** Test-only fault injection (mutable while the server runs). */
  faults?: ServeFaults;
  /** One line per request. */
  log?: (line: string) => void;
}

export interface ThetaServer {
  readonly server: Server;
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** e.g. http://127.0.0.1:8080/model.git */
  readonly repoUrl: string;
  readonly name: string;
  readonly gitDir: string;
  readonly stats: ServeStats;
  readonly faults: ServeFaults;
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.map': 'application/json', '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
};

/** The git directory to serve for a path: a work tree's .git, else the path itself (bare). */
export function servedGitDir(repo: string): string {
  const abs = resolve(repo);
  if (!existsSync(abs)) throw new ThetaError('E_ARGUMENT', `serve: ${abs} does not exist`, { repo: abs });
  const dotGit = join(abs, '.git');
  if (existsSync(dotGit) && statSync(dotGit).isDirectory()) return dotGit;
  if (existsSync(join(abs, 'HEAD')) && existsSync(join(abs, 'objects'))) return abs;
  throw new ThetaError('E_NOT_A_REPO', `serve: ${abs} is not a git repository (no .git directory, and not a bare repository)`, { repo: abs });
}

function repoName(repo: string): string {
  const abs = resolve(repo);
  const name = basename(abs).replace(/\.git$/, '');
  return name || 'repo';
}

export function defaultWebDir(): string {
  return join(dirname(dirname(binPath())), 'build', 'web');
}

/** Run `git http-backend` as a CGI program for one request. */
function httpBackend(gitDir: string, allowPush: boolean, req: IncomingMessage, res: ServerResponse, pathInfo: string, query: string): Promise<void> {
  return new Promise((done) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_COMMON_DIR', 'GIT_CONFIG_PARAMETERS']) delete env[k];
    Object.assign(env, {
      GIT_PROJECT_ROOT: gitDir,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: pathInfo,
      QUERY_STRING: query,
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.receivepack',
      GIT_CONFIG_VALUE_0: allowPush ? 'true' : 'false',
    });
    if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = String(req.headers['content-length']);
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = String(req.headers['content-encoding']);
    if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
    if (allowPush) env.REMOTE_USER = 'git-theta';
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let head = Buffer.alloc(0);
    let headersDone = false;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      if (headersDone) {
        if (!res.write(d)) { child.stdout.pause(); res.once('drain', () => child.stdout.resume()); }
        return;
      }
      head = Buffer.concat([head, d]);
      let end = head.indexOf('\r\n\r\n');
      let sepLen = 4;
      const lf = head.indexOf('\n\n');
      if (lf >= 0 && (end < 0 || lf < end)) { end = lf; sepLen = 2; }
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {}; // CORS headers were set by the caller
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const c = line.indexOf(':');
        if (c <= 0) continue;
        const k = line.slice(0, c).trim();
        const v = line.slice(c + 1).trim();
        if (k.toLowerCase() === 'status') status = parseInt(v, 10) || 200;
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      const body = head.subarray(end + sepLen);
      if (body.length) res.write(body);
    });
    child.on('error', (e) => {
      if (!res.headersSent) sendJson(res, 500, { message: `could not run git http-backend: ${e.message}` }, 'application/json');
      else res.destroy();
      done();
    });
    child.on('close', (code) => {
      if (!headersDone) {
        if (!res.headersSent) sendJson(res, 500, { message: `git http-backend failed (exit ${code}): ${stderr.trim().slice(0, 300)}` }, 'application/json');
      }
      res.end();
      done();
    });
    child.stdin.on('error', () => {});
    req.pipe(child.stdin);
  });
}

async function serveStatic(webDir: string | null, pathname: string, res: ServerResponse, info: object): Promise<boolean> {
  if (!webDir) return false;
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return false;
  }
  if (rel === '/') rel = '/index.html';
  if (rel.includes('\0') || rel.split('/').some((s) => s === '..')) return false;
  const root = resolve(webDir);
  const file = resolve(root, '.' + rel);
  if (file !== root && !file.startsWith(root + sep)) return false;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) return false;
    const body = await fsp.readFile(file);
    res.writeHead(200, { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
    res.end(body);
    return true;
  } catch {
    void info;
    return false;
  }
}

export async function startServer(o: ServeOptions): Promise<ThetaServer> {
  const gitDir = servedGitDir(o.repo);
  const name = repoName(o.repo);
  const allowPush = !!o.allowPush;
  const faults: ServeFaults = o.faults ?? {};
  const stats: ServeStats = { uploads: new Map(), downloads: new Map(), batches: [] };
  const webDir = o.webDir === undefined ? defaultWebDir() : o.webDir;
  const lfsCtx: LfsApiContext = { lfsDir: join(gitDir, 'lfs'), allowPush, faults, stats };
  const access = createAccess({ host: o.host ?? '127.0.0.1', allowHosts: o.allowHosts, corsOrigins: o.corsOrigins, token: o.token, allowPush });
  const prefixes = [`/${name}.git`, `/${name}`];
  let origin = '';

  const info = () => ({ name, repo: `/${name}.git`, lfs: `/${name}.git/info/lfs`, allowPush });

  const refuse = (res: ServerResponse, r: Refusal) => {
    for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
    sendJson(res, r.status, { message: r.message }, 'application/json');
  };
  /** For a write: refuses it (false) or sets its CORS headers (true). */
  const authorizeWrite = (req: IncomingMessage, res: ServerResponse): boolean => {
    const r = access.checkWrite(req);
    if (r) { refuse(res, r); return false; }
    res.removeHeader('Access-Control-Allow-Origin');
    for (const [k, v] of Object.entries(access.cors(req, true))) res.setHeader(k, v);
    return true;
  };
  lfsCtx.authorizeWrite = authorizeWrite;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const badHost = access.checkHost(req);
    if (badHost) return refuse(res, badHost);
    for (const [k, v] of Object.entries(access.cors(req, false))) res.setHeader(k, v);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const pathname = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      const p = access.preflight(req);
      res.removeHeader('Access-Control-Allow-Origin');
      res.removeHeader('Access-Control-Expose-Headers');
      res.writeHead(p.status, p.headers);
      res.end();
      return;
    }
    const prefix = prefixes.find((p) => pathname === p || pathname.startsWith(p + '/'));
    if (prefix) {
      const rest = pathname.slice(prefix.length) || '/';
      if (rest.startsWith('/info/lfs/') || rest === '/info/lfs') {
        const host = req.headers.host ?? new URL(origin).host;
        const base = `http://${host}${prefix}/info/lfs`;
        if (await handleLfs(lfsCtx, req, res, rest.slice('/info/lfs'.length), base)) return;
        return sendJson(res, 404, { message: `no LFS route ${rest}` });
      }
      const service = url.searchParams.get('service');
      const isPush = rest === '/git-receive-pack' || (rest === '/info/refs' && service === 'git-receive-pack');
      if (isPush) {
        const r = access.checkWrite(req);
        if (r) {
          // git shows a text body to the user
          const text = `git-theta serve: ${r.message}\n`;
          res.writeHead(r.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...r.headers });
          res.end(text);
          return;
        }
        authorizeWrite(req, res);
      }
      if (rest.split('/').some((s) => s === '..')) return sendJson(res, 400, { message: 'bad path' }, 'application/json');
      await httpBackend(gitDir, allowPush, req, res, rest, url.search.replace(/^\?/, ''));
      return;
    }
    if (pathname === '/.theta/serve.json' && (method === 'GET' || method === 'HEAD')) return sendJson(res, 200, info(), 'application/json');
    if ((method === 'GET' || method === 'HEAD') && (await serveStatic(webDir, pathname, res, info()))) return;
    if (pathname === '/' && (method === 'GET' || method === 'HEAD')) {
      const text = `git-theta serve: repository '${name}' at ${origin}/${name}.git (the web page is not built: run 'npm run build')\n`;
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    sendJson(res, 404, { message: `not found: ${pathname} (this server serves /${name}.git)` }, 'application/json');
  }

  const server = createServer((req, res) => {
    const t0 = Date.now();
    res.on('finish', () => o.log?.(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - t0}ms`));
    handle(req, res).catch((e) => {
      o.log?.(`error: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) sendJson(res, 500, { message: `internal error: ${(e as Error).message}` }, 'application/json');
      else res.destroy();
    });
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      fail(e.code === 'EADDRINUSE'
        ? new ThetaError('E_ADDRESS_IN_USE', `serve: port ${o.port} on ${host} is in use; choose another with --port`, { port: o.port })
        : e);
    });
    server.listen(o.port ?? 0, host, () => ok());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  origin = `http://${shownHost}:${addr.port}`;
  return {
    server,
    url: origin,
    repoUrl: `${origin}/${name}.git`,
    name,
    gitDir,
    stats,
    faults,
    close: () => new Promise<void>((ok) => {
      server.close(() => ok());
      server.closeAllConnections?.();
    }),
  };
}
