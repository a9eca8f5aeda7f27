/**
 * Where a command writes a checkpoint it produces (`convert`, `merge-models`): one file written
 * atomically, or, for a multi-file format (TF.js: model.json plus weight shards), every file the
 * format asks for, next to the output path (which names the model.json). Parent directories are
 * created; on failure every file still being written is removed.
 */
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { ByteSink } from '../../core/io.ts';
import type { CheckpointFormat, TensorToWrite } from '../../formats/types.ts';
import { atomicFileSink, type AtomicFileSink } from './fs-source.ts';

export type SinkFactory = (path: string) => Promise<ByteSink>;

interface MultiFileFormat extends CheckpointFormat {
  writeFiles(tensors: AsyncIterable<TensorToWrite> | Iterable<TensorToWrite>, sinkFor: SinkFactory): Promise<void>;
}

export function isMultiFile(format: CheckpointFormat): format is MultiFileFormat {
  return typeof (format as Partial<MultiFileFormat>).writeFiles === 'function';
}

/** Run `write` with the sink (or, for a multi-file format, the sink factory) for `output`. */
export async function writeOutput(output: string, format: CheckpointFormat, write: (sink: ByteSink | SinkFactory) => Promise<void>): Promise<void> {
  const sinks: AtomicFileSink[] = [];
  const open = async (path: string): Promise<AtomicFileSink> => {
    await mkdir(dirname(path), { recursive: true });
    const s = await atomicFileSink(path);
    sinks.push(s);
    return s;
  };
  const dir = dirname(resolve(output));
  const main = basename(output);
  try {
    // a multi-file writer names its entry file model.json; it is written under the name given
    const sink = isMultiFile(format) ? (p: string) => open(p === 'model.json' ? join(dir, main) : join(dir, p)) : await open(output);
    await write(sink);
    // a single file is ours to close; a multi-file writer closes each file it wrote
    if (typeof sink !== 'function') await sink.close();
  } catch (e) {
    for (const s of sinks) await s.abort().catch(() => {});
    throw e;
  }
}

/** Write these tensors as a new checkpoint in `format` at `output`. */
export function writeCheckpointTo(output: string, format: CheckpointFormat, tensors: AsyncIterable<TensorToWrite>): Promise<void> {
  return writeOutput(output, format, (sink) => (typeof sink === 'function' && isMultiFile(format) ? format.writeFiles(tensors, sink) : format.write(tensors, sink as ByteSink)));
}
