/**
 * readModel: the tensors of a model at a revision, one at a time. For git-theta metadata each
 * tensor's bytes are rebuilt from its recipe and objects only when asked for (and verified by the
 * content hash recorded in the metadata); for a git-lfs pointer the checkpoint object is read as a
 * stream and parsed by its format.
 */
import type { DType } from '../core/dtypes.ts';
import { peekChunks, readerFromChunks } from '../core/io.ts';
import { sniffFormat, SNIFF_BYTES } from '../formats/index.ts';
import type { CheckpointReader } from '../formats/types.ts';
import { isShardIndexName } from '../formats/sharded.ts';
import { byCodePoint } from '../theta/metadata.ts';
import { rebuildTensor } from '../theta/rebuild.ts';
import { repoContext, required, type RepoContext, type RepoOptions } from './context.ts';
import { NotAModelError } from './errors.ts';
import { openLfsObject } from './lfs-pointer-model.ts';
import { readBlobAt, requireBlob, type ModelBlob } from './model-blob.ts';
import { openShardedBlobs } from './lfs-pointer-model.ts';
import { resolveRevision } from './revision.ts';
import '../updates/index.ts';

export interface ReadModelOptions extends RepoOptions {
  filepath: string;
  /** Revision (default 'HEAD'). */
  ref?: string;
}

export interface ModelTensor {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
  /** How this version was stored (git-theta models only): 'dense', 'sparse', 'low-rank', ... */
  update?: string;
  /** A quantized tensor read from a file (GGUF, TF.js): what its bytes stand for. */
  quantization?: import('../formats/convert.ts').TensorQuantization;
  /** The tensor's bytes (rebuilt and verified). Call before moving to the next tensor. */
  bytes(): Promise<Uint8Array>;
}

/** Tensors of a model already located (shared by readModel, loadModel and diffModel). */
export async function* modelTensors(c: RepoContext, m: ModelBlob, filepath: string, onFormat?: (id: string) => void): AsyncGenerator<ModelTensor> {
  if (m.kind === 'theta') {
    onFormat?.(m.metadata.format);
    const meta = m.metadata;
    for (const name of Object.keys(meta.tensors).sort(byCodePoint)) {
      const e = meta.tensors[name];
      yield {
        name, dtype: e.dtype, shape: e.shape, byteLength: e.bytes, update: e.update,
        bytes: () => rebuildTensor(name, e, c.store, c.kernels),
      };
    }
    return;
  }
  yield* readerTensors(await openLfsObject(c.store, m.pointer, filepath), onFormat);
}

/** A git-lfs checkpoint's tensors (one object, or the shards of a sharded index), closing the reader at the end. */
async function* readerTensors(reader: CheckpointReader, onFormat?: (id: string) => void): AsyncGenerator<ModelTensor> {
  onFormat?.(reader.format);
  try {
    for await (const t of reader.tensors()) {
      const quantization = (t as import('../formats/convert.ts').MaybeQuantized).quantization;
      yield { name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength, ...(quantization ? { quantization } : {}), bytes: () => t.bytes() };
    }
  } finally {
    await reader.close();
  }
}

/**
 * The tensors of `filepath` at `ref`, streamed: an async iterable of {name, dtype, shape,
 * byteLength, update?, bytes()}. Git-theta models come in name order, git-lfs checkpoints in
 * file order. Required options are checked at once; repository errors (RevisionNotFoundError,
 * PathNotFoundError, NotAModelError) and missing objects (E_OBJECT_MISSING, naming the tensor and
 * object) surface while iterating.
 */
export function readModel(o: ReadModelOptions): AsyncIterable<ModelTensor> {
  required('readModel', o as unknown as Record<string, unknown>, ['fs', 'dir', 'filepath']);
  const ref = o.ref ?? 'HEAD';
  return (async function* () {
    const c = await repoContext('readModel', o);
    const m = await requireBlob(c, ref, o.filepath);
    if (!m && isShardIndexName(o.filepath)) {
      // a sharded safetensors model (the Hugging Face layout): its shards at the same revision
      const commit = await resolveRevision(c, ref);
      const index = (await readBlobAt(c, commit, o.filepath))!.blob;
      yield* readerTensors(await openShardedBlobs(c.store, index, o.filepath, async (p) => (await readBlobAt(c, commit, p))?.blob ?? null));
      return;
    }
    if (!m) throw new NotAModelError(o.filepath, ref);
    yield* modelTensors(c, m, o.filepath);
  })();
}
