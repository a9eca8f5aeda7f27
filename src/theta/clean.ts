/**
 * Clean: a checkpoint in, metadata out. Tensors stream past one at a time; a tensor whose bytes
 * did not change reuses its previous entry (no SHA-256, no write); a changed one is stored with
 * the chosen update type, or with `auto` in the smallest exact encoding (dense or sparse).
 * Runtime-neutral: the caller supplies the reader, the previous metadata and the store.
 */
import { dtypeSize, isNumeric } from '../core/dtypes.ts';
import { ThetaError, quoteName } from '../core/errors.ts';
import type { Kernels } from '../core/kernels.ts';
import type { CheckpointReader } from '../formats/types.ts';
import { getUpdateType } from '../updates/index.ts';
import { dense } from '../updates/dense.ts';
import type { SideTensor, UpdateStore } from '../updates/types.ts';
import type { DeferredPuts } from '../store/types.ts';
import type { ModelMetadata, ObjectRef, TensorEntry, UpdateStep } from './metadata.ts';
import { rebuildTensor } from './rebuild.ts';
import { checkRecipe, withUniqueNames, type InputSummary } from './exact.ts';
import { withRecentObjects } from './recent-objects.ts';
import { INLINE_MAX_BYTES, withInlinePuts } from './inline-objects.ts';
import { storeSkeleton } from './skeleton.ts';
import type { SegmentedInput } from './segmented-check.ts';
import type { MaybeQuantized } from '../formats/convert.ts';
import { sameQuant } from '../formats/dequantize.ts';
import { quantInfoOf, valuesForStats } from './quantized.ts';

export interface Tolerance {
  rtol: number;
  atol: number;
}

export interface CleanOptions {
  reader: CheckpointReader;
  previous: ModelMetadata | null;
  store: UpdateStore;
  kernels: Kernels;
  /** 'auto' (default), 'dense', 'sparse', 'low-rank', 'ia3' or a plug-in's type. */
  updateType?: string;
  /** Side-loaded data: tensor name -> (key after `<tensor>/` -> tensor). */
  side?: Map<string, Map<string, SideTensor>>;
  /** Longest recipe before a tensor is stored dense again. */
  chainCap?: number;
  /** Opt-in: changes within tolerance count as unchanged (checkout then returns the older values). */
  tolerance?: Tolerance | null;
  lshSize?: number;
  fileSize: number;
  /**
   * The input's size and content hash (see exact.ts `inputDigest`), asked for once every tensor has
   * been read: when given, the file is rebuilt from the new metadata and compared with it before
   * the metadata is returned, so nothing is committed that checkout cannot give back.
   */
  input?: () => Promise<InputSummary>;
  /**
   * With `input`: the reader `format.open` was given, wrapped by `segmentedInput` (segmented-check.ts),
   * so the recipe check can skip reading back the objects of tensors that did not change.
   */
  segments?: SegmentedInput;
  /**
   * With `segments` and a format that promises `verbatimTensors`: the input's bytes at an offset,
   * read again (a file). Tensors the previous version had are then hashed without being copied,
   * and only the changed ones are read again.
   */
  readAt?(offset: number, length: number): Promise<Uint8Array>;
  /** Told how the recipe check went: by segments (unchanged tensors not read back) or over the whole file. */
  onRecipeCheck?(how: 'segments' | 'whole'): void;
  /** With `input`: false skips the rebuild-and-compare (the trailing-bytes check in `input` still runs). Default true. */
  verify?: boolean;
  /** Format of the reader, needed by the `input` check. */
  format?: import('../formats/types.ts').CheckpointFormat;
  /** Name for error messages. */
  fileName?: string;
  /** Tensor objects of at most this many bytes are carried in the metadata (inline-objects.ts); 0 turns it off. */
  inlineMax?: number;
  onTensor?(name: string, entry: TensorEntry, reused: boolean): void;
  /**
   * With a store that defers its writes (DeferredPuts): return without waiting for this clean's
   * object writes, so they overlap the caller's next work (`git theta add` cleaning the next
   * model). The caller then owns the wait: it must call the store's `flush()` and see it succeed
   * before the metadata goes anywhere (git's index), or that metadata could name missing objects.
   * Reads of an object being written wait for its write, so the recipe check is unaffected. On
   * failure the writes are waited for as always.
   */
  leaveWritesPending?: boolean;
}

export const DEFAULT_CHAIN_CAP = 8;
export const DEFAULT_LSH_SIZE = 16;

