/**
 * Sparse changes (assembly/sparse.ts): the elements that differ between two tensors, and gather /
 * scatter by index. gather, scatter and scatterAdd run in JS on the caller's arrays: they touch
 * only the indexed elements, while a Wasm call would first have to copy the whole tensor in. The
 * Wasm versions (exports gather / scatter / scatter_add_f32) serve data already in Wasm memory.
 */
import { ArgumentError } from '../errors.ts';
import { type KernelMemory, align64 } from './memory.ts';

/**
 * Indices i where a[i] != b[i] and !(|a[i] - b[i]| <= threshold) (NaN differences are kept,
 * equal infinities are not), with values a[i] - b[i] (f32). Indices are u32: at most 2^32 elements.
 */
export function sparseExtract(mem: KernelMemory, a: Float32Array, b: Float32Array, threshold = 0): { indices: Uint32Array; values: Float32Array } {
  if (a.length !== b.length) throw new ArgumentError(`sparseExtract: arrays must have the same length (got ${a.length} and ${b.length})`);
  if (a.length > 0x100000000) throw new ArgumentError('sparseExtract: more than 2^32 elements');
  const n = a.length;
  const k = mem.x.sparse_extract_f32;
  const piece = mem.pieceElems(16);
  const A = mem.SCRATCH, B = align64(A + piece * 4), I = align64(B + piece * 4), V = align64(I + piece * 4);
  mem.reach(V + piece * 4);
  const idxParts: Uint32Array[] = [], valParts: Float32Array[] = [];
  let total = 0;
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.f32.set(a.subarray(off, off + m), A >> 2);
    mem.f32.set(b.subarray(off, off + m), B >> 2);
    const c = k(A, B, m, threshold, I, V);
    if (c) {
      const idx = mem.u32.slice(I >> 2, (I >> 2) + c);
      if (off) for (let j = 0; j < c; j++) idx[j] += off;
      idxParts.push(idx);
      valParts.push(mem.f32.slice(V >> 2, (V >> 2) + c));
      total += c;
    }
  }
  const indices = new Uint32Array(total), values = new Float32Array(total);
  let o = 0;
  for (let j = 0; j < idxParts.length; j++) {
    indices.set(idxParts[j], o);
    values.set(valParts[j], o);
    o += idxParts[j].length;
  }
  return { indices, values };
}

/** target[indices[j]] += values[j] in f32, in order (in place; returns target). */
export function scatterAdd(target: Float32Array, indices: Uint32Array, values: Float32Array): Float32Array {
  if (indices.length !== values.length) throw new ArgumentError(`scatterAdd: ${indices.length} indices but ${values.length} values`);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j];
    if (i >= target.length) throw new ArgumentError(`scatterAdd: index ${i} out of range (length ${target.length})`);
    target[i] = target[i] + values[j];
  }
  return target;
}

/** Indices of the elements (elementSize bytes) whose bytes differ between a and b. */
export function changedIndices(mem: KernelMemory, a: Uint8Array, b: Uint8Array, elementSize: number): Uint32Array;
/** With `limit`: null as soon as more than `limit` elements differ (a dense change stops early). */
export function changedIndices(mem: KernelMemory, a: Uint8Array, b: Uint8Array, elementSize: number, limit: number): Uint32Array | null;
export function changedIndices(mem: KernelMemory, a: Uint8Array, b: Uint8Array, elementSize: number, limit = Infinity): Uint32Array | null {
  if (!(Number.isInteger(elementSize) && elementSize >= 1 && elementSize <= 4096)) throw new ArgumentError(`changedIndices: bad elementSize ${elementSize}`);
  if (a.length !== b.length) throw new ArgumentError(`changedIndices: lengths differ (${a.length} and ${b.length})`);
  if (a.length % elementSize) throw new ArgumentError(`changedIndices: ${a.length} bytes is not a whole number of ${elementSize}-byte elements`);
  const n = a.length / elementSize;
  if (n > 0x100000000) throw new ArgumentError('changedIndices: more than 2^32 elements');
  const k = mem.x.changed_indices;
  const piece = mem.pieceElems(2 * elementSize + 4);
  const A = mem.SCRATCH, B = align64(A + piece * elementSize), I = align64(B + piece * elementSize);
  mem.reach(I + piece * 4);
  const parts: Uint32Array[] = [];
  let total = 0;
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.u8.set(a.subarray(off * elementSize, (off + m) * elementSize), A);
    mem.u8.set(b.subarray(off * elementSize, (off + m) * elementSize), B);
    const c = k(A, B, m, elementSize, I);
    if (total + c > limit) return null;
    if (c) {
      const idx = mem.u32.slice(I >> 2, (I >> 2) + c);
      if (off) for (let j = 0; j < c; j++) idx[j] += off;
      parts.push(idx);
      total += c;
    }
  }
  const out = new Uint32Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The elements at `indices`, concatenated. */
export function gather(bytes: Uint8Array, elementSize: number, indices: Uint32Array): Uint8Array {
  const n = Math.floor(bytes.length / elementSize);
  const out = new Uint8Array(indices.length * elementSize);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j];
    if (i >= n) throw new ArgumentError(`gather: index ${i} out of range (${n} elements)`);
    const s = i * elementSize;
    if (elementSize === 1) out[j] = bytes[s];
    else out.set(bytes.subarray(s, s + elementSize), j * elementSize);
  }
  return out;
}

/** bytes[indices[j]] = values[j] (elements of elementSize bytes), in place, in order. */
export function scatter(bytes: Uint8Array, elementSize: number, indices: Uint32Array, values: Uint8Array): Uint8Array {
  if (values.length !== indices.length * elementSize) throw new ArgumentError(`scatter: ${values.length} value bytes for ${indices.length} indices of ${elementSize} bytes`);
  const n = Math.floor(bytes.length / elementSize);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j];
    if (i >= n) throw new ArgumentError(`scatter: index ${i} out of range (${n} elements)`);
    if (elementSize === 1) bytes[i] = values[j];
    else bytes.set(values.subarray(j * elementSize, (j + 1) * elementSize), i * elementSize);
  }
  return bytes;
}
