/**
 * A merged model that is the first model with merged tensor values: the merged tensors, in their
 * stored dtypes and layouts (mergeFiles with `stored: true`), are put into the first model's
 * skeleton by its format's byte-exact `rebuild`. Everything that is not tensor data — GGUF
 * key/values and alignment, TF.js model.json and shard names, safetensors header order and
 * `__metadata__`, PyTorch's pickle, npz member order and compression — is the first model's, so
 * merging a model with itself gives it back byte for byte.
 */
import { ArgumentError } from '../core/errors.ts';
import type { ByteSink } from '../core/io.ts';
import type { CheckpointFormat, CheckpointReader, TensorToWrite } from '../formats/types.ts';
import { mergeFiles, type MergeFilesOptions } from './merge-files.ts';

/** A reader's skeleton: its tensors are passed over (bytes skipped, not read). */
export async function skeletonOf(reader: CheckpointReader): Promise<Uint8Array> {
  for await (const _ of reader.tensors()) { /* skip */ }
  return reader.skeleton();
}

type SinkFactory = (path: string) => Promise<ByteSink>;

interface MultiFileRebuild extends CheckpointFormat {
  rebuildFiles(skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sinkFor: SinkFactory): Promise<void>;
}

export interface MergeIntoFirstOptions extends Omit<MergeFilesOptions, 'stored'> {
  /** The first model's format and skeleton (`skeletonOf` a second reader of the same file). */
  format: CheckpointFormat;
  skeleton: Uint8Array;
  /** One sink, or for a multi-file format (TF.js) a sink per file path the skeleton names. */
  sink: ByteSink | SinkFactory;
}

/** Merge the models into the first one's skeleton and write the result to `sink`. */
export async function mergeIntoFirst(o: MergeIntoFirstOptions): Promise<void> {
  const it = mergeFiles({ ...o, stored: true })[Symbol.asyncIterator]();
  const held = new Map<string, TensorToWrite>();
  let ended = false;
  const take = async (name: string): Promise<TensorToWrite> => {
    const h = held.get(name);
    if (h) {
      held.delete(name);
      return h;
    }
    while (!ended) {
      const r = await it.next();
      if (r.done) { ended = true; break; }
      if (r.value.name === name) return r.value;
      held.set(r.value.name, r.value);
    }
    throw new ArgumentError(`the first model's skeleton asks for tensor '${name}', which the merge did not produce`, { tensor: name });
  };
  const tensor = (name: string) => (async function* () { yield (await take(name)).data; })();
  const multi = o.format as Partial<MultiFileRebuild>;
  if (typeof o.sink === 'function') {
    if (typeof multi.rebuildFiles !== 'function') throw new ArgumentError(`format '${o.format.id}' writes one file; pass a ByteSink`);
    await multi.rebuildFiles(o.skeleton, tensor, o.sink);
  } else {
    await o.format.rebuild(o.skeleton, tensor, o.sink);
  }
  // run the merge to its end: tensors the skeleton did not ask for, and the report of dropped ones
  while (!ended) {
    const r = await it.next();
    if (r.done) ended = true;
  }
}
