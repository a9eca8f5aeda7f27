import type { Command } from 'commander';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { ThetaError } from '../../../core/errors.ts';
import { git } from '../../git/git.ts';
import { unchangedInWorkTree } from '../../git/unchanged.ts';
import { revisionsAndPaths } from '../argv.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { writeCheckpointFiles } from '../write-checkpoints.ts';
import { wroteCheckpoints } from '../format-number.ts';

/**
 * The direct path for tracked checkpoints: write each file from the object store ourselves and
 * record it in the index with its stat data, instead of streaming it through git's smudge pipe
 * (git spends seconds per gigabyte receiving a filter's output). Same result as
 * `git checkout <rev> -- <paths>`: the other files the paths name are checked out by git itself.
 */
export async function fastCheckout(repo: ThetaRepo, rev: string | null, paths: string[]): Promise<string[]> {
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
  const unchanged = await unchangedInWorkTree(root, entries.filter((e) => tracked.has(e.path)));
  // ... unless the file is the metadata itself (git wrote it with GIT_THETA_SKIP_SMUDGE): same size as the blob
  if (unchanged.size) for (const p of await holdingTheirBlob(root, entries.filter((e) => unchanged.has(e.path)))) unchanged.delete(p);
  const todo = entries.filter((e) => tracked.has(e.path) && !unchanged.has(e.path));
  const done = await writeCheckpointFiles(repo, todo, {
    // `<rev>`: the index entries of the files written (also when a later one failed), in one git call
    setIndex: rev ? async (d) => { await git(['update-index', '--add', '-z', '--index-info'], { cwd: root, input: d.map((e) => `100644 ${e.blob}\t${e.path}\0`).join('') }); } : undefined,
  });
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
      process.stderr.write(`git-theta: ${wroteCheckpoints(done)}\n`);
    });
}
