import type { Command } from 'commander';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileChunks } from '../../files/fs-source.ts';
import { stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { ArgumentError } from '../../../core/errors.ts';
import { listUpdateTypes } from '../../../updates/index.ts';
import { git } from '../../git/git.ts';
import { recordStat } from '../../git/git-index.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { getFormat } from '../../../formats/index.ts';
import { workProgress } from '../progress.ts';

/** Environment through which `git theta add` tells the filter process what to do. */
export const ENV_UPDATE_TYPE = 'THETA_UPDATE_TYPE';
export const ENV_UPDATE_DATA = 'THETA_UPDATE_DATA';
export const ENV_FORMAT = 'THETA_FORMAT';

export async function add(paths: string[], o: { updateType?: string; updateData?: string; format?: string; cwd?: string }): Promise<number> {
  const known = ['auto', ...listUpdateTypes().map((t) => t.name)];
  if (o.updateType && !known.includes(o.updateType)) {
    throw new ArgumentError(`unknown update type '${o.updateType}'; choose one of ${known.join(', ')}`);
  }
  const env = { ...process.env };
  if (o.format) {
    getFormat(o.format); // unknown ids fail here, before git runs
    env[ENV_FORMAT] = o.format;
  }
  if (o.updateType) env[ENV_UPDATE_TYPE] = o.updateType;
  if (o.updateData) {
    const p = resolve(o.cwd ?? process.cwd(), o.updateData);
    if (!existsSync(p)) throw new ArgumentError(`--update-data ${o.updateData}: no such file`);
    env[ENV_UPDATE_DATA] = p;
  }
  // Tracked checkpoints named one by one take the direct path: cleaned straight from the file, the
  // metadata blob written and staged, and the file's stat recorded, so the checkpoint is read once
  // instead of being copied into git's memory and through the filter pipe. Everything else
  // (directories, pathspecs, untracked files) goes through `git add` and the filter as usual.
  const cwd = o.cwd ?? process.cwd();
  const repo = await ThetaRepo.open(cwd);
  const candidates: { arg: string; rel: string; abs: string; mode: string }[] = [];
  const rest: string[] = [];
  for (const p of paths) {
    const abs = resolve(cwd, p);
    const rel = relative(repo.root, abs).split(sep).join('/');
    const st = await stat(abs).catch(() => null);
    if (st?.isFile() && rel && !rel.startsWith('..') && !isAbsolute(rel)) candidates.push({ arg: p, rel, abs, mode: st.mode & 0o111 ? '100755' : '100644' });
    else rest.push(p);
  }
  const tracked = new Set(await repo.trackedAmong(candidates.map((c) => c.rel)));
  const direct = candidates.filter((c) => tracked.has(c.rel));
  rest.push(...candidates.filter((c) => !tracked.has(c.rel)).map((c) => c.arg));
  const progress = workProgress('git-theta: add', { items: direct.length });
  const counted = async function* (chunks: AsyncIterable<Uint8Array>) {
    for await (const b of chunks) { progress.bytes(b.length); yield b; }
  };
  for (const c of direct) {
    const meta = await repo.clean(c.rel, counted(fileChunks(c.abs)), {
      updateType: o.updateType, updateData: env[ENV_UPDATE_DATA], format: o.format,
    });
    const blob = (await git(['hash-object', '-w', '--no-filters', '--stdin'], { cwd: repo.root, input: meta })).stdout.toString().trim();
    await git(['update-index', '--add', '--cacheinfo', `${c.mode},${blob},${c.rel}`], { cwd: repo.root });
    progress.item();
  }
  progress.done();
  if (direct.length) await recordStat(await repo.gitDir(), repo.root, direct.map((c) => c.rel));
  if (!rest.length) return 0;
  const r = await git(['add', '--', ...rest], { cwd, env, allowFail: true, inheritStderr: true });
  return r.code;
}

export function registerAdd(program: Command): void {
  program
    .command('add')
    .description('git add checkpoints, choosing how changed tensors are stored')
    .argument('<path...>', 'files to add')
    .option('--update-type <type>', 'auto (smallest exact: dense or sparse), dense, sparse, low-rank, ia3, or a plug-in type', 'auto')
    .option('--update-data <checkpoint>', 'side data for low-rank (<tensor>/R, <tensor>/C) or ia3 (<tensor>/ia3) updates')
    .option('--format <id>', 'read the files as this format instead of detecting it (also: the theta-format=<id> attribute)')
    .action(async (paths: string[], o: { updateType: string; updateData?: string; format?: string }) => {
      process.exitCode = await add(paths, o);
    });
}
