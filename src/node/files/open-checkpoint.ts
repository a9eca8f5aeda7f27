/** Opening a checkpoint file (or a sharded index) from disk, detecting its format. */
import { basename, dirname, join, resolve } from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { openOrClose } from '../../core/io.ts';
import { ArgumentError, ThetaError, UnknownFormatError } from '../../core/errors.ts';
import { getFormat, sniffFormat, SNIFF_BYTES } from '../../formats/index.ts';
import { manifestOfShardFile } from './tfjs-locate.ts';
import { openSharded, SHARD_INDEX_SUFFIX } from '../../formats/sharded.ts';
import { openTfjs } from '../../formats/tfjs.ts';
import { manifestsIn } from '../../formats/tfjs-shard.ts';
import { worktreeFiles } from './file-access.ts';
import type { CheckpointFormat, CheckpointReader, FileAccess } from '../../formats/types.ts';
import { fileReader, fileSource } from './fs-source.ts';

export async function detectFileFormat(path: string, format?: string): Promise<CheckpointFormat> {
  if (format) return getFormat(format);
  const src = await fileSource(path);
  try {
    return sniffFormat(await src.read(0, Math.min(SNIFF_BYTES, src.size)), path);
  } finally {
    await src.close?.();
  }
}

/** The TF.js models (their manifests' paths) in a directory, sorted; [] when it holds none. */
export async function tfjsModelsIn(dir: string): Promise<string[]> {
  return (await manifestsIn(worktreeFiles(dir), '')).map((m) => join(dir, m.path));
}

export async function openCheckpointFile(
  path: string, opts: { format?: string; fileName?: string; files?: FileAccess; onNote?: (message: string) => void; shardModel?: boolean } = {},
): Promise<CheckpointReader> {
  const st = await stat(path).catch((e) => {
    throw new ThetaError('E_NOT_FOUND', `${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { file: path });
  });
  if (st.isDirectory()) {
    // a TF.js model directory names its model by its model.json
    const manifests = await manifestsIn(worktreeFiles(path), '');
    if (manifests.length !== 1) {
      throw new ArgumentError(manifests.length
        ? `${path}: is a directory with ${manifests.length} TF.js models (${manifests.map((m) => m.path).join(', ')}); name one of them`
        : `${path}: is a directory with no TF.js model in it; give a checkpoint file`);
    }
    return openCheckpointFile(join(path, manifests[0].path), opts);
  }
  if (!opts.format && path.endsWith(SHARD_INDEX_SUFFIX)) {
    const dir = dirname(resolve(path));
    return openSharded(await readFile(path), (shard) => fileReader(join(dir, shard), shard), { fileName: basename(path) });
  }
  let format: CheckpointFormat;
  try {
    format = await detectFileFormat(path, opts.format);
  } catch (e) {
    // a TF.js weight shard (`.bin`, `-shard1`, ...) is read as the model whose manifest lists it
    // (shardModel false: not so; textconv, which sees one side as a temporary file with no manifest near it)
    if (!(e instanceof UnknownFormatError) || opts.format || opts.shardModel === false) throw e;
    const manifest = await manifestOfShardFile(path);
    if (!manifest) throw e;
    opts.onNote?.(`${path} is a weight shard of the TF.js model ${manifest}; showing that model`);
    return openCheckpointFile(manifest, opts);
  }
  if (format.id === 'tfjs') {
    // model.json names its weight shards, read from the same directory
    const dir = dirname(resolve(path));
    return openOrClose(await fileReader(path), (r) => openTfjs(r, { fileName: path, openShard: (shard: string) => fileReader(join(dir, shard), shard) }));
  }
  // `fileName` and `files` let a format read the files around this one (a TF.js shard's model.json)
  return openOrClose(await fileReader(path), (r) => format.open(r, { fileName: opts.fileName ?? path, files: opts.files }));
}
