/**
 * checkoutModel: the exact bytes of a model's checkpoint at a revision, written to a ByteSink
 * (a file, a download, memory). Git-theta models are rebuilt tensor by tensor around their
 * skeleton (what the smudge filter does); a git-lfs pointer's object is copied as it streams.
 */
import { ThetaError } from '../core/errors.ts';
import type { ByteSink } from '../core/io.ts';
import { getFormat, sniffFormat, SNIFF_BYTES } from '../formats/index.ts';
import { smudgeCheckpoint } from '../theta/smudge.ts';
import { referencedObjects } from '../theta/metadata.ts';
import { prefetch, repoContext, required, type RepoOptions } from './context.ts';
import { NotAModelError } from './errors.ts';
import { requireBlob } from './model-blob.ts';
import '../updates/index.ts';

export interface CheckoutModelOptions extends RepoOptions {
  filepath: string;
  /** Revision (default 'HEAD'). */
  ref?: string;
  /** Where the bytes go. It is not closed (the caller owns it). */
  sink: ByteSink;
}

export interface CheckoutResult {
  kind: 'theta' | 'lfs';
  format: string;
  /** Bytes written to the sink. */
  size: number;
}

/** Write the checkpoint `filepath` had at `ref` into `sink`, byte for byte as it was added. */
export async function checkoutModel(o: CheckoutModelOptions): Promise<CheckoutResult> {
  required('checkoutModel', o as unknown as Record<string, unknown>, ['fs', 'dir', 'filepath', 'sink']);
  const c = await repoContext('checkoutModel', o);
  const ref = o.ref ?? 'HEAD';
  const m = await requireBlob(c, ref, o.filepath, { skeleton: true });
  if (!m) throw new NotAModelError(o.filepath, ref);
  await prefetch(c, m.kind === 'theta' ? referencedObjects(m.metadata) : [m.pointer]);
  let size = 0;
  const counting: ByteSink = {
    async write(b) { size += b.length; await o.sink.write(b); },
    async close() {},
  };
  if (m.kind === 'theta') {
    await smudgeCheckpoint({ metadata: m.metadata, format: getFormat(m.metadata.format), store: c.store, kernels: c.kernels, sink: counting });
    if (size !== m.metadata.size) {
      throw new ThetaError('E_REBUILD', `${o.filepath}: rebuilt ${size} bytes but the metadata records ${m.metadata.size}`, { filepath: o.filepath, ref });
    }
    return { kind: 'theta', format: m.metadata.format, size };
  }
  let format = 'unknown';
  let head = new Uint8Array(0);
  for await (const chunk of c.store.getChunks(m.pointer.oid)) {
    if (head.length < SNIFF_BYTES) {
      const next = new Uint8Array(Math.min(SNIFF_BYTES, head.length + chunk.length));
      next.set(head);
      next.set(chunk.subarray(0, next.length - head.length), head.length);
      head = next;
    }
    await counting.write(chunk);
  }
  try {
    format = sniffFormat(head, o.filepath).id;
  } catch {
    /* a git-lfs file in a format we do not read: the bytes are still right */
  }
  return { kind: 'lfs', format, size };
}
