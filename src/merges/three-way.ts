/**
 * The three-way merge of two versions of a model against their base, tensor by tensor, on the
 * metadata alone wherever possible:
 *
 * - unchanged on both sides: kept; changed (or added, or deleted) on one side only: that side's
 *   entry is taken, no question asked; changed identically on both sides: kept;
 * - dtype or shape differing between the sides: a conflict naming both layouts;
 * - changed differently on both sides, or added on both with different bytes: resolved by the
 *   strategy chosen for the tensor (rebuilding incremental updates first), else a conflict;
 * - deleted on one side and changed on the other: only `ours`/`theirs`/`base` can decide.
 *
 * Merged tensors become new dense objects; taken ones reuse their entries and objects.
 */
import { isNumeric } from '../core/dtypes.ts';
import type { Kernels } from '../core/kernels.ts';
import type { ModelMetadata, TensorEntry } from '../theta/metadata.ts';
import { byCodePoint } from '../theta/metadata.ts';
import { rebuildTensor } from '../theta/rebuild.ts';
import { DEFAULT_LSH_SIZE, hashOf, lshOf } from '../theta/clean.ts';
import { INLINE_MAX_BYTES, withInlinePuts } from '../theta/inline-objects.ts';
import type { UpdateStore } from '../updates/types.ts';
import type { StrategyChoice } from './registry.ts';
import { toDtypeBytes } from './strategies/linear.ts';
import { formatChoice } from './registry.ts';
import type { MergeOutput } from './types.ts';
import type { TensorQuantization } from '../formats/types.ts';
import { canRequantize, mergeDequantized, requantize } from './requantize.ts';
import { sideQuantizations } from './side-quant.ts';
import { sameQuant, type QuantInfo } from '../formats/dequantize.ts';
import { valuesForStats } from '../theta/quantized.ts';

export type ConflictKind = 'both-changed' | 'both-added' | 'layout' | 'deleted-changed' | 'unmergeable';

export interface TensorConflict {
  name: string;
  kind: ConflictKind;
  message: string;
}

export type TensorAction = 'kept' | 'ours' | 'theirs' | 'deleted' | 'merged';

export interface ThreeWayResult {
  /** The merged entries (conflicted tensors hold our version). */
  tensors: Record<string, TensorEntry>;
  conflicts: TensorConflict[];
  actions: Record<string, { action: TensorAction; strategy?: string; requantized?: { scheme: string; maxError: number; rmsError: number } }>;
}

/** What a strategy chooser is told about a tensor that needs one. */
export interface ConflictInfo {
  name: string;
  kind: 'both-changed' | 'both-added' | 'deleted-changed';
  dtype: string;
  shape: number[];
}

export interface ThreeWayOptions {
  base: ModelMetadata | null;
  ours: ModelMetadata | null;
  theirs: ModelMetadata | null;
  store: UpdateStore;
  kernels: Kernels;
  /** The strategy for a tensor that needs one, or null to leave it conflicted. */
  choose(info: ConflictInfo): StrategyChoice | null | Promise<StrategyChoice | null>;
  lshSize?: number;
  /**
   * Quantized tensors of the file (from its format's `quantizations(skeleton)`): a tensor merged by
   * a float strategy is dequantized, merged and requantized into its own scheme.
   */
  quantization?: Record<string, TensorQuantization>;
  /** Merged tensors of at most this many bytes are carried in the metadata (theta/inline-objects.ts); 0: none. */
  inlineMax?: number;
}

// the same codes under another TF.js scale or min are other values (an entry recorded before
// quantizations were has no `quant` and is compared by its bytes alone)
const same = (a: TensorEntry | undefined, b: TensorEntry | undefined): boolean =>
  a === b || (!!a && !!b && a.hash === b.hash && a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((x, i) => x === b.shape[i])
    && (!a.quant || !b.quant || sameQuant(a.quant, b.quant)));

const layout = (e: TensorEntry) => `${e.dtype}[${e.shape.join(',')}]`;

