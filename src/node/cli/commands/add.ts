import type { Command } from 'commander';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileChunks, fileSource } from '../../files/fs-source.ts';
import { lstat, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { ArgumentError, ThetaError } from '../../../core/errors.ts';
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
  // Tracked checkpoints take the direct path, named one by one or found under a directory: cleaned
  // straight from the file, their metadata blobs written and staged together, and their stat
  // recorded, so each checkpoint is read once instead of being copied into git's memory and through
  // the filter pipe, and the many files of a model directory cost no process each. Everything else
  // (other files, pathspecs, deletions under a directory) goes through `git add` as usual.
  const cwd = o.cwd ?? process.cwd();
  const repo = await ThetaRepo.open(cwd);
  const candidates: { arg: string | null; rel: string; abs: string; mode: string }[] = [];
  const rest: string[] = [];
  // what git add stages under directory arguments besides the checkpoints: other files, deletions
  // (named one by one, so git does not clean the checkpoints through the filter as well)
  const underDirs: string[] = [];
  const inside = (rel: string) => !!rel && !rel.startsWith('..') && !isAbsolute(rel);
  for (const p of paths) {
    const abs = resolve(cwd, p);
    const rel = relative(repo.root, abs).split(sep).join('/');
    const st = await stat(abs).catch(() => null);
    if (st?.isFile() && inside(rel)) candidates.push({ arg: p, rel, abs, mode: modeOf(st.mode) });
    else if (st?.isDirectory() && (inside(rel) || rel === '')) {
      const found = await filesUnder(repo.root, rel);
      candidates.push(...found.files);
      underDirs.push(...found.gone);
    } else rest.push(p);
  }
  const tracked = new Set(await repo.trackedAmong(candidates.map((c) => c.rel)));
  const direct = candidates.filter((c) => tracked.has(c.rel));
  for (const c of candidates) if (!tracked.has(c.rel)) (c.arg === null ? underDirs : rest).push(c.arg ?? c.rel);
  // git's own adds first: every index write by git re-checks entries that look racily clean (written
  // in the same second as the index), and would clean the checkpoints staged below again
  if (underDirs.length) {
    const r = await git(['add', '--pathspec-from-file=-', '--pathspec-file-nul'], {
      cwd: repo.root, env: { ...env, GIT_LITERAL_PATHSPECS: '1' }, input: underDirs.join('\0'), allowFail: true, inheritStderr: true,
    });
    if (r.code) return r.code;
  }
  if (rest.length) {
    const r = await git(['add', '--', ...rest], { cwd, env, allowFail: true, inheritStderr: true });
    if (r.code) return r.code;
  }
  const progress = workProgress('git-theta: add', { items: direct.length });
  const counted = async function* (chunks: AsyncIterable<Uint8Array>) {
    for await (const b of chunks) { progress.bytes(b.length); yield b; }
  };
  const staged = await stageBlobs(await repo.gitDir(), repo.root, async function* () {
    for (const c of direct) {
      const chunks = fileChunks(c.abs);
      let meta: Uint8Array;
      try {
        // the model's object writes go on while the next model is read: all of them are waited
        // for below, before git sees any metadata
        meta = await repo.clean(c.rel, counted(chunks), {
          updateType: o.updateType, updateData: env[ENV_UPDATE_DATA], format: o.format, again: fileAgain(c.abs), leaveWritesPending: true,
        });
      } finally {
        await chunks.return(undefined); // a clean that failed part-way leaves the file open otherwise
      }
      progress.item();
      yield { mode: c.mode, path: c.rel, content: meta };
    }
    await repo.flushWrites();
  }());
  progress.done();
  if (staged.length) await recordStat(await repo.gitDir(), repo.root, staged);
  return 0;
}

/** A file's bytes read again, whole or at an offset (a clean reads changed tensors again from it). */
function fileAgain(path: string) {
  return {
    chunks: () => fileChunks(path),
    async read(offset: number, length: number) {
      const src = await fileSource(path);
      try {
        return await src.read(offset, length);
      } finally {
        await src.close();
      }
    },
  };
}

const modeOf = (mode: number) => (mode & 0o111 ? '100755' : '100644');

/**
 * What `git add dir` would stage under `dir` (repository-relative): the files it would clean
 * (untracked ones not ignored, tracked ones whose stat data no longer matches the index; an
 * unchanged checkpoint is not read again) and the tracked paths that are gone.
 */
async function filesUnder(root: string, dir: string): Promise<{ files: { arg: null; rel: string; abs: string; mode: string }[]; gone: string[] }> {
  const o = { cwd: root, env: { ...process.env, GIT_LITERAL_PATHSPECS: '1' } };
  const [untracked, changed] = await Promise.all([
    git(['ls-files', '-z', '--others', '--exclude-standard', '--', dir || '.'], o),
    git(['diff-files', '-z', '--name-only', '--', dir || '.'], o),
  ]);
  const files: { arg: null; rel: string; abs: string; mode: string }[] = [];
  const gone: string[] = [];
  const names = [untracked, changed].flatMap((r) => r.stdout.toString().split('\0').filter(Boolean));
  for (const rel of new Set(names)) {
    const abs = join(root, rel);
    const st = await lstat(abs).catch(() => null);
    if (st?.isFile()) files.push({ arg: null, rel, abs, mode: modeOf(st.mode) });
    else gone.push(rel); // deleted, or a symlink or a type change: git add stages it as it is
  }
  return { files, gone };
}

/**
 * Write each blob into git's object database and stage it: one `git hash-object` and one
 * `git update-index` for all of them (two processes per file would cost more than a small
 * checkpoint's clean). The contents wait in temporary files under the git directory meanwhile.
 * Returns the staged paths.
 */
async function stageBlobs(gitDirPath: string, root: string, items: AsyncIterable<{ mode: string; path: string; content: Uint8Array }>): Promise<string[]> {
  const tmp = await mkdtemp(join(gitDirPath, 'theta-add-'));
  try {
    const staged: { mode: string; path: string; file: string }[] = [];
    for await (const it of items) {
      const file = join(tmp, String(staged.length));
      await writeFile(file, it.content);
      staged.push({ mode: it.mode, path: it.path, file });
    }
    if (!staged.length) return [];
    const ids = (await git(['hash-object', '-w', '--no-filters', '--stdin-paths'], { cwd: root, input: staged.map((s) => s.file).join('\n') + '\n' })).stdout.toString().trim().split('\n');
    if (ids.length !== staged.length) throw new ThetaError('E_GIT', `git hash-object gave ${ids.length} ids for ${staged.length} files`, {});
    await git(['update-index', '-z', '--add', '--index-info'], { cwd: root, input: staged.map((s, i) => `${s.mode} ${ids[i]}\t${s.path}\0`).join('') });
    return staged.map((s) => s.path);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
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
