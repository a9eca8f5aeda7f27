import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { ThetaError } from '../../../core/errors.ts';
import { tensorsNeedingStrategy, type ConflictInfo, type TensorConflict } from '../../../merges/three-way.ts';
import { listMergeStrategies, type StrategyChoice } from '../../../merges/index.ts';
import { looksLikeMetadata, parseMetadata, serializeMetadata, type ModelMetadata } from '../../../theta/metadata.ts';
import { git, readBlob } from '../../git/git.ts';
import { canPrompt, ENV_MERGE_STRATEGY, makeChooser, promptForStrategies } from '../merge-choice.ts';
import { mergeMetadata, ThetaRepo, type RepoMergeResult } from '../../repo/theta-repo.ts';
import { fromPythonBlob, looksLikePyMetadata } from '../../repo/python-theta.ts';
import { anyLfsPointer, sideMetadata, storeAsLfsObject } from '../../git/lfs-merge.ts';

async function asMetadata(repo: ThetaRepo, path: string, bytes: Buffer | null, where: string): Promise<ModelMetadata | null> {
  if (!bytes || bytes.length === 0) return null;
  // a side the Python Git-Theta wrote: its tensors rebuilt, merged like ours
  if (looksLikePyMetadata(bytes)) return fromPythonBlob(repo, path, bytes, { skeleton: true, where });
  if (!looksLikeMetadata(bytes)) {
    throw new ThetaError('E_NOT_METADATA', `${where} is not git-theta metadata (was the file committed before it was tracked?); keep one side with 'git checkout --ours/--theirs'`, {});
  }
  return parseMetadata(bytes, where);
}

/** Merge with the strategies from the command line / environment / .thetamerge / config, then the menu. */
async function runMerge(repo: ThetaRepo, path: string, base: ModelMetadata | null, ours: ModelMetadata | null, theirs: ModelMetadata | null, spec?: string): Promise<RepoMergeResult> {
  const { choose } = await makeChooser({ root: repo.root, spec });
  let prompted: Map<string, StrategyChoice> | null = null;
  const undecided: ConflictInfo[] = tensorsNeedingStrategy({ base, ours, theirs }).filter((i) => !choose(i));
  if (undecided.length && canPrompt()) {
    prompted = await promptForStrategies(path, undecided);
    if (!prompted) throw new ThetaError('E_ABORTED', `merge of ${path} abandoned at the menu; nothing written`, {});
  }
  return mergeMetadata(repo, path, base, ours, theirs, (info) => choose(info) ?? prompted?.get(info.name) ?? null);
}

function report(path: string, conflicts: TensorConflict[]): string {
  const names = listMergeStrategies().map((s) => s.name).filter((n) => n !== 'fail').join('|');
  return (
    `git-theta: ${conflicts.length} tensor(s) of ${path} could not be merged automatically:\n` +
    conflicts.map((c) => `  - ${c.message}\n`).join('') +
    `resolve with: git theta resolve ${path} --strategy <${names}>[:key=value,...]\n` +
    `   or re-run: git merge --abort && git theta merge <branch> --strategy <strategy>\n` +
    `   or add rules to .thetamerge / set git config theta.merge.strategy (see git theta merge --help)\n`
  );
}

function summaryLine(path: string, r: RepoMergeResult): string {
  const counts: Record<string, number> = {};
  for (const a of Object.values(r.actions)) counts[a.action] = (counts[a.action] ?? 0) + 1;
  const merged = Object.entries(r.actions).filter(([, a]) => a.action === 'merged').map(([n, a]) =>
    `${n} (${a.strategy}${a.requantized ? `, requantized to ${a.requantized.scheme}: max error ${a.requantized.maxError.toPrecision(3)}, rms ${a.requantized.rmsError.toPrecision(3)}` : ''})`);
  return `git-theta: merged ${path}: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')}${merged.length ? `; merged with a strategy: ${merged.join(', ')}` : ''}\n`;
}

const STRATEGY_HELP = () => listMergeStrategies().map((s) => `${s.name}${s.params.length ? `:${s.params.map((p) => `${p.name}=${p.default}`).join(',')}` : ''}`).join(', ');

