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
import { sameQuant, type QuantInfo } from '../formats/dequantize.ts';
import { shownLayout, valuesForStats } from './quantized.ts';

export type TensorStatus = 'added' | 'removed' | 'modified' | 'unchanged';

export interface TensorDiff {
  name: string;
  status: TensorStatus;
  /** The tensor's type: a dtype, or for a quantized tensor its scheme as stored (`Q8_0`, `uint8→float32 (affine)`). */
  dtype: DType | string;
  /** For a quantized tensor: the dtype of its stored bytes (`U8`). */
  storage_dtype?: DType | string;
  /** The logical shape (of the dequantized values for a quantized tensor; C order, GGUF's `ne` reversed). */
  shape: number[];
  /** Set when the dtype or shape changed. */
  old_dtype?: DType | string;
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
  /** A quantized tensor: numbers are computed on its dequantized values. */
  quant?: QuantInfo;
  load(): Promise<Uint8Array>;
}

export function metadataTensors(m: ModelMetadata | null, load: (name: string, e: TensorEntry) => Promise<Uint8Array>): DiffTensor[] {
  if (!m) return [];
  return Object.keys(m.tensors).sort(byCodePoint).map((name) => {
    const e = m.tensors[name];
    return { name, dtype: e.dtype, shape: e.shape, hash: e.hash, lsh: e.lsh, update: e.update, ...(e.quant ? { quant: e.quant } : {}), load: () => load(name, e) };
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
  const row = (t: DiffTensor, status: TensorStatus, update = t.update): TensorDiff => ({ name: t.name, status, ...shownLayout(t), update });
  for await (const b of newer) {
    seen.add(b.name);
    const a = byName.get(b.name);
    if (!a) {
      out.push(row(b, 'added'));
      continue;
    }
    // a side recorded before quantizations were (older metadata) reads its bytes as the other side does;
    // the same scheme with other parameters (a TF.js weight re-quantized) is the same layout, other values
    const qa = a.quant ?? b.quant, qb = b.quant ?? a.quant;
    const sameScheme = (!qa && !qb) || (!!qa && !!qb && qa.scheme === qb.scheme && qa.shape.join() === qb.shape.join());
    const sameLayout = a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((x, i) => x === b.shape[i]) && sameScheme;
    const sameValuesIfSameBytes = sameQuant(qa, qb);
    const shown = qb && !b.quant ? { ...b, quant: qb } : b;
    if (sameLayout && a.hash === b.hash && sameValuesIfSameBytes) {
      out.push(row(shown, 'unchanged'));
      continue;
    }
    const d = row(shown, 'modified');
    // quantized tensors are compared on their dequantized values (the numbers `inspect` shows)
    const numeric = qb ? true : isNumeric(b.dtype);
    const stats = async (x: Uint8Array, y: Uint8Array) => {
      const [vx, vy] = [valuesForStats(qa, a.dtype, x), valuesForStats(qb, b.dtype, y)];
      return vx && vy ? exactStats(o.kernels, vy.dtype, vx.bytes, vy.bytes) : { l2: null, relative: null, maxabs: null, cosine: null };
    };
    if (!sameLayout) {
      const old = shownLayout(a);
      d.old_dtype = old.dtype;
      d.old_shape = old.shape;
    } else if ((a.composite || b.composite) && o.approx) {
      // a weight joined from pieces has no whole-tensor signature: reading nothing, nothing to estimate
      Object.assign(d, { l2: null, relative: null, maxabs: null, cosine: null });
    } else if (a.composite || b.composite) {
      const [x, y] = [await a.load(), await b.load()];
      if (sameBytes(x, y) && sameValuesIfSameBytes) {
        out.push(row(shown, 'unchanged'));
        continue;
      }
      if (numeric) Object.assign(d, await stats(x, y));
    } else if (numeric) {
      Object.assign(d, o.approx ? approxStats(o.kernels, a.lsh, b.lsh) : await stats(await a.load(), await b.load()));
    }
    out.push(d);
  }
  for (const a of older) {
    if (!seen.has(a.name)) out.push({ name: a.name, status: 'removed', ...shownLayout(a) });
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

/**
 * The diff as shown without `--all`: unchanged tensors left out of `tensors` (the summary still
 * counts them).
 */
export function withoutUnchanged<T extends { tensors: TensorDiff[] }>(d: T): T {
  return { ...d, tensors: d.tensors.filter((t) => t.status !== 'unchanged') };
}
