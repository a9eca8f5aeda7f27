/**
 * The skeleton of a merged file that keeps one side's layout. Reusing that side's skeleton is
 * right when no byte of it depends on tensor values (safetensors, GGUF, .npy, TF.js shards). Zip
 * checkpoints are different: a PyTorch file's skeleton holds each storage's CRC-32 (in the local
 * header, data descriptor and central directory), an npz's the CRC-32s, and for deflated members
 * the compressed sizes and every offset after them. With merged values those bytes belong to the
 * side, not the merge: the committed metadata would differ from what cleaning the checked-out file
 * gives (`git status` shows the file modified right after the merge), and an npz would be checked
 * out with wrong CRCs or not at all.
 *
 * So when the values differ from the side's, the merged file is written to a temporary file and
 * cleaned like any added file, against the merged entries (no tensor is stored twice):
 * - pytorch: rebuilt from the side's skeleton, whose rebuild recomputes every storage's CRC-32
 *   (the pickle, extra records and layout stay the side's);
 * - npz: written anew by our npz writer (members sorted by name, deflated at the side's level when
 *   the side's members are deflated), since its skeleton cannot be rebuilt with other values.
 * Memory: one tensor at a time, as in smudge.
 */
import { join, basename } from 'node:path';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { openOrClose, type ByteSink } from '../../core/io.ts';
import { getFormat } from '../../formats/index.ts';
import { NPZ_FORMAT_ID, writeNpz } from '../../formats/numpy.ts';
import { npzDeflateLevel } from '../../formats/npz-layout.ts';
import { PYTORCH_FORMAT_ID } from '../../formats/pytorch/common.ts';
import { cleanCheckpoint } from '../../theta/clean.ts';
import { byCodePoint, type ModelMetadata, type TensorEntry } from '../../theta/metadata.ts';
import { rebuildTensor } from '../../theta/rebuild.ts';
import { smudgeCheckpoint } from '../../theta/smudge.ts';
import { atomicFileSink, fileReader } from '../files/fs-source.ts';
import type { Kernels } from '../../core/kernels.ts';
import type { UpdateStore } from '../../updates/types.ts';
import { readSkeleton } from '../../theta/skeleton.ts';

/** What the merge needs of a repository (ThetaRepo has both; taken apart to keep imports one-way). */
export interface MergeRepo {
  store: UpdateStore;
  kernels: Kernels;
}

/** Formats whose skeleton holds bytes computed from tensor values (zip CRC-32s, compressed sizes). */
export const VALUE_DEPENDENT_SKELETONS: ReadonlySet<string> = new Set([PYTORCH_FORMAT_ID, NPZ_FORMAT_ID]);

/** True when some tensor's bytes differ between the two sets of entries (same names assumed). */
function valuesDiffer(side: Record<string, TensorEntry>, merged: Record<string, TensorEntry>): boolean {
  return Object.keys(merged).some((n) => side[n]?.hash !== merged[n].hash);
}

/**
 * Complete metadata for merged entries laid out like `side` (same names, dtypes and shapes):
 * the side's skeleton when it stays right, else the metadata of a freshly written merged file.
 */
export async function mergedLikeSide(repo: MergeRepo, path: string, side: ModelMetadata, tensors: Record<string, TensorEntry>): Promise<ModelMetadata> {
  const reused: ModelMetadata = { format: side.format, skeleton: side.skeleton, ...(side.skeleton_delta ? { skeleton_delta: side.skeleton_delta } : {}), size: side.size, tensors };
  if (!VALUE_DEPENDENT_SKELETONS.has(side.format) || !valuesDiffer(side.tensors, tensors)) return reused;
  const { store, kernels } = repo;
  if (side.format === NPZ_FORMAT_ID) {
    const compress = npzDeflateLevel(await readSkeleton(side, store, kernels));
    return cleanWritten(repo, path, reused, (sink) => writeNpz(rebuiltByName(tensors, store, kernels), sink, { compress }));
  }
  const format = getFormat(side.format);
  return cleanWritten(repo, path, reused, (sink) => smudgeCheckpoint({ metadata: reused, format, store, kernels, sink }));
}

/** The tensors of merged entries, rebuilt one at a time, sorted by name (a layout written anew). */
export async function* rebuiltByName(tensors: Record<string, TensorEntry>, store: MergeRepo['store'], kernels: MergeRepo['kernels']) {
  for (const name of Object.keys(tensors).sort(byCodePoint)) {
    const e = tensors[name];
    yield { name, dtype: e.dtype, shape: e.shape, data: await rebuildTensor(name, e, store, kernels) };
  }
}

/** Write a file to a temporary directory and clean it against `previous`'s entries. */
export async function cleanWritten(repo: MergeRepo, path: string, previous: ModelMetadata, write: (sink: ByteSink) => Promise<void>): Promise<ModelMetadata> {
  const format = getFormat(previous.format);
  const tmp = await mkdtemp(join(tmpdir(), 'git-theta-merge-'));
  const file = join(tmp, basename(path) || 'merged');
  try {
    const sink = await atomicFileSink(file);
    try {
      await write(sink);
      await sink.close();
    } catch (e) {
      await sink.abort();
      throw e;
    }
    const reader = await openOrClose(await fileReader(file), (r) => format.open(r, { fileName: path }));
    try {
      return await cleanCheckpoint({ reader, previous, store: repo.store, kernels: repo.kernels, fileSize: (await stat(file)).size });
    } finally {
      await reader.close();
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
