/**
 * Which work-tree files already hold a given blob's content, found without reading them: the
 * index's stage-0 entry names that blob and git's stat check (`git diff-files`, the check
 * `git status` makes) finds the file unchanged since the index recorded it. `git theta checkout`
 * skips those, so a checkout that changes 3 of 41 shards writes 3 files, like `git checkout`.
 */
import { git } from './git.ts';

export async function unchangedInWorkTree(root: string, targets: { path: string; blob: string }[]): Promise<Set<string>> {
  const same = new Set<string>();
  if (!targets.length) return same;
  const paths = targets.map((t) => t.path);
  const env = { ...process.env, GIT_LITERAL_PATHSPECS: '1' };
  const staged = new Map<string, string>();
  const ls = await git(['ls-files', '-s', '-z', '--', ...paths], { cwd: root, env });
  for (const rec of ls.stdout.toString().split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [, blob, stage] = rec.slice(0, tab).split(' ');
    if (stage === '0') staged.set(rec.slice(tab + 1), blob);
  }
  // files whose stat data differs from the index (or that are gone); the rest match the index
  const dirty = new Set<string>();
  const df = await git(['diff-files', '--name-only', '-z', '--', ...paths], { cwd: root, env });
  for (const p of df.stdout.toString().split('\0')) if (p) dirty.add(p);
  for (const t of targets) if (staged.get(t.path) === t.blob && !dirty.has(t.path)) same.add(t.path);
  return same;
}
