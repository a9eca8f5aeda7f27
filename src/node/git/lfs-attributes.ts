/**
 * `.gitattributes` for files git-lfs stores: `git theta track --diff-only` keeps git-lfs storage and
 * binds our diff and merge drivers (`filter=lfs diff=theta merge=theta`); `git theta migrate`
 * switches a pattern from git-lfs to per-tensor storage (`filter=theta diff=theta merge=theta`).
 * Only the line for the exact pattern is rewritten; other attributes on it are kept.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThetaError } from '../../core/errors.ts';
import { worktreeRoot } from './git.ts';
import { THETA_ATTRS } from './theta-attrs.ts';

export const LFS_DIFF_ATTRS = 'filter=lfs diff=theta merge=theta';

interface AttrFile {
  file: string;
  lines: string[];
}

async function readAttributes(cwd?: string): Promise<AttrFile> {
  const file = join(await worktreeRoot(cwd), '.gitattributes');
  const lines = (existsSync(file) ? await readFile(file, 'utf8') : '').split('\n');
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  return { file, lines };
}

async function writeAttributes(a: AttrFile): Promise<void> {
  await writeFile(a.file, a.lines.join('\n').replace(/^\n+/, '').replace(/\n*$/, '\n'));
}

const isFilterAttr = (x: string) => /^(filter=|[-!]filter$)/.test(x);
const isDriverAttr = (x: string) => /^(diff|merge)=|^[-!](diff|merge)$/.test(x);

/** The last line binding `pattern` to a filter (git: the last match wins): its index and filter attribute. */
function lastFilterLine(a: AttrFile, pattern: string): { i: number; filter: string } | null {
  let found: { i: number; filter: string } | null = null;
  a.lines.forEach((l, i) => {
    const [p, ...attrs] = l.trim().split(/\s+/);
    const f = attrs.find(isFilterAttr);
    if (p === pattern && f) found = { i, filter: f };
  });
  return found;
}

function checkPattern(pattern: string): void {
  if (/\s/.test(pattern)) throw new ThetaError('E_ARGUMENT', `pattern '${pattern}' contains white space; .gitattributes patterns cannot`, {});
}

/**
 * Bind git-theta's diff and merge drivers to `pattern`, which git-lfs keeps storing. A pattern
 * `git lfs track` wrote has its line rewritten; an unknown one is added as git-lfs would, with our
 * drivers. Returns what happened per pattern.
 */
export async function trackDiffOnly(patterns: string[], cwd?: string): Promise<{ pattern: string; action: 'added' | 'rewritten' | 'unchanged' }[]> {
  const a = await readAttributes(cwd);
  const out: { pattern: string; action: 'added' | 'rewritten' | 'unchanged' }[] = [];
  for (const pattern of patterns) {
    checkPattern(pattern);
    const last = lastFilterLine(a, pattern);
    if (!last) {
      a.lines.push(`${pattern} ${LFS_DIFF_ATTRS} -text`);
      out.push({ pattern, action: 'added' });
      continue;
    }
    if (last.filter !== 'filter=lfs') {
      const hint = last.filter === 'filter=theta' ? ': git-theta already stores it per tensor, with its diff and merge drivers' : ' (remove that line from .gitattributes first)';
      throw new ThetaError('E_TRACKED_ELSEWHERE', `pattern '${pattern}' is bound to ${last.filter}, not filter=lfs${hint}`, { pattern, filter: last.filter });
    }
    const [, ...attrs] = a.lines[last.i].trim().split(/\s+/);
    const kept = attrs.filter((x) => !isDriverAttr(x));
    const at = kept.indexOf('filter=lfs') + 1;
    const line = [pattern, ...kept.slice(0, at), 'diff=theta', 'merge=theta', ...kept.slice(at)].join(' ');
    out.push({ pattern, action: line === a.lines[last.i].trim() ? 'unchanged' : 'rewritten' });
    a.lines[last.i] = line;
  }
  if (out.some((x) => x.action !== 'unchanged')) await writeAttributes(a);
  return out;
}

/**
 * Switch each pattern's line from `filter=lfs` to git-theta's attributes (other attributes kept).
 * A pattern already on filter=theta is left as is; one not on git-lfs is an error (nothing written).
 */
export async function switchToTheta(patterns: string[], cwd?: string): Promise<{ pattern: string; action: 'switched' | 'unchanged'; before: string; after: string }[]> {
  const a = await readAttributes(cwd);
  const out: { pattern: string; action: 'switched' | 'unchanged'; before: string; after: string }[] = [];
  for (const pattern of patterns) {
    checkPattern(pattern);
    const last = lastFilterLine(a, pattern);
    if (last?.filter === 'filter=theta') {
      out.push({ pattern, action: 'unchanged', before: a.lines[last.i].trim(), after: a.lines[last.i].trim() });
      continue;
    }
    if (last?.filter !== 'filter=lfs') {
      throw new ThetaError('E_NOT_LFS', `pattern '${pattern}' is not stored by git-lfs in .gitattributes (${last ? `it is bound to ${last.filter}` : 'no line for it'}); give the pattern exactly as 'git lfs track' wrote it (see .gitattributes), or use 'git theta track' for new files`, { pattern });
    }
    const before = a.lines[last.i].trim();
    const [, ...attrs] = before.split(/\s+/);
    a.lines[last.i] = [pattern, THETA_ATTRS, ...attrs.filter((x) => !isFilterAttr(x) && !isDriverAttr(x))].join(' ');
    out.push({ pattern, action: 'switched', before, after: a.lines[last.i] });
  }
  if (out.some((x) => x.action === 'switched')) await writeAttributes(a);
  return out;
}

/** What `git theta track --diff-only` says on stderr. */
export function reportDiffOnly(r: { pattern: string; action: 'added' | 'rewritten' | 'unchanged' }[]): void {
  for (const x of r) {
    const what = x.action === 'added' ? `tracking "${x.pattern}" with git-lfs storage` : x.action === 'rewritten' ? `"${x.pattern}" stays in git-lfs` : `"${x.pattern}" already uses`;
    process.stderr.write(`${what}${x.action === 'unchanged' ? '' : ';'} git-theta's diff and merge drivers${x.action === 'unchanged' ? '' : ' now read it'} (${LFS_DIFF_ATTRS})\n`);
  }
  if (r.some((x) => x.action !== 'unchanged')) process.stderr.write("remember to 'git add .gitattributes' (and run 'git theta install' once if you have not)\n");
}
