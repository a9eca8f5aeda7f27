/** Running the real `git` binary. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { ThetaError } from '../../core/errors.ts';

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface GitOptions {
  cwd?: string;
  input?: Uint8Array | string;
  /** Resolve with a non-zero code instead of throwing. */
  allowFail?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Let git's stderr through to ours (progress, hints). */
  inheritStderr?: boolean;
}

export class GitError extends ThetaError {
  constructor(args: string[], code: number, stderr: string) {
    super('E_GIT', `git ${args.join(' ')} failed (exit ${code})${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`, { args, code, stderr });
    this.name = 'GitError';
  }
}

export function git(args: string[], opts: GitOptions = {}): Promise<GitResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('git', args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    const stdin = child.stdin!;
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new ThetaError('E_GIT', `could not run git: ${e.message}; install git`, {})));
    child.on('close', (code) => {
      const r = { code: code ?? 1, stdout: Buffer.concat(out), stderr: err };
      if (r.code !== 0 && !opts.allowFail) reject(new GitError(args, r.code, err));
      else resolvePromise(r);
    });
    stdin.on('error', () => {});
    if (opts.input !== undefined) stdin.end(opts.input);
    else stdin.end();
  });
}

export async function gitText(args: string[], opts: GitOptions = {}): Promise<string> {
  return (await git(args, opts)).stdout.toString('utf8').replace(/\n$/, '');
}

/** The repository's git directory (absolute). */
export async function gitDir(cwd?: string): Promise<string> {
  const r = await git(['rev-parse', '--absolute-git-dir'], { cwd, allowFail: true });
  if (r.code !== 0) throw new ThetaError('E_NOT_A_REPO', `not inside a git repository${cwd ? ` (${cwd})` : ''}; run 'git init' first`, {});
  return r.stdout.toString().trim();
}

/** The git directory shared by all worktrees (where lfs/objects lives). */
export async function gitCommonDir(cwd?: string): Promise<string> {
  const d = await gitText(['rev-parse', '--git-common-dir'], { cwd });
  return resolve(cwd ?? process.cwd(), d);
}

export async function worktreeRoot(cwd?: string): Promise<string> {
  const r = await git(['rev-parse', '--show-toplevel'], { cwd, allowFail: true });
  if (r.code !== 0) throw new ThetaError('E_NOT_A_REPO', `not inside a git work tree${cwd ? ` (${cwd})` : ''}; run 'git init' first`, {});
  return r.stdout.toString().trim();
}

export async function configGet(key: string, cwd?: string, scope?: '--local' | '--global'): Promise<string | null> {
  const r = await git(['config', ...(scope ? [scope] : []), '--get', key], { cwd, allowFail: true });
  return r.code === 0 ? r.stdout.toString().replace(/\n$/, '') : null;
}

export async function configGetAll(key: string, cwd?: string): Promise<string[]> {
  const r = await git(['config', '--get-all', key], { cwd, allowFail: true });
  return r.code === 0 ? r.stdout.toString().split('\n').filter(Boolean) : [];
}

/** A blob's bytes, or null when the object does not exist (e.g. `:path` not in the index). */
export async function readBlob(spec: string, cwd?: string): Promise<Buffer | null> {
  const r = await git(['cat-file', 'blob', spec], { cwd, allowFail: true });
  return r.code === 0 ? r.stdout : null;
}
