/**
 * diffModel: per-tensor differences of one model between two revisions, in the shape
 * `git theta diff --json` prints for a file: {path, format, from, to, approx, tensors, summary}.
 * The numbers come from the same code as the CLI (tensors rebuilt from objects, compared in the
 * kernels), so they are identical; with `approx` they come from the LSH signatures alone.
 * A git-lfs pointer side is read from its object and hashed tensor by tensor, so a plain git-lfs
 * checkpoint can be compared too (with git-theta metadata or with another git-lfs version).
 */
import { ThetaError } from '../core/errors.ts';
import { DEFAULT_LSH_SIZE, hashOf, lshOf } from '../theta/clean.ts';
import { diffModels, metadataTensors, withoutUnchanged, type DiffTensor, type ModelDiff } from '../theta/diff.ts';
import { rebuildTensor } from '../theta/rebuild.ts';
import { diffQuant } from '../theta/quantized.ts';
import { entryObjects, type ObjectRef, type TensorEntry } from '../theta/metadata.ts';
import { prefetch, repoContext, required, type RepoContext, type RepoOptions } from './context.ts';
import { NotAModelError, PathNotFoundError } from './errors.ts';
import { readBlobAt, classifyModelBlob, type ModelBlob } from './model-blob.ts';
import { modelTensors } from './read-model.ts';
import { lfsRereader, openLfsObjectTracked, readerDiffTensors, type Rereader } from './lfs-pointer-model.ts';
import { resolveRevision } from './revision.ts';
import { openLfsPartial, selectTensors, tensorSelection, type TensorSelection } from './lfs-partial.ts';
import type { CheckpointReader } from '../formats/types.ts';

export interface DiffModelOptions extends RepoOptions {
  filepath: string;
  /** The older revision. */
  from: string;
  /** The newer revision. */
  to: string;
  /** Estimate from the LSH signatures in the metadata, reading no tensor object (git-theta models). */
  approx?: boolean;
  /** Also list unchanged tensors (default false, as `git theta diff --json` without `--all`). */
  all?: boolean;
  /**
   * Only tensors whose name matches one of these (exact, or a glob with `*` and `?`), as
   * `git theta diff --tensor`. A git-lfs object not in the local store is then read by HTTP Range
   * requests (its header and these tensors' bytes; what was downloaded: the store's `fetched`).
   */
  tensors?: string[];
}

/** One file of `git theta diff --json`. Keys in the CLI's order. */
export interface FileDiff extends ModelDiff {
  path: string;
  format: string;
  from: string;
  to: string;
}

type Side = { model: ModelBlob | null; present: boolean };

async function sideAt(c: RepoContext, ref: string, commit: string, filepath: string): Promise<Side> {
  const b = await readBlobAt(c, commit, filepath);
  if (!b) return { model: null, present: false };
  const model = await classifyModelBlob(c, filepath, b.blob, b.oid, `${ref}:${filepath}`);
  if (!model) throw new NotAModelError(filepath, ref);
  return { model, present: true };
}

/** The selected tensors of a checkpoint read in part, as modelTensors gives them. */
async function* partialTensors(reader: CheckpointReader, onFormat: (id: string) => void): AsyncGenerator<ModelTensorLike> {
  onFormat(reader.format);
  try {
    for await (const t of reader.tensors()) yield t as ModelTensorLike;
  } finally {
    await reader.close();
  }
}

type ModelTensorLike = Parameters<typeof diffQuant>[0] & { name: string; dtype: string; shape: number[]; bytes(): Promise<Uint8Array> };

/** A git-lfs checkpoint's tensors as the diff wants them, read one at a time (only the selected ones, read in part, with a selection). */
async function* lfsDiffTensors(c: RepoContext, m: ModelBlob, filepath: string, approx: boolean, onFormat: (id: string) => void, select: TensorSelection = null): AsyncGenerator<DiffTensor> {
  const source = select && m.kind === 'lfs'
    ? partialTensors(selectTensors(await openLfsPartial(c.store, m.pointer, filepath), select), onFormat)
    : modelTensors(c, m, filepath, onFormat);
  for await (const t of source) {
    const bytes = await t.bytes();
    yield {
      name: t.name, dtype: t.dtype, shape: t.shape,
      hash: hashOf(c.kernels, bytes),
      ...diffQuant(t, bytes, approx ? (d, b) => lshOf(c.kernels, d, b, DEFAULT_LSH_SIZE) : null),
      load: async () => bytes,
    };
  }
}


/**
 * The objects an exact diff will read: the recipes of tensors whose content differs on the two
 * sides with the same layout, and the whole object of a git-lfs side. Nothing for an approx diff
 * of two git-theta sides.
 */
