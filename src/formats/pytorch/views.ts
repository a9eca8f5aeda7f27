/** PyTorch checkpoints: tensor views of a storage (strides, contiguous runs) and naming tensors from the unpickled object. */
import { FormatError } from '../../core/errors.ts';
import { PyDict, PyTuple, TensorRef, type PyValue } from '../pickle.ts';
import { MAX_NAME_DEPTH, PYTORCH_FORMAT_ID, type ViewPlan } from './common.ts';

export function viewNumel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== acc) return false;
    acc *= shape[i];
  }
  return true;
}

/**
 * Call `fn(storageByte, viewByte, length)` for each run of contiguous bytes of a view, in the
 * view's row-major order. Trailing dimensions that are contiguous merge into one run.
 */
export function forEachRun(v: { offset: number; shape: number[]; stride: number[] }, es: number, fn: (src: number, dst: number, len: number) => void): void {
  const n = v.shape.length;
  if (viewNumel(v.shape) === 0) return;
  let k = n;
  let run = 1;
  while (k > 0 && (v.shape[k - 1] === 1 || v.stride[k - 1] === run)) { run *= v.shape[k - 1]; k--; }
  const runBytes = run * es;
  const idx = new Array<number>(k).fill(0);
  let dst = 0;
  for (;;) {
    let src = v.offset;
    for (let i = 0; i < k; i++) src += idx[i] * v.stride[i];
    fn(src * es, dst, runBytes);
    dst += runBytes;
    let d = k - 1;
    while (d >= 0) {
      if (++idx[d] < v.shape[d]) break;
      idx[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

export function gather(storage: Uint8Array, v: ViewPlan, es: number): Uint8Array {
  const out = new Uint8Array(viewNumel(v.shape) * es);
  forEachRun(v, es, (src, dst, len) => out.set(storage.subarray(src, src + len), dst));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Naming tensors

export function keyName(k: PyValue): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint') return String(k);
  if (k === true) return 'True';
  if (k === false) return 'False';
  if (k === null) return 'None';
  if (k instanceof PyTuple) return `(${k.items.map(keyName).join(', ')})`;
  return '?';
}

/** Every tensor reachable through dicts, lists and tuples, with its dotted path, in pickle order. */
export function nameTensors(root: PyValue, file: string): { name: string; ref: TensorRef }[] {
  const out: { name: string; ref: TensorRef }[] = [];
  const used = new Set<string>();
  const seen = new Set<object>();
  const visit = (v: PyValue, path: string[]) => {
    if (v instanceof TensorRef) {
      const base = path.join('.') || 'tensor';
      let name = base;
      for (let i = 2; used.has(name); i++) name = `${base}~${i}`;
      used.add(name);
      out.push({ name, ref: v });
      return;
    }
    const children = v instanceof PyDict ? v.entries : Array.isArray(v) ? v.map((x, i) => [i, x] as [PyValue, PyValue]) : v instanceof PyTuple ? v.items.map((x, i) => [i, x] as [PyValue, PyValue]) : undefined;
    if (!children || seen.has(v as object)) return;
    seen.add(v as object);
    if (path.length >= MAX_NAME_DEPTH) throw new FormatError(`data.pkl: containers nested deeper than ${MAX_NAME_DEPTH}`, { file, format: PYTORCH_FORMAT_ID });
    for (const [k, x] of children) {
      if (x instanceof TensorRef || x instanceof PyDict || Array.isArray(x) || x instanceof PyTuple) visit(x, [...path, keyName(k)]);
    }
  };
  visit(root, []);
  return out;
}
