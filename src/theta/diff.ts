/**
 * Per-tensor differences between two versions of a model: added, removed, modified (with the L2
 * norm of the change, relative change ‖Δ‖/‖θ_old‖, max |Δ| and cosine similarity), or unchanged.
 * `approx` answers from the LSH signatures alone, reading no tensor object.
 */
import type { DType } from '../core/dtypes.ts';
import { isNumeric } from '../core/dtypes.ts';
import type { Kernels } from '../core/kernels.ts';
import type { ModelMetadata, TensorEntry } from './metadata.ts';
import { byCodePoint } from './metadata.ts';

export type TensorStatus = 'added' | 'removed' | 'modified' | 'unchanged';

export interface TensorDiff {
  name: string;
  status: TensorStatus;
  dtype: DType;
  shape: number[];
  /** Set when the dtype or shape changed. */
  old_dtype?: DType;
  old_shape?: number[];
  /** Update type the newer version was stored with. */
  update?: string;
  l2?: number | null;
  relative?: number | null;
  maxabs?: number | null;
  cosine?: number | null;
}

export interface ModelDiff {
  approx: boolean;
  tensors: TensorDiff[];
  summary: Record<TensorStatus, number>;
}

/** One version's tensor as the diff sees it; `load` gives its bytes when numbers are needed. */
export interface DiffTensor {
  name: string;
  dtype: DType;
  shape: number[];
  hash: string;
  lsh: number[];
  update?: string;
  /**
   * The hash is not a content hash of the whole tensor (a TF.js weight joined from pieces in
   * several shards): equal hashes still mean equal bytes, but different ones are checked by
   * comparing the bytes.
   */
  composite?: boolean;
  load(): Promise<Uint8Array>;
}

export function metadataTensors(m: ModelMetadata | null, load: (name: string, e: TensorEntry) => Promise<Uint8Array>): DiffTensor[] {
  if (!m) return [];
  return Object.keys(m.tensors).sort(byCodePoint).map((name) => {
    const e = m.tensors[name];
    return { name, dtype: e.dtype, shape: e.shape, hash: e.hash, lsh: e.lsh, update: e.update, load: () => load(name, e) };
  });
}

const nullIfNaN = (x: number): number | null => (Number.isFinite(x) ? x : null);

/**
 * Compare: `older` is a list (looked up by name); `newer` is iterated once in order, so a newer
 * side that streams from a file is read one tensor at a time.
 */
export async function diffModels(
  older: DiffTensor[], newer: AsyncIterable<DiffTensor> | Iterable<DiffTensor>, o: { kernels: Kernels; approx?: boolean },
): Promise<ModelDiff> {
  const byName = new Map(older.map((t) => [t.name, t]));
  const seen = new Set<string>();
  const out: TensorDiff[] = [];
  for await (const b of newer) {
    seen.add(b.name);
    const a = byName.get(b.name);
    if (!a) {
      out.push({ name: b.name, status: 'added', dtype: b.dtype, shape: b.shape, update: b.update });
      continue;
    }
    const sameLayout = a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((x, i) => x === b.shape[i]);
    if (sameLayout && a.hash === b.hash) {
      out.push({ name: b.name, status: 'unchanged', dtype: b.dtype, shape: b.shape, update: b.update });
      continue;
    }
    const d: TensorDiff = { name: b.name, status: 'modified', dtype: b.dtype, shape: b.shape, update: b.update };
    if (!sameLayout) {
      d.old_dtype = a.dtype;
      d.old_shape = a.shape;
    } else if ((a.composite || b.composite) && o.approx) {
      // a weight joined from pieces has no whole-tensor signature: reading nothing, nothing to estimate
      Object.assign(d, { l2: null, relative: null, maxabs: null, cosine: null });
    } else if (a.composite || b.composite) {
      const [x, y] = [await a.load(), await b.load()];
      if (sameBytes(x, y)) {
        out.push({ name: b.name, status: 'unchanged', dtype: b.dtype, shape: b.shape, update: b.update });
        continue;
      }
      if (isNumeric(b.dtype)) Object.assign(d, await exactStats(o.kernels, b.dtype, x, y));
    } else if (isNumeric(b.dtype)) {
      Object.assign(d, o.approx ? approxStats(o.kernels, a.lsh, b.lsh) : await exactStats(o.kernels, b.dtype, await a.load(), await b.load()));
    }
    out.push(d);
  }
  for (const a of older) {
    if (!seen.has(a.name)) out.push({ name: a.name, status: 'removed', dtype: a.dtype, shape: a.shape });
  }
  out.sort((x, y) => byCodePoint(x.name, y.name));
  const summary = { added: 0, removed: 0, modified: 0, unchanged: 0 };
  for (const t of out) summary[t.status]++;
  return { approx: !!o.approx, tensors: out, summary };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function exactStats(kernels: Kernels, dtype: DType, a: Uint8Array, b: Uint8Array) {
  const acc = kernels.compareAccumulator(dtype, { rtol: 0, atol: 0 });
  acc.update(b, a);
  const r = acc.result();
  const l2 = Math.sqrt(r.sumsqDiff);
  const normOld = Math.sqrt(r.sumsqB);
  return {
    l2: nullIfNaN(l2),
    relative: normOld > 0 ? nullIfNaN(l2 / normOld) : null,
    maxabs: nullIfNaN(r.maxAbsDiff),
    cosine: nullIfNaN(r.cosine),
  };
}

function approxStats(kernels: Kernels, a: number[], b: number[]) {
  if (!a.length || a.length !== b.length) return { l2: null, relative: null, maxabs: null, cosine: null };
  const l2 = kernels.estimateL2(a, b);
  const na = Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  const nb = Math.sqrt(b.reduce((s, x) => s + x * x, 0) / b.length);
  const cos = na > 0 && nb > 0 ? Math.max(-1, Math.min(1, (na * na + nb * nb - l2 * l2) / (2 * na * nb))) : null;
  return { l2: nullIfNaN(l2), relative: na > 0 ? nullIfNaN(l2 / na) : null, maxabs: null, cosine: cos };
}