/** `git-theta merge-driver %O %A %B %P` (cli/direct.ts runs it without commander: git runs it once per file). */
export async function mergeDriverCommand(basePath: string, oursPath: string, theirsPath: string, path = 'checkpoint'): Promise<void> {
  const repo = await ThetaRepo.open();
  const [b, a, t] = await Promise.all([basePath, oursPath, theirsPath].map((p) => readFile(p)));
  if (anyLfsPointer([b, a, t])) {
    // git-lfs stores this file (track --diff-only): merge the checkpoints, store the result with git-lfs
    const [base, ours, theirs] = [[b, 'base'], [a, 'ours'], [t, 'theirs']] as const;
    const side = ([x, w]: readonly [Buffer, string]) => sideMetadata(repo, path, x, `${path} (${w})`);
    const r = await runMerge(repo, path, await side(base), await side(ours), await side(theirs));
    if (r.conflicts.length || !r.metadata) {
      process.stderr.write(report(path, r.conflicts));
      process.exitCode = 1; // %A stays ours' pointer
      return;
    }
    if (looksLikeMetadata(a)) {
      // ours is already per tensor (a branch from before 'git theta migrate' merged into one after it)
      await writeFile(oursPath, serializeMetadata(r.metadata));
      process.stderr.write(summaryLine(path, r));
      return;
    }
    await writeFile(oursPath, (await storeAsLfsObject(repo, r.metadata)).text);
    process.stderr.write(summaryLine(path, r).replace(/\n$/, ' (stored by git-lfs)\n'));
    return;
  }
  const r = await runMerge(repo, path, await asMetadata(repo, path, b, `${path} (base)`), await asMetadata(repo, path, a, `${path} (ours)`), await asMetadata(repo, path, t, `${path} (theirs)`));
  if (r.conflicts.length || !r.metadata) {
    process.stderr.write(report(path, r.conflicts));
    process.exitCode = 1; // git's conflict state; %A stays ours
    return;
  }
  await writeFile(oursPath, serializeMetadata(r.metadata));
  process.stderr.write(summaryLine(path, r));
}

export function registerMerge(program: Command): void {
  program
    .command('merge-driver', { hidden: true })
    .description('(run by git) merge driver for theta-tracked checkpoints: %O %A %B %P')
    .argument('<base>')
    .argument('<ours>')
    .argument('<theirs>')
    .argument('[path]')
    .action(mergeDriverCommand);

  program
    .command('merge')
    .description(`git merge, with a merge strategy for tensors changed on both sides. Strategies: ${STRATEGY_HELP()}`)
    .argument('<git-merge-args...>', 'what git merge takes (branch, --no-ff, -m ...)')
    .option('-s, --strategy <spec>', 'e.g. average:alpha=0.5, ties:density=0.2,lambda=1, dare:density=0.5,seed=1,combine=ties, slerp:t=0.3')
    .allowUnknownOption(true)
    .action(async (args: string[], o: { strategy?: string }) => {
      if (o.strategy) {
        const { parseStrategySpec } = await import('../../../merges/index.ts');
        parseStrategySpec(o.strategy); // fail before git starts
      }
      const env = { ...process.env, ...(o.strategy ? { [ENV_MERGE_STRATEGY]: o.strategy } : {}) };
      process.exitCode = await new Promise<number>((res) => {
        const child = spawn('git', ['merge', ...args], { stdio: 'inherit', env });
        child.on('close', (code) => res(code ?? 1));
        child.on('error', () => res(1));
      });
    });

  program
    .command('resolve')
    .description('Resolve a conflicted tracked checkpoint during a merge with a strategy, then stage it')
    .argument('<path>', 'the conflicted checkpoint')
    .option('-s, --strategy <spec>', `one of: ${STRATEGY_HELP()}`)
    .action(async (path: string, o: { strategy?: string }) => {
      const repo = await ThetaRepo.open();
      const rel = (await git(['ls-files', '-u', '--full-name', '--', path])).stdout.toString().split('\n')[0]?.split('\t')[1];
      if (!rel) throw new ThetaError('E_NOT_CONFLICTED', `${path} is not conflicted; nothing to resolve`, {});
      const stage = async (n: number) => asMetadata(repo, rel, await readBlob(`:${n}:${rel}`, repo.root), `${rel} (stage ${n})`);
      const r = await runMerge(repo, rel, await stage(1), await stage(2), await stage(3), o.strategy);
      if (r.conflicts.length || !r.metadata) {
        process.stderr.write(report(rel, r.conflicts));
        process.exitCode = 1;
        return;
      }
      const oid = (await git(['hash-object', '-w', '--no-filters', '--stdin'], { cwd: repo.root, input: serializeMetadata(r.metadata) })).stdout.toString().trim();
      await git(['update-index', '--cacheinfo', `100644,${oid},${rel}`], { cwd: repo.root });
      await git(['checkout', '--', rel], { cwd: repo.root });
      process.stderr.write(summaryLine(rel, r));
    });
}
