/**
 * The Python Git-Theta's update arithmetic (FORMAT.md §7) on little-endian C-order bytes: sparse
 * (CSR of the update seen as a 1×N matrix, duplicates summed, added to the previous value),
 * low-rank (`R @ C` or a plain additive `parameter`, added), ia3 (broadcast multiply). Values are
 * computed in float64 and rounded once to the parameter's dtype, which gives numpy's float32 result
 * for sums and products exactly; `R @ C` may differ from numpy's BLAS by float32 rounding order.
 */
import { dtypeSize, elementCount, type DType } from '../../core/dtypes.ts';
import type { Kernels } from '../../core/kernels.ts';
import { PyThetaFormatError } from './errors.ts';
import type { ZarrArray } from './zarr.ts';

function aligned(b: Uint8Array, size: number): ArrayBuffer {
  const c = b.byteOffset % size ? b.slice() : b;
  return c.buffer.slice(c.byteOffset, c.byteOffset + c.byteLength) as ArrayBuffer;
}

/** Values of a tensor as float64 (64-bit integers beyond 2^53 lose precision). */
export function toFloat64(kernels: Kernels, dtype: DType, bytes: Uint8Array): Float64Array {
  const buf = () => aligned(bytes, dtypeSize(dtype));
  switch (dtype) {
    case 'F64': return new Float64Array(buf());
    case 'F32': return Float64Array.from(new Float32Array(buf()));
    case 'F16': case 'BF16': return Float64Array.from(kernels.toF32(dtype, bytes));
    case 'I8': return Float64Array.from(new Int8Array(buf()));
    case 'U8': case 'BOOL': return Float64Array.from(bytes);
    case 'I16': return Float64Array.from(new Int16Array(buf()));
    case 'U16': return Float64Array.from(new Uint16Array(buf()));
    case 'I32': return Float64Array.from(new Int32Array(buf()));
    case 'U32': return Float64Array.from(new Uint32Array(buf()));
    case 'I64': return Float64Array.from(new BigInt64Array(buf()), Number);
    case 'U64': return Float64Array.from(new BigUint64Array(buf()), Number);
    default: throw new PyThetaFormatError(`dtype ${dtype} has no numeric value`, { dtype });
  }
}

/** Round float64 values to a dtype's bytes (integers truncate, as numpy's astype does). */
export function fromFloat64(kernels: Kernels, dtype: DType, v: Float64Array): Uint8Array {
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case 'F64': return bytes(v.slice());
    case 'F32': return bytes(Float32Array.from(v));
    case 'F16': case 'BF16': return kernels.fromF32(dtype, Float32Array.from(v));
    case 'BOOL': return Uint8Array.from(v, (x) => (x !== 0 ? 1 : 0));
    case 'I8': return bytes(Int8Array.from(v, Math.trunc));
    case 'U8': return Uint8Array.from(v, Math.trunc);
    case 'I16': return bytes(Int16Array.from(v, Math.trunc));
    case 'U16': return bytes(Uint16Array.from(v, Math.trunc));
    case 'I32': return bytes(Int32Array.from(v, Math.trunc));
    case 'U32': return bytes(Uint32Array.from(v, Math.trunc));
    case 'I64': return bytes(BigInt64Array.from(v, (x) => BigInt(Math.trunc(x))));
    case 'U64': return bytes(BigUint64Array.from(v, (x) => BigInt(Math.trunc(x))));
    default: throw new PyThetaFormatError(`dtype ${dtype} has no numeric value`, { dtype });
  }
}

export interface Target {
  name: string;
  dtype: DType;
  shape: number[];
  kernels: Kernels;
}

function need(u: Map<string, ZarrArray>, key: string, t: Target, kind: string): ZarrArray {
  const a = u.get(key);
  if (!a) throw new PyThetaFormatError(`parameter '${t.name}': its ${kind} update has no '${key}' array (has ${[...u.keys()].join(', ') || 'none'})`, { tensor: t.name });
  return a;
}

const num = (t: Target, a: ZarrArray) => toFloat64(t.kernels, a.dtype, a.data);

/** The value of a dense entry, in the entry's dtype. */
export function denseValue(u: Map<string, ZarrArray>, t: Target): Uint8Array {
  const p = need(u, 'parameter', t, 'dense');
  checkShape(t, p.shape, 'dense value');
  return p.dtype === t.dtype ? p.data : fromFloat64(t.kernels, t.dtype, num(t, p));
}

function checkShape(t: Target, shape: number[], what: string): void {
  if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) {
    throw new PyThetaFormatError(`parameter '${t.name}': ${what} has shape ${JSON.stringify(shape)}, the metadata says ${JSON.stringify(t.shape)}`, { tensor: t.name });
  }
}

