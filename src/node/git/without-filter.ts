/**
 * Running git with the theta filter switched off for one command: git then writes a tracked
 * checkpoint's metadata blob into the work tree as it is, without starting the filter process
 * (a Node process, ~0.3 s before its first byte), and `git theta switch` / `clone` write the
 * checkpoints themselves afterwards.
 *
 * An empty `filter.theta.process` is a configured driver with nothing to run (git neither starts
 * a process nor falls back to `filter.theta.smudge`), and `required=false` lets git accept the
 * blob unfiltered. Git compares a work-tree file by content when its stat data cannot be trusted
 * (a "racily clean" entry: the file is not older than the index); without the clean filter a
 * checkpoint would then look changed and git would refuse to overwrite it. `trustStatData` first
 * dates such files back and records their stat data, and callers still retry with the filter
 * when git refuses (see `switch.ts`).
 */
import { lstat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { recordStat } from './git-index.ts';

export const WITHOUT_THETA_FILTER: readonly string[] = ['-c', 'filter.theta.process=', '-c', 'filter.theta.required=false'];

/**
 * Make git trust the stat data of `paths`: files not at least two seconds old are dated back that
 * far, and every index entry gets its file's stat data (also one git wrote with size 0, its mark
 * for an entry to compare by content). Only for files known to match the index (`git status`
 * found nothing to report) that git is about to overwrite or remove anyway.
 */
export async function trustStatData(gitDir: string, root: string, paths: string[]): Promise<void> {
  const files: string[] = [];
  const past = new Date(Date.now() - 2000);
  for (const p of paths) {
    const st = await lstat(join(root, p)).catch(() => null);
    if (!st?.isFile()) continue;
    if (st.mtimeMs > past.getTime()) await utimes(join(root, p), past, past);
    files.push(p);
  }
  if (files.length) await recordStat(gitDir, root, files);
}