export function parseTolerance(s: string | undefined | null): Tolerance | null {
  if (!s) return null;
  const out: Tolerance = { rtol: 0, atol: 0 };
  for (const part of s.split(',')) {
    const m = /^\s*(rtol|atol)\s*=\s*([0-9.eE+-]+)\s*$/.exec(part);
    if (!m || !Number.isFinite(+m[2]) || +m[2] < 0) {
      throw new ThetaError('E_CONFIG', `bad theta.tolerance ${JSON.stringify(s)}: expected e.g. "rtol=1e-5,atol=1e-8"; fix it with 'git config theta.tolerance rtol=1e-5,atol=1e-8' or remove it with 'git config --unset theta.tolerance'`, { key: 'theta.tolerance', value: s });
    }
    out[m[1] as 'rtol' | 'atol'] = +m[2];
  }
  return out;
}

export async function cleanCheckpoint(o: CleanOptions): Promise<ModelMetadata> {
  // Objects are hashed here and their files written in the background when the store can
  // (DeferredPuts): a model of hundreds of objects otherwise waits on the file system for each
  // file created. Every write is done before the metadata is handed out (cleanWith's flush), unless
  // the caller takes that wait on itself (leaveWritesPending).
  const d = o.store as UpdateStore & Partial<DeferredPuts>;
  if (!d.putDeferred || !d.flush) return cleanWith(o, o.store, async () => {});
  const flush = () => d.flush!();
  const deferred: UpdateStore = {
    put: (b) => d.putDeferred!(b),
    get: (oid) => d.get(oid),
    ...(d.readRanges ? { readRanges: (oid: string, r: { offset: number; length: number }[]) => d.readRanges!(oid, r) } : {}),
  };
  try {
    return await cleanWith(o, deferred, o.leaveWritesPending ? async () => {} : flush);
  } catch (e) {
    // no write is left running (its own failure is not the one to report)
    await flush().catch(() => {});
    throw e;
  }
}

