import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThetaError } from '../../core/errors.ts';
import { worktreeRoot } from '../git.ts';

export const THETA_ATTRS = 'filter=theta diff=theta merge=theta';

/** Add `.gitattributes` lines for the patterns; returns the patterns that were added. */
export async function track(patterns: string[], cwd?: string): Promise<string[]> {
  const root = await worktreeRoot(cwd);
  const file = join(root, '.gitattributes');
  const text = existsSync(file) ? await readFile(file, 'utf8') : '';
  const lines = text.split('\n');
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
    lines.push(`${pattern} ${THETA_ATTRS}`);
    added.push(pattern);
  }
  if (added.length) {
    const body = lines.join('\n').replace(/^\n+/, '').replace(/\n*$/, '\n');
    await writeFile(file, body);
  }
  return added;
}

export function registerTrack(program: Command): void {
  program
    .command('track')
    .description(`Track checkpoints matching the patterns with git-theta (adds "<pattern> ${THETA_ATTRS}" to .gitattributes)`)
    .argument('<pattern...>', 'gitattributes patterns, e.g. "*.safetensors" or models/model.pt')
    .action(async (patterns: string[]) => {
      const added = await track(patterns);
      for (const p of patterns) process.stderr.write(added.includes(p) ? `tracking "${p}"\n` : `"${p}" already tracked\n`);
      if (added.length) process.stderr.write("remember to 'git add .gitattributes'\n");
    });
}
