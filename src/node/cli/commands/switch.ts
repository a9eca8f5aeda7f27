/**
 * `git theta switch <branch>` and `git theta clone <url> [dir]`: git moves HEAD, the index and the
 * ordinary files with the theta filter switched off (git writes a checkpoint's metadata blob as it
 * is and starts no filter process: `git/without-filter.ts`), then the direct path writes the
 * checkpoints that changed: their objects fetched first in batched requests, each file written
 * straight from the object store, the index's stat data recorded so `git status` is clean. No
 * checkpoint goes through git's smudge pipe, and a checkpoint with the same metadata blob on both
 * sides is not touched (git keeps it; it is not among the paths that differ).
 */
import type { Command } from 'commander';
import { basename, join, resolve } from 'node:path';
import { lstat, mkdir } from 'node:fs/promises';
import { ThetaError } from '../../../core/errors.ts';
import { git, type GitResult } from '../../git/git.ts';
import { WITHOUT_THETA_FILTER, trustStatData } from '../../git/without-filter.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { writeCheckpointFiles, type BlobEntry } from '../write-checkpoints.ts';
import { dropOldFiles, keepOldFiles } from '../patch-checkpoint.ts';
import { ENV_SKIP_SMUDGE } from './filter.ts';
import { driverConfig, installHook } from './install.ts';
import { wroteCheckpoints } from '../format-number.ts';

/** Tracked files have changes a switch would overwrite (git refuses too). */
export class DirtyWorktreeError extends ThetaError {
  constructor(paths: string[]) {
    super('E_DIRTY', `your local changes to ${paths.length} file(s) (${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ', ...' : ''}) would be overwritten: commit or stash them, then switch again`, { paths });
    this.name = 'DirtyWorktreeError';
  }
}

const NUL = (s: Buffer | string) => s.toString().split('\0').filter(Boolean);

/**
 * Git compares a checkpoint it cannot trust by its stat data (racily clean) by cleaning it; here
 * the clean's metadata is only compared with the index's, never stored, so its recipe check
 * (reading the objects back) is skipped.
 */
const COMPARE_ONLY = ['-c', 'theta.verifyClean=false'];

/** Paths with staged or unstaged changes to tracked files (untracked files do not count, as for git). */
async function dirtyPaths(root: string): Promise<string[]> {
  const r = await git([...COMPARE_ONLY, 'status', '--porcelain=v1', '-z', '--untracked-files=no'], { cwd: root });
  const out: string[] = [];
  const recs = NUL(r.stdout);
  for (let i = 0; i < recs.length; i++) {
    const rec = recs[i];
    out.push(rec.slice(3));
    if (rec[0] === 'R' || rec[0] === 'C') i++; // a rename's old path follows
  }
  return out;
}

/** The commits `specs` name (null for none), from one `git cat-file --batch-check`. */
async function commitsOf(root: string, specs: string[]): Promise<(string | null)[]> {
  const r = await git(['cat-file', '--batch-check=%(objectname) %(objecttype)'], { cwd: root, input: specs.map((s) => `${s}^{commit}\n`).join('') });
  const lines = r.stdout.toString().split('\n');
  return specs.map((_, i) => /^([0-9a-f]{40,64}) commit$/.exec(lines[i] ?? '')?.[1] ?? null);
}

/**
 * What a move from `from` to `to` changes: the regular files `to` holds that differ (every one when
 * there is no `from`), with their blobs, and the paths of `from`'s files that git will overwrite or remove.
 */
async function changedFiles(root: string, from: string | null, to: string): Promise<{ write: BlobEntry[]; replaced: string[] }> {
  const write: BlobEntry[] = [];
  const replaced: string[] = [];
  if (!from) {
    for (const rec of NUL((await git(['ls-tree', '-r', '-z', to], { cwd: root })).stdout)) {
      const tab = rec.indexOf('\t');
      const [mode, type, blob] = rec.slice(0, tab).split(' ');
      if (type === 'blob' && mode === '100644') write.push({ path: rec.slice(tab + 1), blob });
    }
    return { write, replaced };
  }
  // raw records: ":<old mode> <new mode> <old blob> <new blob> <status>", then the path
  const recs = NUL((await git(['diff-tree', '-r', '-z', '--no-renames', from, to], { cwd: root })).stdout);
  for (let i = 0; i + 1 < recs.length; i += 2) {
    const [oldMode, mode, from, blob, status] = recs[i].split(' ');
    if (status !== 'D' && mode === '100644') write.push({ path: recs[i + 1], blob, ...(status === 'M' && oldMode === ':100644' ? { from } : {}) });
    if (status !== 'A' && oldMode.startsWith(':100')) replaced.push(recs[i + 1]);
  }
  return { write, replaced };
}

/**
 * The paths among these whose index entry git checks against the file (`git ls-files -v` tag H):
 * not assume-unchanged nor skip-worktree, so a clean `git status` says the file holds the entry.
 */
async function statChecked(root: string, paths: string[]): Promise<string[]> {
  if (!paths.length) return [];
  const r = await git(['ls-files', '-v', '-z', '--', ...paths], { cwd: root, env: { ...process.env, GIT_LITERAL_PATHSPECS: '1' } });
  return NUL(r.stdout).filter((rec) => rec.startsWith('H ')).map((rec) => rec.slice(2));
}

/**
 * `git switch <target>` without the filter; when git refuses (a checkpoint whose stat data it
 * cannot trust looks changed without the clean filter, or a real reason), once more with the
 * filter handing metadata back as it is (GIT_THETA_SKIP_SMUDGE), which says the real reason.
 */
