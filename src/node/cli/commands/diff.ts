import type { Command } from 'commander';
import pc from 'picocolors';
import { revisionsAndPaths } from '../argv.ts';
import { diffPath, ThetaRepo, type PathDiff } from '../../repo/theta-repo.ts';
import { diffCandidates } from '../../repo/diff-paths.ts';
import { diffModelPath, modelPathsAmong } from '../../repo/lfs-models.ts';
import { diffShardedModel, shardedModelsAmong } from '../../repo/sharded-lfs.ts';
import { fmtNum } from './inspect.ts';
import { diffTfjsModels } from '../../repo/tfjs-diff.ts';
import { withoutUnchanged } from '../../../theta/diff.ts';
import { fetchedBy, fetchedSince, tensorSelection, type TensorSelection } from '../../../repo/lfs-partial.ts';

/** A diff with only the selected tensors (for diffs computed whole, e.g. TF.js models), summary recounted. */
function onlySelected(d: PathDiff, select: TensorSelection): PathDiff {
  if (!select) return d;
  const tensors = d.tensors.filter((t) => select(t.name));
  const summary = { added: 0, removed: 0, modified: 0, unchanged: 0 };
  for (const t of tensors) summary[t.status]++;
  return { ...d, tensors, summary };
}

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('Per-tensor differences of tracked checkpoints: added, removed, modified (L2 of the change, relative change, max |Δ|, cosine) or unchanged. No revision: index vs working tree; one: that revision vs working tree; two: between them.')
    .argument('[args...]', '[<rev> [<rev>]] [-- <path>...]: a path is a checkpoint, a TF.js model (its manifest or one of its shards: the whole model) or a directory (its changed checkpoints, each TF.js model on its own)')
    .option('--json', 'print one JSON object: {"files": [{"path", "format", "from", "to", "approx", "tensors": [...], "summary": {...}}]}')
    .option('--approx', 'estimate from the LSH signatures in the metadata alone, reading no tensor object')
    .option('--all', 'also list unchanged tensors')
    .option('--tensor <pattern>', "only tensors whose name matches (exact, or a glob with * and ?; repeat for more); a git-lfs object not stored locally is then read by HTTP Range requests: its header and these tensors' bytes", (v: string, prev: string[] = []) => [...prev, v])
    .action(async (args: string[], o: { json?: boolean; approx?: boolean; all?: boolean; tensor?: string[] }, cmd: Command) => {
      const { revs, paths } = revisionsAndPaths(args);
      if (revs.length > 2) cmd.error('give at most two revisions (and paths after --)');
      const repo = await ThetaRepo.open();
      const tensors = tensorSelection(o.tensor);
      const before = fetchedBy(repo.store);
      // a path may be a checkpoint, a TF.js model (its manifest or a shard) or a directory
      const candidates = await diffCandidates(repo, revs, paths);
      const files = await modelPathsAmong(repo, candidates);
      const spec = revs.length === 0 ? { from: ':', to: null } : revs.length === 1 ? { from: revs[0], to: null } : { from: revs[0], to: revs[1] };
      // TF.js models: their shards (and model.json) diffed together, weight by weight, as one model
      const tfjs = await diffTfjsModels(repo, files, candidates, { ...spec, approx: o.approx });
      const results: PathDiff[] = tfjs.diffs.map((d) => onlySelected(d, tensors));
      // sharded safetensors models git-lfs stores: one diff per model, under its index's path
      const sharded = await shardedModelsAmong(repo, candidates, spec);
      for (const f of files) if (!tfjs.covered.has(f) && !sharded.covered.has(f)) results.push(await diffModelPath(repo, f, { ...spec, approx: o.approx, tensors }));
      for (const m of sharded.models) results.push(await diffShardedModel(repo, m, { ...spec, approx: o.approx, tensors }));
      results.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      if (o.json) {
        // like the table, JSON lists unchanged tensors only with --all (the summary counts them)
        // what came from the LFS server for this diff (only when anything did): whole objects and Range requests
        const f = fetchedSince(repo.store, before);
        const fetched = f && (f.bytes || f.rangeRequests || f.wholeObjects) ? { bytes: f.bytes, range_requests: f.rangeRequests, whole_objects: f.wholeObjects, verified_by_ranges: f.verified } : null;
        process.stdout.write(JSON.stringify({ files: o.all ? results : results.map(withoutUnchanged), ...(fetched ? { fetched } : {}) }) + '\n');
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
