import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { dirOf, joinPath, manifestShardPaths, manifestsIn, TFJS_SHARD_FORMAT_ID } from '../../../formats/tfjs-shard.ts';
import { worktreeFiles } from '../../files/file-access.ts';
import { ThetaError } from '../../../core/errors.ts';
import { worktreeRoot } from '../../git/git.ts';
import { reportDiffOnly, trackDiffOnly } from '../../git/lfs-attributes.ts';

import { THETA_ATTRS } from '../../git/theta-attrs.ts';
export { THETA_ATTRS };

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

/** Globs tried, in order, for a directory of TF.js shards: the first that every shard there matches and nothing else does. */
const SHARD_GLOBS = ['*.bin', '*-shard*', '*shard*'];

const globRe = (glob: string) => new RegExp('^' + glob.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*') + '$', 'i');

/** One TF.js model that `track` binds: its manifest, how many shards it has and the patterns that cover them. */
export interface TrackedModel {
  manifest: string;
  shards: number;
  patterns: string[];
}

/**
 * A TF.js model named by its manifest (model.json, a bare `*weights_manifest.json`) or a directory
 * holding one or more: the patterns that match their weight shards, relative to the repository
 * root, one per directory of shards (`<dir>/*.bin`, `<dir>/*-shard*`, ...) when a glob matches
 * exactly the shards the manifests there list (so shards and models added later are covered),
 * else each shard's path. null when `arg` is neither.
 */
export async function tfjsShardPatterns(arg: string, cwd: string): Promise<{ models: TrackedModel[]; patterns: string[] } | null> {
  const root = await worktreeRoot(cwd);
  const abs = resolve(cwd, arg);
  const rel = relative(root, abs).split(sep).join('/');
  if (rel.startsWith('..') || isAbsolute(rel)) return null;
  const st = await stat(abs).catch(() => null);
  if (!st) {
    if (/(^|\/)(model\.json|[^/]*weights_manifest\.json)$/i.test(rel)) {
      throw new ThetaError('E_TRACK_NO_MODEL', `${arg} does not exist yet: put the TF.js model there first, then run 'git theta track ${arg}' (it binds the weight shards the manifest lists; the manifest stays a normal file)`, { file: arg });
    }
    return null;
  }
  const files = worktreeFiles(root);
  const found = st.isDirectory()
    ? await manifestsIn(files, rel)
    : rel.toLowerCase().endsWith('.json') ? (await manifestsIn(files, dirOf(rel))).filter((m) => m.path === rel) : [];
  if (!found.length) return null;
  // every shard each directory's manifests list (a glob must match nothing else in that directory)
  const perDir = new Map<string, string | null>();
  const patternFor = async (d: string): Promise<string | null> => {
    if (perDir.has(d)) return perDir.get(d)!;
    const listed = new Set<string>();
    for (const m of await manifestsIn(files, d)) for (const p of manifestShardPaths(m.path, m.manifest).flat()) if (dirOf(p) === d) listed.add(p);
    const names = (await files.list(d)).filter((n) => !n.toLowerCase().endsWith('.json'));
    let pick: string | null = null;
    for (const g of SHARD_GLOBS) {
      const re = globRe(g);
      const shardNames = [...listed].map((p) => p.slice(d ? d.length + 1 : 0));
      if (shardNames.every((n) => re.test(n)) && names.filter((n) => re.test(n)).every((n) => listed.has(joinPath(d, n)))) {
        pick = d ? `${d}/${g}` : `/${g}`;
        break;
      }
    }
    perDir.set(d, pick);
    return pick;
  };
  const models: TrackedModel[] = [];
  const all = new Set<string>();
  for (const m of found) {
    const shards = manifestShardPaths(m.path, m.manifest).flat();
    const patterns = new Set<string>();
    for (const p of shards) {
      // gitattributes has no escapes: a character with a meaning there matches itself as '?'
      patterns.add((await patternFor(dirOf(p))) ?? p.replace(/[\s*?[\]\\!#]/g, '?'));
    }
    models.push({ manifest: m.path, shards: shards.length, patterns: [...patterns] });
    for (const p of patterns) all.add(p);
  }
  return { models, patterns: [...all] };
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
          // one line per model: what it bound
          for (const m of tfjs.models) {
            const list = m.patterns.length > 3 ? `${m.patterns.slice(0, 3).map((p) => `"${p}"`).join(', ')} and ${m.patterns.length - 3} more` : m.patterns.map((p) => `"${p}"`).join(', ');
            const fresh = m.patterns.some((p) => added.includes(p));
            process.stderr.write(`${fresh ? 'tracking' : 'already tracking'} TF.js model ${m.manifest}: its ${m.shards} weight shard${m.shards === 1 ? '' : 's'} as ${list} (the manifest stays a normal file)\n`);
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
