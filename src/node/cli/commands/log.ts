import type { Command } from 'commander';
import { git } from '../../git/git.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { storedObjects, type ModelMetadata } from '../../../theta/metadata.ts';
import { readTfjsManifest, ShardLayoutError, tfjsModelAt, tfjsShardPaths } from '../../../theta/tfjs-model.ts';
import { revisionFiles, worktreeFiles } from '../../files/file-access.ts';
import { logModelPath } from '../../repo/lfs-models.ts';
import { logShardedModel } from '../../repo/sharded-lfs.ts';
import { tfjsShardsAmong } from '../../repo/tfjs-shard-paths.ts';
import { logTargets } from '../../repo/log-targets.ts';
import { step, versionStep, type LogEntry } from '../../repo/log-steps.ts';

export { step, versionStep, type LogEntry } from '../../repo/log-steps.ts';

export async function logPath(repo: ThetaRepo, path: string, rev = 'HEAD'): Promise<LogEntry[]> {
  const r = await git(['log', '--format=%H%x09%P%x09%s', rev, '--', path], { cwd: repo.root });
  const out: LogEntry[] = [];
  for (const line of r.stdout.toString().split('\n').filter(Boolean)) {
    const [commit, parents, subject] = line.split('\t');
    const parent = parents.split(' ')[0];
    const m = await repo.metadataAt(`${commit}:${path}`, { batch: true });
    const p = parent ? await repo.metadataAt(`${parent}:${path}`, { batch: true }) : null;
    out.push({ commit, subject, ...versionStep(p, m) });
  }
  return out;
}

/**
 * The log of a TF.js model tracked shard by shard, named by its model.json: per commit that touched
 * the model.json or its shards, the weights changed, added and removed (the model's weights, not
 * the shards' pieces), the bytes of objects the shards needed that the parent's did not, and the
 * shards' total size. null when `path` is not a TF.js model whose shards git-theta tracks.
 */
export async function logTfjsModel(repo: ThetaRepo, path: string, rev = 'HEAD'): Promise<LogEntry[] | null> {
  const now = await readTfjsManifest(revisionFiles(repo.root, rev), path).catch(() => null) ?? (await readTfjsManifest(worktreeFiles(repo.root), path));
  if (!now) return null;
  const shards = tfjsShardPaths(path, now);
  const known = await tfjsShardsAmong(repo, shards, [rev]);
  if (!shards.length || !shards.every((p) => known.has(p))) return null;
  const noLoad = async (): Promise<Uint8Array> => { throw new Error('log reads no tensor'); };
  const at = async (commit: string) => {
    const metas: ModelMetadata[] = [];
    const side = await tfjsModelAt(revisionFiles(repo.root, commit), path, async (p) => {
      const m = await repo.metadataAt(`${commit}:${p}`, { batch: true });
      if (m) metas.push(m);
      return m;
    }, noLoad).catch((e) => {
      if (e instanceof ShardLayoutError) return null;
      throw e;
    });
    return { weights: new Map((side?.tensors ?? []).map((t) => [t.name, t])), metas };
  };
  const r = await git(['log', '--format=%H%x09%P%x09%s', rev, '--', path, ...shards], { cwd: repo.root });
  const out: LogEntry[] = [];
  for (const line of r.stdout.toString().split('\n').filter(Boolean)) {
    const [commit, parents, subject] = line.split('\t');
    const parent = parents.split(' ')[0];
    const a = parent ? await at(parent) : { weights: new Map(), metas: [] };
    const b = await at(commit);
    const objects = (metas: ModelMetadata[]) => metas.flatMap((m) => storedObjects(m));
    out.push({ commit, subject, ...step(a.weights, b.weights, objects(a.metas), objects(b.metas), b.metas.reduce((x, m) => x + m.size, 0)) });
  }
  return out;
}

export function registerLog(program: Command): void {
  program
    .command('log')
    .description('Per commit that touched a tracked checkpoint: tensors changed, bytes stored, update types')
    .argument('<path>', 'tracked checkpoint, a TF.js model whose shards are tracked (its manifest or one of its shards), or a directory (each TF.js model and tracked checkpoint under it)')
    .option('--json', 'print a JSON array (for a directory of several models or checkpoints: {"models": [{"path", "log": [...]}]})')
    .action(async (path: string, o: { json?: boolean }) => {
      const repo = await ThetaRepo.open();
      // a TF.js manifest or one of its shards logs the model; a directory each model under it
      const { models, directory } = await logTargets(repo, path);
      const logs: { path: string; log: (LogEntry & { storage?: string | null })[] }[] = [];
      for (const m of models) logs.push({ path: m, log: (await logTfjsModel(repo, m)) || (await logShardedModel(repo, m)) || (await logModelPath(repo, m)) });
      if (!o.json && logs.every((l) => !l.log.length)) {
        process.stderr.write(`git-theta: no commit touches a tracked checkpoint at ${path}${directory ? ' (a directory: its TF.js models and tracked checkpoints)' : ''}\n`);
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(logs.length === 1 ? logs[0].log : { models: logs }) + '\n');
        return;
      }
      for (const { path: p, log: entries } of logs) {
        if (logs.length > 1) process.stdout.write(`${p}:\n`);
        for (const e of entries) {
          const kinds = Object.entries(e.updates).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
          process.stdout.write(
            `${e.commit.slice(0, 10)} ${e.subject}\n    ${e.changed} changed, ${e.added} added, ${e.removed} removed of ${e.tensors} tensors; ` +
              `stored ${e.bytesStored} bytes (file ${e.fileSize} bytes)${e.storage === 'lfs' ? ' as one git-lfs object' : `; updates: ${kinds}`}\n`,
          );
        }
      }
    });
}