async function cleanWith(o: CleanOptions, base: UpdateStore, flush: () => Promise<void>): Promise<ModelMetadata> {
  const { kernels } = o;
  // small objects written here are kept for the recipe check (recent-objects.ts), when it runs
  const store = o.input && o.format && o.verify !== false ? withRecentObjects(base) : base;
  // small objects of tensor steps go into the metadata (one object file per bias costs more than the bias)
  const tensorStore = withInlinePuts(store, o.inlineMax ?? INLINE_MAX_BYTES);
  // Checked by segments (segmented-check.ts), a tensor stored dense here is known by its content
  // hash, as an unchanged one is: its object is the bytes just hashed, so the check does not read
  // it back, and it is not kept in memory for the check either.
  const bySegments = !!(o.segments && o.format?.verbatimTensors && o.input && o.verify !== false);
  const denseStore = bySegments ? withInlinePuts(base, o.inlineMax ?? INLINE_MAX_BYTES) : tensorStore;
  const cap = o.chainCap ?? DEFAULT_CHAIN_CAP;
  const requested = o.updateType ?? 'auto';
  if (requested !== 'auto') getUpdateType(requested); // unknown names fail before any work
  const tensors: Record<string, TensorEntry> = {};

  // One buffer, grown to the largest tensor, holds the tensor being cleaned: nothing keeps a view
  // of it past that tensor (objects are written, sparse values gathered into new arrays), and
  // reusing it spares the page faults of a fresh allocation per tensor.
  let pool = new Uint8Array(0);
  // a tensor kept at its older values by the opt-in tolerance makes the file differ on purpose
  let approximate = false;
  // tensors the recipe check need not rebuild: unchanged ones (their entries kept) and, checked by
  // segments, those stored dense by this clean
  const known = new Set<string>();
  for await (const t of withUniqueNames(o.reader, o.fileName ?? '<input>').tensors()) {
    const before = o.previous?.tensors[t.name];
    const compatible = !!before && before.dtype === t.dtype && sameShape(before.shape, t.shape);
    // A tensor the previous version had is most likely unchanged: when its bytes can be read
    // again at their place in the input, they are only hashed as they pass (not copied), and read
    // again if they did change.
    const at = o.readAt && compatible && o.segments && o.format?.verbatimTensors ? o.segments.reader.position : -1;
    if (at < 0 && pool.length < t.byteLength) pool = new Uint8Array(t.byteLength);
    let next: Uint8Array = at < 0 ? pool.subarray(0, t.byteLength) : new Uint8Array(0);
    let filled = 0;
    // each chunk is hashed while it is still in cache (from being copied into place, when it is)
    const hasher = kernels.contentHasher();
    o.segments?.beginTensor();
    for await (const c of t.chunks()) {
      if (at < 0) next.set(c, filled);
      hasher.update(c);
      filled += c.length;
    }
    const hash = hasher.digest();
    o.segments?.endTensor(filled, hash);
    if (at >= 0 && before!.hash !== hash) next = await readAgain(o, kernels, t.name, at, t.byteLength, hash);
    const quant = quantInfoOf((t as MaybeQuantized).quantization);
    if (compatible && before!.hash === hash) {
      // same bytes; a quantization recorded now (or changed parameters) is carried on the same objects
      const same = sameQuant(before!.quant, quant) ? before! : withQuant(before!, quant);
      tensors[t.name] = same;
      known.add(t.name);
      o.onTensor?.(t.name, same, true);
      continue;
    }
    // a quantized tensor's signature is of its values, so approximate diffs estimate the right thing
    const forLsh = valuesForStats(quant, t.dtype, next);
    const lsh = forLsh ? lshOf(kernels, forLsh.dtype, forLsh.bytes, o.lshSize ?? DEFAULT_LSH_SIZE) : [];
    let prevBytes: Promise<Uint8Array> | null = null;
    const prev = compatible ? () => (prevBytes ??= rebuildTensor(t.name, before!, store, kernels)) : null;

    if (compatible && o.tolerance && !quant && isNumeric(t.dtype) && (await withinTolerance(kernels, t.dtype, before!, lsh, prev!, next, o.tolerance))) {
      approximate = true;
      tensors[t.name] = before!;
      o.onTensor?.(t.name, before!, true);
      continue;
    }

    const ctx = {
      name: t.name, dtype: t.dtype, shape: t.shape, next, prev, side: o.side?.get(t.name) ?? new Map(), store: tensorStore, kernels,
    };
    const chainRoom = compatible && before!.chain.length < cap;
    let step: UpdateStep | null = null;
    if (requested !== 'auto' && requested !== 'dense' && chainRoom) step = await getUpdateType(requested).encode(ctx);
    // `auto` tries sparse only when it could win: a tensor rewritten everywhere (a full fine-tune)
    // is told apart from a sample of its previous object, without reading and comparing all of it
    const rewritten = requested === 'auto' && chainRoom && (await rewrittenEverywhere(store, before!, next, dtypeSize(t.dtype)));
    if (!step && requested !== 'dense' && chainRoom && !rewritten) step = await getUpdateType('sparse').encode(ctx);
    if (!step) {
      // the built-in dense (a plug-in may have registered its own under the name)
      const builtIn = bySegments && getUpdateType('dense') === dense;
      step = (await getUpdateType('dense').encode(builtIn ? { ...ctx, store: denseStore } : ctx))!;
      if (builtIn) known.add(t.name);
    }

    const type = getUpdateType(step.update);
    const last: UpdateStep = step;
    const entry: TensorEntry = {
      dtype: t.dtype,
      shape: t.shape,
      ...(quant ? { quant } : {}),
      bytes: t.byteLength,
      hash,
      lsh,
      update: last.update,
      chain: type.incremental ? [...before!.chain, last] : [last],
    };
    tensors[t.name] = entry;
    o.onTensor?.(t.name, entry, false);
  }
  // the skeleton is versioned too: a few changed bytes (CRCs) cost a small sparse delta, not a copy
  const skeleton = await storeSkeleton(o.reader.skeleton(), o.previous?.format === o.reader.format ? o.previous : null, store, kernels, cap);
  const meta: ModelMetadata = { format: o.reader.format, ...skeleton, size: o.fileSize, tensors };
  await flush();
  if (o.input && o.format) {
    const input = await o.input();
    if (o.verify !== false) {
      const how = await checkRecipe({
        file: o.fileName ?? '<input>', metadata: { ...meta, size: input.size }, format: o.format, store, kernels, input, sizeOnly: approximate,
        segments: o.segments ? { digest: o.segments.digest(), known } : undefined,
      });
      o.onRecipeCheck?.(how);
    }
  }
  return meta;
}

/** A changed tensor's bytes read again at their place in the input, checked against the hash they had as they streamed past. */
async function readAgain(o: CleanOptions, kernels: Kernels, name: string, at: number, length: number, hash: string): Promise<Uint8Array> {
  const bytes = await o.readAt!(at, length);
  if (bytes.length !== length || kernels.contentHash(bytes) !== hash) {
    throw new ThetaError('E_CHANGED_WHILE_READ', `${o.fileName ?? '<input>'}: tensor ${quoteName(name)} changed while it was being read (is the file still being written?); add it again when it is complete`, { file: o.fileName, tensor: name });
  }
  return bytes;
}