/** prev + CSR(data, indices, indptr) reshaped to the parameter's shape. */
export function applySparse(prev: Uint8Array, u: Map<string, ZarrArray>, t: Target): Uint8Array {
  const data = need(u, 'data', t, 'sparse');
  const indices = num(t, need(u, 'indices', t, 'sparse'));
  const indptr = num(t, need(u, 'indptr', t, 'sparse'));
  const shape = Array.from(num(t, need(u, 'shape', t, 'sparse')));
  checkShape(t, shape, 'sparse update');
  const n = elementCount(t.shape);
  const vals = num(t, data);
  if (indptr.length !== 2 || indptr[0] !== 0 || indptr[1] !== indices.length || vals.length !== indices.length) {
    throw new PyThetaFormatError(`parameter '${t.name}': sparse update is not one CSR row (indptr ${Array.from(indptr).join(',')}, ${indices.length} indices, ${vals.length} values)`, { tensor: t.name });
  }
  const round = data.dtype === 'F32' ? Math.fround : (x: number) => x;
  const d = new Float64Array(n);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!(k >= 0 && k < n && Number.isInteger(k))) throw new PyThetaFormatError(`parameter '${t.name}': sparse index ${k} is out of range (${n} elements)`, { tensor: t.name });
    d[k] = round(d[k] + vals[i]);
  }
  const p = toFloat64(t.kernels, t.dtype, prev);
  for (let i = 0; i < n; i++) p[i] += d[i];
  return fromFloat64(t.kernels, t.dtype, p);
}

/** prev + R @ C (batched over leading dimensions), or prev + parameter. */
export function applyLowRank(prev: Uint8Array, u: Map<string, ZarrArray>, t: Target): Uint8Array {
  const p = toFloat64(t.kernels, t.dtype, prev);
  if (u.has('parameter')) {
    const d = u.get('parameter')!;
    const dv = broadcastTo(num(t, d), d.shape, t);
    for (let i = 0; i < p.length; i++) p[i] += dv[i];
    return fromFloat64(t.kernels, t.dtype, p);
  }
  const R = need(u, 'R', t, 'low-rank');
  const C = need(u, 'C', t, 'low-rank');
  const rs = R.shape;
  const cs = C.shape;
  const rank = t.shape.length;
  const bad = () => new PyThetaFormatError(`parameter '${t.name}': low-rank R ${JSON.stringify(rs)} @ C ${JSON.stringify(cs)} does not give shape ${JSON.stringify(t.shape)}`, { tensor: t.name });
  if (rank < 2 || rs.length !== rank || cs.length !== rank) throw bad();
  const m = rs[rank - 2];
  const k = rs[rank - 1];
  const n = cs[rank - 1];
  if (cs[rank - 2] !== k || m !== t.shape[rank - 2] || n !== t.shape[rank - 1]) throw bad();
  for (let i = 0; i < rank - 2; i++) if (rs[i] !== t.shape[i] || cs[i] !== t.shape[i]) throw bad();
  const r = num(t, R);
  const c = num(t, C);
  const batches = elementCount(t.shape.slice(0, rank - 2));
  const round = t.dtype === 'F32' ? Math.fround : (x: number) => x;
  for (let b = 0; b < batches; b++) {
    const ro = b * m * k;
    const co = b * k * n;
    const po = b * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += r[ro + i * k + q] * c[co + q * n + j];
        p[po + i * n + j] += round(s);
      }
    }
  }
  return fromFloat64(t.kernels, t.dtype, p);
}

/** prev * ia3, broadcast. */
export function applyIa3(prev: Uint8Array, u: Map<string, ZarrArray>, t: Target): Uint8Array {
  const s = need(u, 'ia3', t, 'ia3');
  const sv = broadcastTo(num(t, s), s.shape, t);
  const p = toFloat64(t.kernels, t.dtype, prev);
  for (let i = 0; i < p.length; i++) p[i] *= sv[i];
  return fromFloat64(t.kernels, t.dtype, p);
}

/** numpy broadcasting of `v` (shape `shape`) onto the parameter's shape; the result must have that shape. */
function broadcastTo(v: Float64Array, shape: number[], t: Target): Float64Array {
  const out = t.shape;
  const bad = () => new PyThetaFormatError(`parameter '${t.name}': update of shape ${JSON.stringify(shape)} does not broadcast to ${JSON.stringify(out)}`, { tensor: t.name });
  if (shape.length > out.length) throw bad();
  const pad = out.length - shape.length;
  const full = [...new Array(pad).fill(1), ...shape];
  if (full.some((d, i) => d !== 1 && d !== out[i])) throw bad();
  const n = elementCount(out);
  if (full.every((d, i) => d === out[i])) return v;
  const srcStrides = full.map((_, i) => elementCount(full.slice(i + 1)));
  const res = new Float64Array(n);
  const idx = new Array<number>(out.length).fill(0);
  for (let e = 0; e < n; e++) {
    let s = 0;
    for (let i = 0; i < out.length; i++) if (full[i] !== 1) s += idx[i] * srcStrides[i];
    res[e] = v[s];
    for (let i = out.length - 1; i >= 0; i--) {
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
  return res;
}
