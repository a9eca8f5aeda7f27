/**
 * `git theta switch <branch>` and `git theta clone <url> [dir]`: git moves HEAD, the index and the
 * ordinary files, with the theta filter's smudge handing back metadata as it is
 * (GIT_THETA_SKIP_SMUDGE), then `git theta checkout`'s direct path writes the checkpoints that
 * changed: their objects fetched first in batched requests, each file written straight from the
 * object store, the index's stat data recorded so `git status` is clean. No checkpoint goes
 * through git's smudge pipe.
 */
import type { Command } from 'commander';
import { basename, resolve } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { ThetaError } from '../../../core/errors.ts';
import { git } from '../../git/git.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { referencedObjects } from '../../../theta/metadata.ts';
import type { RemoteStoreExtras } from '../../../lfs/remote-store.ts';
import type { LfsObject } from '../../../lfs/client.ts';
import { fastCheckout } from './checkout.ts';
import { ENV_SKIP_SMUDGE } from './filter.ts';
import { install } from './install.ts';

/** Tracked files have changes a switch would overwrite (git refuses too). */
export class DirtyWorktreeError extends ThetaError {
  constructor(paths: string[]) {
    super('E_DIRTY', `your local changes to ${paths.length} file(s) (${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ', ...' : ''}) would be overwritten: commit or stash them, then switch again`, { paths });
    this.name = 'DirtyWorktreeError';
  }
}

const NUL = (s: Buffer | string) => s.toString().split('\0').filter(Boolean);
const skipSmudge = () => ({ ...process.env, [ENV_SKIP_SMUDGE]: '1' });

/** Paths with staged or unstaged changes to tracked files (untracked files do not count, as for git). */
async function dirtyPaths(root: string): Promise<string[]> {
  const r = await git(['status', '--porcelain=v1', '-z', '--untracked-files=no'], { cwd: root });
  const out: string[] = [];
  const recs = NUL(r.stdout);
  for (let i = 0; i < recs.length; i++) {
    const rec = recs[i];
    out.push(rec.slice(3));
    if (rec[0] === 'R' || rec[0] === 'C') i++; // a rename's old path follows
  }
  return out;
}

/** Every object the index's metadata of `paths` names, downloaded in batched requests before any file is written. */
async function prefetchAll(repo: ThetaRepo, paths: string[]): Promise<void> {
  const prefetch = (repo.store as Partial<RemoteStoreExtras>).prefetch;
  if (!prefetch || !paths.length) return;
  const refs = new Map<string, LfsObject>();
  for (const p of paths) {
    const m = await repo.metadataAt(`:${p}`).catch(() => null);
    if (m) for (const r of referencedObjects(m)) refs.set(r.oid, r);
  }
  if (refs.size) await prefetch.call(repo.store, [...refs.values()]);
}

/** Write the tracked checkpoints among `paths` from the index (git left their metadata in the work tree). */
async function writeCheckpoints(repo: ThetaRepo, paths: string[]): Promise<string[]> {
  const present = new Set(NUL((await git(['ls-files', '-z', '--', ...paths], { cwd: repo.root, env: { ...process.env, GIT_LITERAL_PATHSPECS: '1' } })).stdout));
  const tracked = await repo.trackedAmong(paths.filter((p) => present.has(p)));
  if (!tracked.length) return [];
  await prefetchAll(repo, tracked);
  return fastCheckout(repo, null, tracked, { rewrite: true });
}

export async function fastSwitch(repo: ThetaRepo, target: string): Promise<string[]> {
  const root = repo.root;
  const dirty = await dirtyPaths(root);
  if (dirty.length) throw new DirtyWorktreeError(dirty);
  let to = (await git(['rev-parse', '--verify', '--quiet', `${target}^{commit}`], { cwd: root, allowFail: true })).stdout.toString().trim();
  if (!to) {
    // like git switch: a branch only a remote has is created from it (when exactly one remote has it)
    const remote = (await git(['for-each-ref', '--format=%(objectname)', `refs/remotes/*/${target}`], { cwd: root })).stdout.toString().split('\n').filter(Boolean);
    if (remote.length === 1) to = remote[0];
  }
  if (!to) throw new ThetaError('E_ARGUMENT', `'${target}' is not a branch here; see 'git branch -a'`, { target });
  const head = await git(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { cwd: root, allowFail: true });
  // the files that differ between the two commits are all git (and we) will write
  const changed = head.code === 0
    ? NUL((await git(['diff', '--name-only', '--no-renames', '-z', 'HEAD', to], { cwd: root })).stdout)
    : NUL((await git(['ls-tree', '-r', '-z', '--name-only', to], { cwd: root })).stdout);
  const sw = await git(['switch', target], { cwd: root, env: skipSmudge(), allowFail: true });
  if (sw.code !== 0) throw new ThetaError('E_GIT', `git switch ${target} failed: ${sw.stderr.trim()}`, { target });
  process.stderr.write(sw.stderr);
  return writeCheckpoints(repo, changed);
}

/** The directory `git clone <url>` would make. */
export function cloneDirName(url: string): string {
  const base = basename(url.replace(/[/\\]+$/, '').replace(/:+$/, '')).replace(/\.git$/, '').replace(/\.bundle$/, '');
  return base || 'repo';
}

export async function fastClone(url: string, dir?: string): Promise<{ dir: string; written: string[] }> {
  const dest = resolve(dir ?? cloneDirName(url));
  await mkdir(resolve(dest, '..'), { recursive: true });
  const c = await git(['clone', '--no-checkout', '--', url, dest], { allowFail: true });
  if (c.code !== 0) throw new ThetaError('E_GIT', `git clone ${url} failed: ${c.stderr.trim()}`, { url });
  // the clone needs the filter (a global install may already give it) and the pre-push hook
  const configured = await git(['config', '--get', 'filter.theta.process'], { cwd: dest, allowFail: true });
  if (configured.code !== 0) await install({ scope: '--local', cwd: dest });
  const hasHead = (await git(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { cwd: dest, allowFail: true })).code === 0;
  if (!hasHead) return { dir: dest, written: [] }; // an empty repository
  const co = await git(['checkout', '-q', '-f', 'HEAD'], { cwd: dest, env: skipSmudge(), allowFail: true });
  if (co.code !== 0) throw new ThetaError('E_GIT', `checking out the clone failed: ${co.stderr.trim()}`, { url });
  const repo = await ThetaRepo.open(dest);
  const all = NUL((await git(['ls-files', '-z'], { cwd: dest })).stdout);
  return { dir: dest, written: await writeCheckpoints(repo, all) };
}

export function registerSwitch(program: Command): void {
  program
    .command('switch')
    .description("git switch <branch>, with the checkpoints that change written straight from the object store (faster than through git's smudge pipe); refuses when tracked files have local changes")
    .argument('<branch>', 'the branch to switch to')
    .action(async (branch: string) => {
      const repo = await ThetaRepo.open();
      const done = await fastSwitch(repo, branch);
      process.stderr.write(`git-theta: wrote ${done.length} checkpoint(s)${done.length ? `: ${done.join(', ')}` : ''}\n`);
    });
  program
    .command('clone')
    .description("git clone <url> [dir], with every checkpoint written straight from the object store (objects downloaded in batches first); installs git-theta in the clone when it is not installed globally")
    .argument('<url>', 'the repository to clone')
    .argument('[dir]', 'where (default: the name git would choose)')
    .action(async (url: string, dir?: string) => {
      const r = await fastClone(url, dir);
      process.stderr.write(`git-theta: cloned into ${r.dir}; wrote ${r.written.length} checkpoint(s)\n`);
    });
}