/** Conflicts need every tensor's name; the tensors that need a strategy are asked about first, all at once. */
export function tensorsNeedingStrategy(o: Pick<ThreeWayOptions, 'base' | 'ours' | 'theirs'>): ConflictInfo[] {
  const out: ConflictInfo[] = [];
  for (const name of allNames(o)) {
    const c = classify(o.base?.tensors[name], o.ours?.tensors[name], o.theirs?.tensors[name]);
    if (c.kind === 'strategy') out.push({ name, kind: c.why, dtype: c.ours?.dtype ?? c.theirs!.dtype, shape: (c.ours ?? c.theirs)!.shape });
  }
  return out;
}

function allNames(o: Pick<ThreeWayOptions, 'base' | 'ours' | 'theirs'>): string[] {
  const names = new Set<string>();
  for (const m of [o.base, o.ours, o.theirs]) if (m) for (const n of Object.keys(m.tensors)) names.add(n);
  return [...names].sort(byCodePoint);
}

type Classified =
  | { kind: 'take'; entry: TensorEntry | undefined; action: TensorAction }
  | { kind: 'layout'; ours: TensorEntry; theirs: TensorEntry }
  | { kind: 'strategy'; why: 'both-changed' | 'both-added' | 'deleted-changed'; ours?: TensorEntry; theirs?: TensorEntry };

function classify(b: TensorEntry | undefined, a: TensorEntry | undefined, t: TensorEntry | undefined): Classified {
  if (same(a, t)) return { kind: 'take', entry: a, action: a ? 'kept' : 'deleted' };
  if (same(b, a) || (!b && !a)) return { kind: 'take', entry: t, action: t ? 'theirs' : 'deleted' }; // only theirs changed
  if (same(b, t) || (!b && !t)) return { kind: 'take', entry: a, action: a ? 'ours' : 'deleted' }; // only ours changed
  if (!a || !t) return { kind: 'strategy', why: 'deleted-changed', ours: a, theirs: t };
  if (a.dtype !== t.dtype || a.shape.join() !== t.shape.join()) return { kind: 'layout', ours: a, theirs: t };
  return { kind: 'strategy', why: b ? 'both-changed' : 'both-added', ours: a, theirs: t };
}