async function switchWithoutSmudge(root: string, args: string[]): Promise<GitResult> {
  const fast = await git([...WITHOUT_THETA_FILTER, ...args], { cwd: root, allowFail: true });
  if (fast.code === 0) return fast;
  return git([...COMPARE_ONLY, ...args], { cwd: root, env: { ...process.env, [ENV_SKIP_SMUDGE]: '1' }, allowFail: true });
}

export async function fastSwitch(repo: ThetaRepo, target: string): Promise<string[]> {
  const root = repo.root;
  if (/[\0-\x1f]/.test(target)) throw new ThetaError('E_ARGUMENT', `${JSON.stringify(target)} is not a branch name (control characters); see 'git branch -a'`, { target });
  const [dirty, [head, branch]] = await Promise.all([dirtyPaths(root), commitsOf(root, ['HEAD', `refs/heads/${target}`])]);
  if (dirty.length) throw new DirtyWorktreeError(dirty);
  let to = branch;
  if (!to) {
    // like git switch: a branch only a remote has is created from it (when exactly one remote has it)
    const remote = (await git(['for-each-ref', '--format=%(objectname)', `refs/remotes/*/${target}`], { cwd: root })).stdout.toString().split('\n').filter(Boolean);
    if (remote.length === 1) to = remote[0];
  }
  if (!to) throw new ThetaError('E_ARGUMENT', `'${target}' is not a branch here; see 'git branch -a'`, { target });
  // the files that differ between the two commits are all git (and we) will write
  const changed = await changedFiles(root, head, to);
  // the old checkpoints keep a second name while git replaces them: a changed one is then patched
  // (only its changed tensors written) instead of rebuilt whole; linked before the stat data is recorded
  const previous = await keepOldFiles((await statChecked(root, changed.write.filter((e) => e.from).map((e) => e.path))).map((p) => join(root, p)));
  try {
    // nothing is dirty: git may trust the stat data of what it replaces (no content compare, which would need the filter)
    await trustStatData(await repo.gitDir(), root, changed.replaced);
    const sw = await switchWithoutSmudge(root, ['switch', target]);
    if (sw.code !== 0) throw new ThetaError('E_GIT', `git switch ${target} failed: ${sw.stderr.trim()}`, { target });
    process.stderr.write(sw.stderr);
    return await writeCheckpointFiles(repo, await checkedOutCheckpoints(repo, changed.write), { previous });
  } finally {
    await dropOldFiles(previous);
  }
}

/**
 * The tracked checkpoints among `entries` (attributes as the target has them: git has written its
 * .gitattributes) that git wrote into the work tree (a sparse checkout's skipped paths stay absent).
 */
async function checkedOutCheckpoints(repo: ThetaRepo, entries: BlobEntry[]): Promise<BlobEntry[]> {
  const tracked = new Set(await repo.trackedAmong(entries.map((e) => e.path)));
  const out: BlobEntry[] = [];
  for (const e of entries) if (tracked.has(e.path) && (await lstat(join(repo.root, e.path)).then((st) => st.isFile(), () => false))) out.push(e);
  return out;
}

/** The directory `git clone <url>` would make. */
export function cloneDirName(url: string): string {
  const base = basename(url.replace(/[/\\]+$/, '').replace(/:+$/, '')).replace(/\.git$/, '').replace(/\.bundle$/, '');
  return base || 'repo';
}

export async function fastClone(url: string, dir?: string): Promise<{ dir: string; written: string[] }> {
  const dest = resolve(dir ?? cloneDirName(url));
  await mkdir(resolve(dest, '..'), { recursive: true });
  // the clone needs the filter: a global or system install gives it, else the clone gets it in its
  // own config (`--config`, no git call per setting); and the pre-push hook either way
  const scopes = await Promise.all(['--global', '--system'].map((scope) => git(['config', scope, '--includes', '--get', 'filter.theta.process'], { allowFail: true })));
  const settings = scopes.some((r) => r.code === 0) ? [] : Object.entries(driverConfig()).flatMap(([k, v]) => ['--config', `${k}=${v}`]);
  // the objects come next, over HTTP for an http(s) URL: its client loads while git clones
  if (/^https?:\/\//i.test(url)) void import('../../lfs/http-node.ts').then((m) => m.warmHttp(), () => {});
  const c = await git(['clone', '--no-checkout', ...settings, '--', url, dest], { allowFail: true });
  if (c.code !== 0) throw new ThetaError('E_GIT', `git clone ${url} failed: ${c.stderr.trim()}`, { url });
  await installHook(dest);
  const hasHead = (await git(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { cwd: dest, allowFail: true })).code === 0;
  if (!hasHead) return { dir: dest, written: [] }; // an empty repository
  const co = await git([...WITHOUT_THETA_FILTER, 'checkout', '-q', '-f', 'HEAD'], { cwd: dest, allowFail: true });
  if (co.code !== 0) throw new ThetaError('E_GIT', `checking out the clone failed: ${co.stderr.trim()}`, { url });
  const repo = await ThetaRepo.open(dest);
  const files = (await changedFiles(dest, null, 'HEAD')).write;
  return { dir: dest, written: await writeCheckpointFiles(repo, await checkedOutCheckpoints(repo, files)) };
}

export function registerSwitch(program: Command): void {
  program
    .command('switch')
    .description("git switch <branch>, with the checkpoints that change written straight from the object store (faster than through git's smudge pipe); refuses when tracked files have local changes")
    .argument('<branch>', 'the branch to switch to')
    .action(async (branch: string) => {
      const repo = await ThetaRepo.open();
      const done = await fastSwitch(repo, branch);
      process.stderr.write(`git-theta: ${wroteCheckpoints(done)}\n`);
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
