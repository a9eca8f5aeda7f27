/**
 * Smudge: metadata in, the exact checkpoint bytes out. One tensor is rebuilt at a time and handed
 * to the format's `rebuild`, which interleaves it with the skeleton.
 */
import type { ByteSink } from '../core/io.ts';
import type { Kernels } from '../core/kernels.ts';
import { ThetaError } from '../core/errors.ts';
import type { CheckpointFormat } from '../formats/types.ts';
import type { UpdateStore } from '../updates/types.ts';
import type { ModelMetadata } from './metadata.ts';
import { rebuildTensor } from './rebuild.ts';
import { readSkeleton } from './skeleton.ts';

export interface SmudgeOptions {
  metadata: ModelMetadata;
  format: CheckpointFormat;
  store: UpdateStore;
  kernels: Kernels;
  sink: ByteSink;
  /** Bytes handed to the sink at a time. */
  chunkBytes?: number;
}

export async function smudgeCheckpoint(o: SmudgeOptions): Promise<void> {
  const skeleton = await readSkeleton(o.metadata, o.store, o.kernels);
  const chunk = o.chunkBytes ?? 1 << 20;
  await o.format.rebuild(
    skeleton,
    async function* (name: string) {
      const entry = o.metadata.tensors[name];
      if (!entry) throw new ThetaError('E_METADATA', `the file's layout names tensor '${name}' but the metadata has no entry for it`, { tensor: name });
      const bytes = await rebuildTensor(name, entry, o.store, o.kernels);
      for (let off = 0; off < bytes.length; off += chunk) yield bytes.subarray(off, Math.min(bytes.length, off + chunk));
    },
    o.sink,
  );
}
