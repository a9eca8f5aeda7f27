import type { Command } from 'commander';
import pc from 'picocolors';
import { revisionsAndPaths } from '../argv.ts';
import { diffPath, ThetaRepo, type PathDiff } from '../../repo/theta-repo.ts';
import { diffCandidates } from '../../repo/diff-paths.ts';
import { diffModelPath, modelPathsAmong } from '../../repo/lfs-models.ts';
import { fmtNum } from './inspect.ts';
import { diffTfjsModels } from '../../repo/tfjs-diff.ts';
import { withoutUnchanged } from '../../../theta/diff.ts';

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('Per-tensor differences of tracked checkpoints: added, removed, modified (L2 of the change, relative change, max |Δ|, cosine) or unchanged. No revision: index vs working tree; one: that revision vs working tree; two: between them.')
    .argument('[args...]', '[<rev> [<rev>]] [-- <path>...]: a path is a checkpoint, a TF.js model (its manifest or one of its shards: the whole model) or a directory (its changed checkpoints, each TF.js model on its own)')
    .option('--json', 'print one JSON object: {"files": [{"path", "format", "from", "to", "approx", "tensors": [...], "summary": {...}}]}')
    .option('--approx', 'estimate from the LSH signatures in the metadata alone, reading no tensor object')
    .option('--all', 'also list unchanged tensors')
    .action(async (args: string[], o: { json?: boolean; approx?: boolean; all?: boolean }, cmd: Command) => {
      const { revs, paths } = revisionsAndPaths(args);
      if (revs.length > 2) cmd.error('give at most two revisions (and paths after --)');
      const repo = await ThetaRepo.open();
      // a path may be a checkpoint, a TF.js model (its manifest or a shard) or a directory
      const candidates = await diffCandidates(repo, revs, paths);
      const files = await modelPathsAmong(repo, candidates);
      const spec = revs.length === 0 ? { from: ':', to: null } : revs.length === 1 ? { from: revs[0], to: null } : { from: revs[0], to: revs[1] };
      // TF.js models: their shards (and model.json) diffed together, weight by weight, as one model
      const tfjs = await diffTfjsModels(repo, files, candidates, { ...spec, approx: o.approx });
      const results: PathDiff[] = [...tfjs.diffs];
      for (const f of files) if (!tfjs.covered.has(f)) results.push(await diffModelPath(repo, f, { ...spec, approx: o.approx }));
      results.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      if (o.json) {
        // like the table, JSON lists unchanged tensors only with --all (the summary counts them)
        process.stdout.write(JSON.stringify({ files: o.all ? results : results.map(withoutUnchanged) }) + '\n');
        return;
      }
      if (!results.length) process.stdout.write('no tracked checkpoint differs\n');
      for (const r of results) process.stdout.write(renderDiff(r, !!o.all, !!process.stdout.isTTY));
    });
}

export function renderDiff(r: PathDiff, all: boolean, color: boolean): string {
  const c = color ? pc : { bold: String, green: String, red: String, yellow: String, dim: String };
  const s = r.summary;
  const short = (x: string) => (/^[0-9a-f]{40,64}$/.test(x) ? x.slice(0, 10) : x);
  let out = c.bold(`${r.path}`) + ` (${r.format}, ${short(r.from)} -> ${short(r.to)}${r.approx ? ', approximate' : ''}): ` +
    `${s.modified} modified, ${s.added} added, ${s.removed} removed, ${s.unchanged} unchanged\n`;
  const rows = r.tensors.filter((t) => all || t.status !== 'unchanged');
  if (rows.length) {
    out += c.dim(`  ${'status'.padEnd(9)} ${'tensor'.padEnd(36)} ${'dtype/shape'.padEnd(22)} ${'update'.padEnd(9)} ${'l2(Δ)'.padStart(10)} ${'‖Δ‖/‖θ‖'.padStart(10)} ${'max|Δ|'.padStart(10)} ${'cosine'.padStart(9)}`) + '\n';
  }
  for (const t of rows) {
    const colour = t.status === 'added' ? c.green : t.status === 'removed' ? c.red : t.status === 'modified' ? c.yellow : c.dim;
    const layout = t.old_dtype ? `${t.old_dtype}[${t.old_shape}] -> ${t.dtype}[${t.shape}]` : `${t.dtype}[${t.shape.join(',')}]`; // quantized: the type as stored, logical shape
    out += `  ${colour(t.status.padEnd(9))} ${t.name.padEnd(36)} ${layout.padEnd(22)} ${(t.update ?? '').padEnd(9)} ` +
      `${fmtNum(t.l2 ?? null).padStart(10)} ${fmtNum(t.relative ?? null).padStart(10)} ${fmtNum(t.maxabs ?? null).padStart(10)} ${t.cosine == null ? '-'.padStart(9) : t.cosine.toFixed(6).padStart(9)}\n`;
  }
  return out;
}
