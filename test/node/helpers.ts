/** Node-only test helpers: temporary repositories, the real git, and our CLI as a subprocess. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';
import { repoRoot, fixturesDir } from './platform-node.ts';
import { isInline, parseMetadata, storedObjects } from '../../src/theta/metadata.ts';

export { repoRoot, fixturesDir };
export const BIN = join(repoRoot, 'bin/git-theta.js');

/** A scratch HOME so no test reads or writes the user's ~/.gitconfig. */
export const HOME = mkdtempSync(join(tmpdir(), 'theta-home-'));
export const ENV: NodeJS.ProcessEnv = {
  ...process.env,
  HOME,
  XDG_CONFIG_HOME: join(HOME, '.config'),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'theta test',
  GIT_AUTHOR_EMAIL: 'test@git-theta.invalid',
  GIT_COMMITTER_NAME: 'theta test',
  GIT_COMMITTER_EMAIL: 'test@git-theta.invalid',
  GIT_TERMINAL_PROMPT: '0',
  THETA_UPDATE_TYPE: '',
  THETA_UPDATE_DATA: '',
};
delete ENV.THETA_UPDATE_TYPE;
delete ENV.THETA_UPDATE_DATA;

/**
 * Env for a CLI run whose process runs the garbage collector before it ends: a file handle left
 * open is then closed by the collector, and Node prints its warning ("Closing file descriptor N on
 * garbage collection") on stderr every time, not only when a loaded machine happened to collect.
 */
export function collectBeforeExit(): NodeJS.ProcessEnv {
  const preload = join(HOME, 'collect-before-exit.cjs');
  if (!existsSync(preload)) {
    writeFileSync(preload, [
      'let done = false;',
      "process.on('beforeExit', () => {",
      '  if (done) return;',
      '  done = true;',
      '  gc();',
      '  setTimeout(() => { gc(); setTimeout(() => {}, 20); }, 20);',
      '});',
      '',
    ].join('\n'));
  }
  return { NODE_OPTIONS: `--expose-gc --require ${preload}` };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  out: Buffer;
}

export function requireTool(cmd: string, pkg: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`]);
  if (r.status !== 0) throw new Error(`this test needs '${cmd}': install it with apt-get install -y ${pkg}`);
}

export function run(cmd: string, args: string[], cwd: string, opts: { input?: string | Uint8Array; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...ENV, ...opts.env } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const buf = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: buf.toString(), stderr: err, out: buf });
    });
    child.stdin.on('error', () => {}); // the child may exit without reading
    child.stdin.end(opts.input ?? '');
  });
}

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await run('git', args, cwd);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export function theta(cwd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return run(process.execPath, [BIN, ...args], cwd, opts);
}

export async function thetaOk(cwd: string, ...args: string[]): Promise<string> {
  const r = await theta(cwd, args);
  if (r.code !== 0) throw new Error(`git-theta ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export function tempDir(prefix = 'theta-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A fresh repository with git-theta installed locally. */
export async function thetaRepo(patterns: string[] = ['*.safetensors']): Promise<string> {
  const dir = tempDir('theta-repo-');
  mkdirSync(dir, { recursive: true });
  await git(dir, 'init', '-q', '-b', 'main');
  await thetaOk(dir, 'install', '--local');
  if (patterns.length) await thetaOk(dir, 'track', ...patterns);
  return dir;
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Every file below `dir` (recursively), as paths; [] when `dir` does not exist. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The files of an LFS object directory by name (the object id), with their bytes. */
export function objectFiles(objectsDir: string): Map<string, Buffer> {
  return new Map(filesUnder(objectsDir).map((p) => [basename(p), readFileSync(p)]));
}

export interface ServeChild {
  child: ChildProcess;
  /** The repository URL `serve` printed (http://127.0.0.1:<port>/<name>.git). */
  url: string;
  /** The request log `serve --verbose` writes to stderr, one entry a line (`GET /x.git/info/lfs/objects/<oid> 200 3ms`); it keeps growing. */
  log: string[];
}

/**
 * `git theta serve <repo> --port 0 --verbose` as a child process: resolves once it prints its URL.
 * If it exits first (or `timeoutMs` passes, when given) it is stopped and the promise rejects with
 * what it printed. The caller stops the child when done.
 */
export function startServe(repo: string, opts: { timeoutMs?: number } = {}): Promise<ServeChild> {
  const child = spawn(process.execPath, [BIN, 'serve', repo, '--port', '0', '--verbose'], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
    const lines = err.split('\n');
    err = lines.pop()!;
    log.push(...lines);
  });
  let out = '';
  return new Promise<ServeChild>((resolve, reject) => {
    const fail = (e: Error) => { clearTimeout(timer); child.kill('SIGTERM'); reject(e); };
    const ms = opts.timeoutMs;
    const timer = ms === undefined ? undefined : setTimeout(() => fail(new Error(`serve printed no URL in ${ms / 1000} s: ${out}`)), ms);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\S+\.git)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1]!, log }); }
    });
    child.once('close', (code) => fail(new Error(`serve exited (${code}): ${out}${err}`)));
  });
}

/** A raw HTTP request to `url`'s host and port (no URL normalisation of `path`), bounded by a timeout. */
export function rawRequest(url: string, path: string, method = 'GET', headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method, headers, timeout: 10_000 }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The inline objects (carried in the metadata, theta/inline-objects.ts) of the tracked files
 * `paths` at `rev`, by id -> size: with the new files under .git/lfs/objects, what a commit stored.
 */
export async function inlineObjectsAt(dir: string, rev: string, paths: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of paths) {
    const r = spawnSync('git', ['show', `${rev}:${p}`], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 28 });
    if (r.status !== 0 || !r.stdout.startsWith('{\n "git-theta"')) continue;
    for (const ref of storedObjects(parseMetadata(r.stdout))) if (isInline(ref)) out.set(ref.oid, ref.size);
  }
  return out;
}

/** Bytes of the inline objects the metadata of `paths` holds at `to` and did not at `from`. */
export async function inlineBytesBetween(dir: string, from: string, to: string, paths: string[]): Promise<{ objects: number; bytes: number }> {
  const a = await inlineObjectsAt(dir, from, paths);
  let objects = 0, bytes = 0;
  for (const [oid, size] of await inlineObjectsAt(dir, to, paths)) if (!a.has(oid)) { objects++; bytes += size; }
  return { objects, bytes };
}
