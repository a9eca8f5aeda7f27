/**
 * "Nothing is committed that cannot be given back": the checks clean makes before it returns
 * metadata. Tensor names must be unique (metadata is keyed by name, so a second tensor of the same
 * name would silently replace the first), and rebuilding the file from the recipe (skeleton +
 * tensors, exactly as checkout will) must give back every byte that came in.
 * Runtime-neutral: the caller hashes the input as it streams past (`InputDigest`).
 */
import { ThetaError, quoteName } from '../core/errors.ts';
import type { ByteSink } from '../core/io.ts';
import type { ContentHasher, Kernels } from '../core/kernels.ts';
import type { CheckpointFormat, CheckpointReader, StreamedTensor } from '../formats/types.ts';
import type { UpdateStore } from '../updates/types.ts';
import { referencedObjects, type ModelMetadata } from './metadata.ts';
import { segmentedRebuild } from './segmented-check.ts';
import { smudgeCheckpoint } from './smudge.ts';

/** Two tensors of one file have the same name: storing both under it would lose one. */
export class DuplicateTensorError extends ThetaError {
  constructor(file: string, name: string, first: number, second: number) {
    super(
      'E_DUPLICATE_TENSOR',
      `${file}: tensors #${first + 1} and #${second + 1} are both named ${quoteName(name)}; the file cannot be stored exactly (rename one, e.g. re-save the checkpoint)`,
      { file, tensor: name, first, second },
    );
    this.name = 'DuplicateTensorError';
  }
}

/** The recipe clean built does not give back the file's bytes (a reader bug or an input it mis-parsed). */
export class NotExactError extends ThetaError {
  constructor(file: string, detail: string) {
    super('E_NOT_EXACT', `${file}: cannot be stored exactly (${detail}); nothing was stored for it; run 'git theta fsck' (a damaged object), and if it finds nothing please report this file`, { file, detail });
    this.name = 'NotExactError';
  }
}

/** The same reader, whose `tensors()` fails with DuplicateTensorError when a name comes back. */
export function withUniqueNames(reader: CheckpointReader, file: string): CheckpointReader {
  return {
    get format() { return reader.format; },
    get metadata() { return reader.metadata; },
    skeleton: () => reader.skeleton(),
    close: () => reader.close(),
    async *tensors(): AsyncGenerator<StreamedTensor> {
      const seen = new Map<string, number>();
      let i = 0;
      for await (const t of reader.tensors()) {
        const before = seen.get(t.name);
        if (before !== undefined) throw new DuplicateTensorError(file, t.name, before, i);
        seen.set(t.name, i++);
        yield t;
      }
    },
  };
}

/**
 * What the recipe check compares with: the input's size, and its whole content hash, or a way to
 * take it later (an input that can be read again, e.g. a file: only the whole-file check needs it,
 * so a clean checked by segments does not hash the input twice).
 */
export interface InputSummary {
  size: number;
  digest: string | (() => Promise<string>);
}

/** Size and content hash of an input, fed as its bytes stream past. */
export interface InputDigest {
  update(bytes: Uint8Array): void;
  readonly size: number;
  digest(): string;
}

export function inputDigest(kernels: Kernels): InputDigest {
  const h: ContentHasher = kernels.contentHasher();
  let size = 0;
  return {
    update(b) { size += b.length; h.update(b); },
    get size() { return size; },
    digest: () => h.digest(),
  };
}

/**
 * Rebuild the file from `metadata` (as checkout does, objects read back from `store`) into a sink
 * that only hashes, and compare with the input's size and hash. Throws NotExactError on any
 * difference, or when the rebuild itself fails.
 */
export async function checkRecipe(o: {
  file: string; metadata: ModelMetadata; format: CheckpointFormat; store: UpdateStore; kernels: Kernels; input: InputSummary;
  /** Compare sizes only (theta.tolerance kept some tensors at older values, so the bytes differ on purpose). */
  sizeOnly?: boolean;
  /**
   * The input's segmented digest and the tensors whose bytes are known by their entries' content
   * hashes (segmented-check.ts: unchanged ones, and those just stored dense): when the rebuild's
   * segmented digest agrees, those tensors' objects are not read back. When it does not, the
   * whole file is rebuilt and compared.
   */
  segments?: { digest: string | null; known: ReadonlySet<string> };
}): Promise<'segments' | 'whole'> {
  const store = unverifiedReads(o.store, new Map(referencedObjects(o.metadata).map((r) => [r.oid, r.size])));
  if (o.format.verbatimTensors && o.segments?.digest && !o.sizeOnly) {
    try {
      const r = await segmentedRebuild({ metadata: o.metadata, format: o.format, store, kernels: o.kernels, known: o.segments.known });
      if (r.size === o.input.size && r.digest === o.segments.digest) return 'segments';
    } catch {
      /* the whole-file check below says why */
    }
  }
  const out = inputDigest(o.kernels);
  const sink: ByteSink = { async write(b: Uint8Array) { out.update(b); }, async close() {} };
  try {
    await smudgeCheckpoint({ metadata: o.metadata, format: o.format, store, kernels: o.kernels, sink });
  } catch (e) {
    if (e instanceof ThetaError) throw new NotExactError(o.file, `rebuilding it fails: ${e.message}`);
    throw e;
  }
  if (out.size !== o.input.size) throw new NotExactError(o.file, `the rebuilt file has ${out.size} bytes, the input ${o.input.size}`);
  if (!o.sizeOnly && out.digest() !== (typeof o.input.digest === 'string' ? o.input.digest : await o.input.digest())) {
    throw new NotExactError(o.file, `the rebuilt file has the same size but different bytes`);
  }
  return 'whole';
}

/**
 * The store with objects read without their SHA-256 (through `readRanges`, when it has it): the
 * check compares the whole rebuilt file's hash with the input's anyway, and the objects were
 * hashed when they were written, so hashing each one again would only double the check's cost.
 */
function unverifiedReads(store: UpdateStore, sizes: Map<string, number>): UpdateStore {
  const ranges = store.readRanges?.bind(store);
  if (!ranges) return store;
  return {
    put: (b) => store.put(b),
    readRanges: ranges,
    async get(oid) {
      const n = sizes.get(oid);
      if (n === undefined) return store.get(oid);
      try {
        const [b] = await ranges(oid, [{ offset: 0, length: n }]);
        if (b && b.length === n) return b;
      } catch {
        /* not local, or unreadable: the verified path says why */
      }
      return store.get(oid);
    },
  };
}
