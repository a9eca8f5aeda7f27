import type { Command } from 'commander';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { ArgumentError } from '../../core/errors.ts';
import { listUpdateTypes } from '../../updates/index.ts';
import { git } from '../git.ts';
import { getFormat } from '../../formats/registry.ts';

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
  const r = await git(['add', '--', ...paths], { cwd: o.cwd, env, allowFail: true, inheritStderr: true });
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
