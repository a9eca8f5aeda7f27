/** Rebuilding a tensor's bytes from its recipe (metadata chain + objects), verified by its hash. */
import { ThetaError } from '../core/errors.ts';
import type { Kernels } from '../core/kernels.ts';
import { getUpdateType } from '../updates/index.ts';
import type { UpdateStore } from '../updates/types.ts';
import type { TensorEntry } from './metadata.ts';
import { withInlineReads } from './inline-objects.ts';

export class TensorRebuildError extends ThetaError {
  constructor(message: string, data: Record<string, unknown>) {
    super('E_REBUILD', message, data);
    this.name = 'TensorRebuildError';
  }
}

export function contentHash(kernels: Kernels, bytes: Uint8Array): string {
  const h = kernels.contentHasher();
  h.update(bytes);
  return h.digest();
}

export async function rebuildTensor(name: string, entry: TensorEntry, store: UpdateStore, kernels: Kernels): Promise<Uint8Array> {
  let bytes: Uint8Array | null = null;
  // objects carried in the metadata are read from their references (checked by SHA-256 there)
  const ctx = { name, dtype: entry.dtype, shape: entry.shape, store: withInlineReads(store, entry.chain), kernels };
  for (const step of entry.chain) {
    const type = getUpdateType(step.update);
    if (type.incremental && !bytes) {
      throw new TensorRebuildError(`tensor '${name}': its update chain starts with '${step.update}', which needs a previous version`, { tensor: name });
    }
    try {
      bytes = await type.apply(step, bytes, ctx);
    } catch (e) {
      if (e instanceof ThetaError && e.message.includes(name)) throw e;
      if (e instanceof ThetaError) throw new ThetaError(e.code, `tensor '${name}': ${e.message}`, { ...e.data, tensor: name });
      throw e;
    }
  }
  if (!bytes || bytes.length !== entry.bytes) {
    throw new TensorRebuildError(`tensor '${name}': rebuilt ${bytes?.length ?? 0} bytes, expected ${entry.bytes}`, { tensor: name });
  }
  // a single dense object was already verified by its SHA-256 when the store read it (or its inline bytes were)
  if (entry.chain.length === 1 && entry.chain[0].update === 'dense') return bytes;
  const h = contentHash(kernels, bytes);
  if (h !== entry.hash) {
    throw new TensorRebuildError(
      `tensor '${name}': rebuilt bytes do not match the recorded hash (${h} != ${entry.hash}); an object is corrupt — run 'git theta fsck' or re-fetch objects`,
      { tensor: name },
    );
  }
  return bytes;
}
