/**
 * loadModel: a whole model at a revision in memory (the reference's load_from_git). What it
 * returns can be given straight back to saveModel.
 */
import type { TensorToWrite } from '../formats/types.ts';
import { referencedObjects } from '../theta/metadata.ts';
import { prefetch, repoContext, required, type RepoOptions } from './context.ts';
import { NotAModelError } from './errors.ts';
import { requireBlob } from './model-blob.ts';
import { modelTensors } from './read-model.ts';

export interface LoadModelOptions extends RepoOptions {
  filepath: string;
  /** Revision (default 'HEAD'). */
  ref?: string;
}

export interface LoadedModel {
  kind: 'theta' | 'lfs';
  /** Checkpoint format of the file ('safetensors', ...). */
  format: string;
  /** Every tensor with its bytes. */
  tensors: TensorToWrite[];
}

export async function loadModel(o: LoadModelOptions): Promise<LoadedModel> {
  required('loadModel', o as unknown as Record<string, unknown>, ['fs', 'dir', 'filepath']);
  const c = await repoContext('loadModel', o);
  const ref = o.ref ?? 'HEAD';
  const m = await requireBlob(c, ref, o.filepath);
  if (!m) throw new NotAModelError(o.filepath, ref);
  await prefetch(c, m.kind === 'theta' ? referencedObjects(m.metadata) : [m.pointer]);
  const tensors: TensorToWrite[] = [];
  let format = 'unknown';
  for await (const t of modelTensors(c, m, o.filepath, (id) => (format = id))) {
    tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await t.bytes() });
  }
  return { kind: m.kind, format, tensors };
}
