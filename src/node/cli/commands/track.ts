import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { dirOf, joinPath, manifestShardPaths, manifestsIn, TFJS_SHARD_FORMAT_ID } from '../../../formats/tfjs-shard.ts';
import { worktreeFiles } from '../../files/file-access.ts';
import { ThetaError } from '../../../core/errors.ts';
import { worktreeRoot } from '../../git/git.ts';
import { reportDiffOnly, trackDiffOnly } from '../../git/lfs-attributes.ts';

export const THETA_ATTRS = 'filter=theta diff=theta merge=theta';

/** Add `.gitattributes` lines for the patterns; returns the patterns that were added. */
export async function track(patterns: string[], cwd?: string, attrs = THETA_ATTRS): Promise<string[]> {
  const root = await worktreeRoot(cwd);
  const file = join(root, '.gitattributes');
  const text = existsSync(file) ? await readFile(file, 'utf8') : '';
  const lines = text.split('\n');
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  const added: string[] = [];
  for (const pattern of patterns) {
    if (/\s/.test(pattern)) throw new ThetaError('E_ARGUMENT', `pattern '${pattern}' contains white space; .gitattributes patterns cannot`, {});
    // the last line for this exact pattern decides (git: last match wins)
    let last: string | undefined;
    for (const l of lines) {
      const [p, ...attrs] = l.trim().split(/\s+/);
      if (p === pattern && attrs.some((a) => a.startsWith('filter=') || a === '-filter' || a === '!filter')) last = attrs.find((a) => /filter/.test(a));
    }
    if (last === 'filter=theta') continue;
    if (last && last !== 'filter=theta') {
      const hint = last === 'filter=lfs' ? ` (run 'git lfs untrack "${pattern}"' first)` : ' (remove that line from .gitattributes first)';
      throw new ThetaError('E_TRACKED_ELSEWHERE', `pattern '${pattern}' is already bound to ${last}${hint}`, { pattern, filter: last });
    }
    lines.push(`${pattern} ${attrs}`);
    added.push(pattern);
  }
  if (added.length) {
    const body = lines.join('\n').replace(/^\n+/, '').replace(/\n*$/, '\n');
    await writeFile(file, body);
  }
  return added;
}

export const SHARD_ATTRS = `${THETA_ATTRS} theta-format=${TFJS_SHARD_FORMAT_ID}`;

/**
 * A TF.js model named by its model.json or its directory: the patterns that match its weight
 * shards (`<dir>/*.bin` when they all sit next to each other as .bin files, else each shard's path),
 * relative to the repository root. null when `arg` is neither.
 */
export async function tfjsShardPatterns(arg: string, cwd: string): Promise<{ models: string[]; patterns: string[] } | null> {
  const root = await worktreeRoot(cwd);
  const abs = resolve(cwd, arg);
  const rel = relative(root, abs).split(sep).join('/');
  if (rel.startsWith('..') || isAbsolute(rel)) return null;
  const st = await stat(abs).catch(() => null);
  if (!st) return null;
  const files = worktreeFiles(root);
  const found = st.isDirectory()
    ? await manifestsIn(files, rel)
    : rel.toLowerCase().endsWith('.json') ? (await manifestsIn(files, dirOf(rel))).filter((m) => m.path === rel) : [];
  if (!found.length) return null;
  const patterns = new Set<string>();
  for (const m of found) {
    const shards = manifestShardPaths(m.path, m.manifest).flat();
    const dirs = new Set(shards.map(dirOf));
    const d0 = [...dirs][0];
    // the glob only when it would match nothing but this model's shards (a PyTorch .bin beside them must not become a shard)
    const others = dirs.size === 1 ? (await files.list(d0)).filter((n) => n.toLowerCase().endsWith('.bin') && !shards.includes(joinPath(d0, n))) : [];
    if (dirs.size === 1 && !others.length && shards.every((p) => p.toLowerCase().endsWith('.bin'))) {
      patterns.add(d0 ? `${d0}/*.bin` : '/*.bin');
    } else {
      // gitattributes has no escapes: a character with a meaning there matches itself as '?'
      for (const p of shards) patterns.add(p.replace(/[\s*?[\]\\!#]/g, '?'));
    }
  }
  return { models: found.map((m) => m.path), patterns: [...patterns] };
}

export function registerTrack(program: Command): void {
  program
    .command('track')
    .description(`Track checkpoints matching the patterns with git-theta (adds "<pattern> ${THETA_ATTRS}" to .gitattributes). ` +
      'A TF.js model.json, or a directory holding one, tracks that model\'s weight shards (model.json stays a normal file).')
    .argument('<pattern...>', 'gitattributes patterns, e.g. "*.safetensors" or models/model.pt; or a TF.js model.json or its directory')
    .option('--diff-only', 'keep git-lfs storage and use only git-theta\'s diff and merge drivers ("<pattern> filter=lfs diff=theta merge=theta")')
    .action(async (patterns: string[], o: { diffOnly?: boolean }) => {
      if (o.diffOnly) return reportDiffOnly(await trackDiffOnly(patterns));
      let any = false;
      for (const arg of patterns) {
        const tfjs = await tfjsShardPatterns(arg, process.cwd());
        if (tfjs) {
          const added = await track(tfjs.patterns, undefined, SHARD_ATTRS);
          for (const p of tfjs.patterns) {
            process.stderr.write(added.includes(p) ? `tracking "${p}" (weight shards of TF.js model ${tfjs.models.join(', ')}; model.json stays a normal file)\n` : `"${p}" already tracked\n`);
          }
          any ||= added.length > 0;
          continue;
        }
        const added = await track([arg]);
        process.stderr.write(added.length ? `tracking "${arg}"\n` : `"${arg}" already tracked\n`);
        any ||= added.length > 0;
      }
      if (any) process.stderr.write("remember to 'git add .gitattributes'\n");
    });
}