/** Elements sampled, in SAMPLE_BLOCKS runs of SAMPLE_RUN spread over the tensor, by rewrittenEverywhere. */
export const SAMPLE_BLOCKS = 64;
export const SAMPLE_RUN = 16;
/** Below this size a tensor just tries sparse: a sample would save nothing. */
export const SAMPLE_MIN_BYTES = 1 << 20;
/** At most this fraction of sampled elements unchanged counts as rewritten everywhere. */
export const SAMPLE_MAX_UNCHANGED = 0.01;

/**
 * Whether nearly every element of a tensor changed, judged from SAMPLE_BLOCKS × SAMPLE_RUN elements
 * compared with its previous version's dense object (read in ranges, not whole). Sparse needs at
 * least about half of the elements unchanged to beat dense (an index costs 4 bytes), so when at
 * most 1% of the sample is unchanged `auto` stores dense without reading the old object: the result
 * is exact either way, and for natural data the sample cannot be that far off. False whenever the
 * sample cannot be taken (no dense previous object, small tensor, object not local).
 */
export async function rewrittenEverywhere(store: UpdateStore, before: TensorEntry, next: Uint8Array, elementSize: number): Promise<boolean> {
  const step = before.chain.length === 1 && before.chain[0].update === 'dense' ? before.chain[0] : null;
  const ref = step?.object as ObjectRef | undefined;
  if (!ref || !store.readRanges || next.length < SAMPLE_MIN_BYTES || ref.size !== next.length) return false;
  const n = next.length / elementSize;
  const ranges = Array.from({ length: SAMPLE_BLOCKS }, (_, b) => {
    const start = Math.min(n - SAMPLE_RUN, Math.floor((b * n) / SAMPLE_BLOCKS));
    return { offset: start * elementSize, length: SAMPLE_RUN * elementSize };
  });
  let parts: Uint8Array[];
  try {
    parts = await store.readRanges(ref.oid, ranges);
  } catch {
    return false;
  }
  let unchanged = 0;
  for (const [i, { offset, length }] of ranges.entries()) {
    const old = parts[i];
    if (old.length !== length) return false;
    for (let e = 0; e < length; e += elementSize) {
      let same = true;
      for (let k = 0; k < elementSize && same; k++) same = old[e + k] === next[offset + e + k];
      if (same) unchanged++;
    }
  }
  return unchanged <= SAMPLE_MAX_UNCHANGED * SAMPLE_BLOCKS * SAMPLE_RUN;
}

function withQuant(e: TensorEntry, quant: TensorEntry['quant']): TensorEntry {
  const { quant: _old, ...rest } = e;
  return quant ? { ...rest, quant } : rest;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function hashOf(kernels: Kernels, bytes: Uint8Array): string {
  const h = kernels.contentHasher();
  h.update(bytes);
  return h.digest();
}

export function lshOf(kernels: Kernels, dtype: import('../core/dtypes.ts').DType, bytes: Uint8Array, size: number): number[] {
  if (!isNumeric(dtype)) return [];
  const acc = kernels.lshAccumulator(dtype, { size });
  acc.update(bytes);
  return finiteSignature(acc.signature());
}

/**
 * A signature with an infinity or NaN in it (a tensor holding inf, e.g. an attention mask of
 * -inf, or NaN) estimates no distance, and JSON cannot carry those numbers: such a tensor gets no
 * signature, like a non-numeric one (approximate diffs then say they cannot estimate it).
 */
export function finiteSignature(sig: number[]): number[] {
  return sig.every(Number.isFinite) ? sig : [];
}

async function withinTolerance(
  kernels: Kernels, dtype: import('../core/dtypes.ts').DType, before: TensorEntry, lsh: number[], prev: () => Promise<Uint8Array>,
  next: Uint8Array, tol: Tolerance,
): Promise<boolean> {
  // The LSH signature screens out clearly different tensors without rebuilding the old version.
  if (before.lsh.length === lsh.length && lsh.length) {
    const est = kernels.estimateL2(before.lsh, lsh);
    const norm = Math.sqrt(lsh.reduce((a, x) => a + x * x, 0) / lsh.length);
    if (est > 4 * (tol.atol * Math.sqrt(next.length) + tol.rtol * norm) + 1e-30) return false;
  }
  const cmp = kernels.compareAccumulator(dtype, tol);
  cmp.update(next, await prev());
  return cmp.result().notClose === 0;
}