export function objectsForDiff(a: ModelBlob | null, b: ModelBlob | null, approx: boolean): ObjectRef[] {
  const out: ObjectRef[] = [];
  for (const m of [a, b]) if (m?.kind === 'lfs') out.push(m.pointer);
  if (approx || a?.kind !== 'theta' || b?.kind !== 'theta') {
    // with a git-lfs side the theta side's changed tensors are unknown until the file is read
    if (!approx) for (const m of [a, b]) if (m?.kind === 'theta') for (const e of Object.values(m.metadata.tensors)) out.push(...entryObjects(e));
    return out;
  }
  for (const [name, eb] of Object.entries(b.metadata.tensors)) {
    const ea = a.metadata.tensors[name];
    if (!ea || ea.hash === eb.hash || ea.dtype !== eb.dtype || ea.shape.join() !== eb.shape.join()) continue;
    out.push(...entryObjects(ea), ...entryObjects(eb));
  }
  return out;
}

/** Diff of one path between two already-resolved commits (shared with diffRevisions). */
export async function diffPathAt(
  c: RepoContext, filepath: string, from: { ref: string; commit: string }, to: { ref: string; commit: string }, approx: boolean,
  select: TensorSelection = null,
): Promise<FileDiff> {
  const a = narrowed(await sideAt(c, from.ref, from.commit, filepath), select);
  const b = narrowed(await sideAt(c, to.ref, to.commit, filepath), select);
  if (!a.present && !b.present) throw new PathNotFoundError(filepath, `${from.ref}' or '${to.ref}`);
  // with a selection a git-lfs side is read in part (by ranges), not downloaded whole first
  const lfsOids = new Set([a.model, b.model].flatMap((m) => (m?.kind === 'lfs' ? [m.pointer.oid] : [])));
  await prefetch(c, objectsForDiff(a.model, b.model, approx).filter((r) => !select || !lfsOids.has(r.oid)));
  const load = (name: string, e: TensorEntry) => rebuildTensor(name, e, c.store, c.kernels);
  let format = 'unknown';
  let older: DiffTensor[] = [];
  let again: Rereader | undefined;
  if (a.model?.kind === 'theta') {
    format = a.model.metadata.format;
    older = metadataTensors(a.model.metadata, load);
  } else if (a.model && select) {
    // the selected tensors' bytes are kept (no second read of a ranged object)
    for await (const t of lfsDiffTensors(c, a.model, filepath, approx, (id) => (format = id), select)) older.push(t);
  } else if (a.model) {
    // kept as hashes: the bytes of modified tensors are read again when compared
    const pointer = a.model.pointer;
    again = lfsRereader(c.store, c.kernels, pointer, filepath, `${from.ref}:${filepath}`);
    const { reader, bytes } = await openLfsObjectTracked(c.store, pointer, filepath);
    format = reader.format;
    for await (const t of readerDiffTensors(c.kernels, reader, approx, again, bytes)) older.push(t);
  }
  let newer: AsyncIterable<DiffTensor> | Iterable<DiffTensor> = [];
  if (b.model?.kind === 'theta') {
    format = b.model.metadata.format;
    newer = metadataTensors(b.model.metadata, load);
  } else if (b.model) {
    newer = lfsDiffTensors(c, b.model, filepath, approx, (id) => (format = id), select);
  }
  try {
    const d = await diffModels(older, newer, { kernels: c.kernels, approx });
    return { path: filepath, format, from: from.ref, to: to.ref, ...d };
  } finally {
    await again?.close();
  }
}

/**
 * Per-tensor differences of `filepath` from revision `from` to revision `to` (a path absent on one
 * side counts as all tensors added or removed). Errors: MissingParameterError,
 * RevisionNotFoundError, PathNotFoundError (absent on both sides), NotAModelError, and
 * E_OBJECT_MISSING / E_OBJECT_CORRUPT naming the tensor and object when an object is needed and
 * not available.
 */
export async function diffModel(o: DiffModelOptions): Promise<FileDiff> {
  required('diffModel', o as unknown as Record<string, unknown>, ['fs', 'dir', 'filepath', 'from', 'to']);
  const c = await repoContext('diffModel', o);
  const from = { ref: o.from, commit: await resolveRevision(c, o.from) };
  const to = { ref: o.to, commit: await resolveRevision(c, o.to) };
  try {
    const d = await diffPathAt(c, o.filepath, from, to, !!o.approx, tensorSelection(o.tensors));
    return o.all ? d : withoutUnchanged(d);
  } catch (e) {
    if (e instanceof ThetaError && !('filepath' in e.data)) (e.data as Record<string, unknown>).filepath = o.filepath;
    throw e;
  }
}

/** A side with only the selected tensors of its git-theta metadata (a git-lfs side is narrowed as it is read). */
function narrowed(side: Side, select: TensorSelection): Side {
  const m = side.model;
  if (!select || m?.kind !== 'theta') return side;
  const tensors = Object.fromEntries(Object.entries(m.metadata.tensors).filter(([n]) => select(n)));
  return { ...side, model: { ...m, metadata: { ...m.metadata, tensors } } };
}