export async function mergeThreeWay(o: ThreeWayOptions): Promise<ThreeWayResult> {
  const tensors: Record<string, TensorEntry> = {};
  const conflicts: TensorConflict[] = [];
  const actions: ThreeWayResult['actions'] = {};
  const load = (name: string, e: TensorEntry) => rebuildTensor(name, e, o.store, o.kernels);
  // a merged bias is no more worth an object file than a cleaned one
  const store = withInlinePuts(o.store, o.inlineMax ?? INLINE_MAX_BYTES);

  for (const name of allNames(o)) {
    const b = o.base?.tensors[name];
    const a = o.ours?.tensors[name];
    const t = o.theirs?.tensors[name];
    const c = classify(b, a, t);
    if (c.kind === 'take') {
      if (c.entry) tensors[name] = c.entry;
      actions[name] = { action: c.action };
      continue;
    }
    if (a) tensors[name] = a; // until resolved, the tensor holds our version
    if (c.kind === 'layout') {
      conflicts.push({
        name,
        kind: 'layout',
        message: `tensor '${name}': ours is ${layout(c.ours)} but theirs is ${layout(c.theirs)}; no strategy merges different dtypes or shapes — keep one side (ours/theirs)`,
      });
      actions[name] = { action: 'ours' };
      continue;
    }
    const choice = await o.choose({ name, kind: c.why, dtype: (a ?? t)!.dtype, shape: (a ?? t)!.shape });
    const label = c.why === 'both-changed' ? 'changed on both sides' : c.why === 'both-added' ? 'added on both sides with different values' : a ? 'changed by us and deleted by them' : 'deleted by us and changed by them';
    if (!choice || choice.strategy.name === 'fail') {
      conflicts.push({ name, kind: c.why, message: `tensor '${name}': ${label}` });
      actions[name] = { action: 'ours' };
      continue;
    }
    const s = choice.strategy;
    if (c.why === 'deleted-changed') {
      if (!['ours', 'theirs', 'base'].includes(s.name)) {
        conflicts.push({ name, kind: c.why, message: `tensor '${name}': ${label}; only ours, theirs or base can decide (not ${s.name})` });
        continue;
      }
      const pick = s.name === 'ours' ? a : s.name === 'theirs' ? t : b;
      if (pick) tensors[name] = pick;
      else delete tensors[name];
      actions[name] = { action: pick ? 'merged' : 'deleted', strategy: s.name };
      continue;
    }
    const entry = a!;
    const q = sideQuantizations(o.quantization?.[name], b, a!, t!);
    if (!s.anyDtype && q && [...q.models, q.out].every(canRequantize) && !(s.needsBase && !b)) {
      const baseQ = b && s.needsBase ? (q.base ?? q.models[0]) : undefined;
      const merged = await mergeDequantized(name, q.models, s, choice.params, o.kernels, [await load(name, a!), await load(name, t!)], b && s.needsBase ? await load(name, b) : null, baseQ);
      if (!merged) {
        conflicts.push({ name, kind: c.why, message: `tensor '${name}': ${label}; strategy ${s.name} left it unresolved` });
        actions[name] = { action: 'ours' };
        continue;
      }
      const { bytes, maxError, rmsError } = requantize(name, q.out, merged, entry.bytes);
      tensors[name] = await newDenseEntry(entry, bytes, store, o.kernels, o.lshSize ?? DEFAULT_LSH_SIZE, q.outInfo);
      actions[name] = { action: 'merged', strategy: formatChoice(choice), requantized: { scheme: q.out.scheme, maxError, rmsError } };
      continue;
    }
    if (!s.anyDtype && !['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype)) {
      conflicts.push({ name, kind: 'unmergeable', message: `tensor '${name}': ${label}; it is ${entry.dtype}, which only ours, theirs or base can merge (not ${s.name})` });
      actions[name] = { action: 'ours' };
      continue;
    }
    if (s.needsBase && !b) {
      conflicts.push({ name, kind: c.why, message: `tensor '${name}': ${label}; ${s.name} needs the merge base, which has no such tensor (try average or slerp)` });
      actions[name] = { action: 'ours' };
      continue;
    }
    if (s.name === 'ours' || s.name === 'theirs' || (s.name === 'base' && b)) {
      tensors[name] = s.name === 'ours' ? a! : s.name === 'theirs' ? t! : b!;
      actions[name] = { action: 'merged', strategy: s.name };
      continue;
    }
    const out: MergeOutput = await s.merge(
      {
        name,
        dtype: entry.dtype,
        shape: entry.shape,
        base: b && s.needsBase ? await load(name, b) : null,
        models: [await load(name, a!), await load(name, t!)],
      },
      choice.params,
      o.kernels,
    );
    if (!out) {
      conflicts.push({ name, kind: c.why, message: `tensor '${name}': ${label}; strategy ${s.name} left it unresolved` });
      actions[name] = { action: 'ours' };
      continue;
    }
    const bytes = 'bytes' in out ? out.bytes : toDtypeBytes(o.kernels, entry.dtype, out.values);
    tensors[name] = await newDenseEntry(entry, bytes, store, o.kernels, o.lshSize ?? DEFAULT_LSH_SIZE);
    actions[name] = { action: 'merged', strategy: formatChoice(choice) };
  }
  return { tensors, conflicts, actions };
}

/** A dense entry for merged bytes; a quantized tensor's `quant` is recorded and its signature is of its values, as clean makes them. */
export async function newDenseEntry(like: Pick<TensorEntry, 'dtype' | 'shape'>, bytes: Uint8Array, store: UpdateStore, kernels: Kernels, lshSize: number, quant?: QuantInfo): Promise<TensorEntry> {
  const object = await store.put(bytes);
  const values = valuesForStats(quant, like.dtype, bytes);
  return {
    dtype: like.dtype,
    shape: like.shape,
    bytes: bytes.length,
    hash: hashOf(kernels, bytes),
    lsh: values && isNumeric(values.dtype) ? lshOf(kernels, values.dtype, values.bytes, lshSize) : [],
    update: 'dense',
    chain: [{ update: 'dense', object }],
    ...(quant ? { quant } : {}),
  };
}

/** True when two sets of entries have the same names, dtypes and shapes (the file layout is the same). */
export function sameLayout(x: Record<string, TensorEntry>, y: Record<string, TensorEntry>): boolean {
  const a = Object.keys(x), b = Object.keys(y);
  if (a.length !== b.length) return false;
  for (const n of a) {
    const p = x[n], q = y[n];
    if (!q || p.dtype !== q.dtype || p.shape.join() !== q.shape.join()) return false;
  }
  return true;
}
