import type { Command } from 'commander';
import { dirname, join } from 'node:path';
import { mkdir, stat, utimes } from 'node:fs/promises';
import { ThetaError } from '../../../core/errors.ts';
import { git, gitDir } from '../../git/git.ts';
import { recordStat } from '../../git/git-index.ts';
import { batchReadBlob } from '../../git/git-batch.ts';
import { unchangedInWorkTree } from '../../git/unchanged.ts';
import { revisionsAndPaths } from '../argv.ts';
import { atomicFileSink } from '../../files/fs-source.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { looksLikeMetadata } from '../../../theta/metadata.ts';
import { looksLikePyMetadata } from '../../repo/python-theta.ts';
import { workProgress } from '../progress.ts';

/**
 * The direct path for tracked checkpoints: write each file from the object store ourselves and
 * record it in the index with its stat data, instead of streaming it through git's smudge pipe
 * (git spends seconds per gigabyte receiving a filter's output). Same result as
 * `git checkout <rev> -- <paths>`: the other files the paths name are checked out by git itself.
 */
export async function fastCheckout(repo: ThetaRepo, rev: string | null, paths: string[], o: { rewrite?: boolean } = {}): Promise<string[]> {
  const root = repo.root;
  const ls = rev
    ? await git(['ls-tree', '-r', '-z', '--full-tree', rev, '--', ...paths], { cwd: root })
    : await git(['ls-files', '-s', '-z', '--', ...paths], { cwd: root });
  const entries: { path: string; blob: string }[] = [];
  const all: string[] = [];
  for (const rec of ls.stdout.toString().split('\0').filter(Boolean)) {
    const [meta, path] = rec.split('\t');
    const f = meta.split(' ');
    const blob = rev ? f[2] : f[1];
    if (rev ? f[1] !== 'blob' : f[2] !== '0') continue;
    all.push(path);
    if (f[0] === '100644') entries.push({ path, blob });
  }
  const tracked = new Set(await repo.trackedAmong(entries.map((e) => e.path)));
  // files that already hold the target content (index entry = target blob, stat unchanged) stay as they are
  // (`rewrite`: the caller knows they hold something else, e.g. metadata git wrote without smudging)
  const unchanged = o.rewrite ? new Set<string>() : await unchangedInWorkTree(root, entries.filter((e) => tracked.has(e.path)));
  // ... unless the file is the metadata itself (git wrote it with GIT_THETA_SKIP_SMUDGE): same size as the blob
  if (unchanged.size) for (const p of await holdingTheirBlob(root, entries.filter((e) => unchanged.has(e.path)))) unchanged.delete(p);
  const done: string[] = [];
  const progress = workProgress('git-theta: checkout', { items: entries.filter((e) => tracked.has(e.path) && !unchanged.has(e.path)).length });
  const blobOf = new Map(entries.map((e) => [e.path, e.blob]));
  try {
    for (const e of entries) {
      if (!tracked.has(e.path) || unchanged.has(e.path)) continue;
      // through one long-running `git cat-file --batch`, not a git process per file
      const blob = await batchReadBlob(root, e.blob);
      // not (yet) a theta blob, nor one the Python Git-Theta wrote: leave it to git
      if (!blob || (!looksLikeMetadata(blob) && !looksLikePyMetadata(blob))) continue;
      await mkdir(dirname(join(root, e.path)), { recursive: true }); // its directory may be gone
      const sink = await atomicFileSink(join(root, e.path), { fsync: false }); // git does not fsync work-tree files either
      try {
        await repo.smudge(e.path, blob, { write: (b) => { progress.bytes(b.length); return sink.write(b); }, close: () => sink.close() });
        await sink.close();
      } catch (err) {
        await sink.abort();
        throw err;
      }
      // git treats a file as possibly changed ("racily clean") when its mtime is not older than the
      // index; date it two seconds back so git can trust the stat data recorded below
      const past = new Date(Date.now() - 2000);
      await utimes(join(root, e.path), past, past);
      done.push(e.path);
      progress.item();
    }
  } finally {
    progress.done();
    // the index entries of the files written (also when a later one failed), in one git call
    if (rev && done.length) {
      await git(['update-index', '--add', '-z', '--index-info'], { cwd: root, input: done.map((p) => `100644 ${blobOf.get(p)}\t${p}\0`).join('') });
    }
  }
  if (done.length) await recordStat(await gitDir(root), root, done);
  // everything else the paths name (a TF.js model's model.json, code, ...) the way git checks it out
  const written = new Set(done);
  const rest = all.filter((p) => !written.has(p) && !unchanged.has(p));
  if (rest.length) {
    await git(['checkout', ...(rev ? [rev] : []), '--pathspec-from-file=-', '--pathspec-file-nul'], {
      cwd: root, input: Buffer.from(rest.join('\0')), env: { ...process.env, GIT_LITERAL_PATHSPECS: '1' },
    });
  }
  return done;
}

/** The paths whose work-tree file has exactly its blob's size (it holds the blob, not a checkpoint). */
async function holdingTheirBlob(root: string, entries: { path: string; blob: string }[]): Promise<string[]> {
  const r = await git(['cat-file', '--batch-check=%(objectsize)'], { cwd: root, input: entries.map((e) => e.blob).join('\n') + '\n' });
  const sizes = r.stdout.toString().split('\n');
  const out: string[] = [];
  for (const [i, e] of entries.entries()) {
    const size = await stat(join(root, e.path)).then((st) => st.size, () => -1);
    if (size === Number(sizes[i])) out.push(e.path);
  }
  return out;
}

export function registerCheckout(program: Command): void {
  program
    .command('checkout')
    .description('Write tracked checkpoints straight from the object store (faster than git checkout for big files): from <rev> into the working tree and index, or from the index when no revision is given')
    .argument('[args...]', '[<rev>] [-- <path>...]')
    .action(async (args: string[]) => {
      const { revs, paths } = revisionsAndPaths(args);
      if (revs.length > 1) throw new ThetaError('E_ARGUMENT', 'give at most one revision (paths go after --)', {});
      const repo = await ThetaRepo.open();
      const done = await fastCheckout(repo, revs[0] ?? null, paths);
      process.stderr.write(`git-theta: wrote ${done.length} checkpoint(s)${done.length ? `: ${done.join(', ')}` : ''}\n`);
    });
}
