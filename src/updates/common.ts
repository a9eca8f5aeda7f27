/** Helpers shared by the update types: exact sparse residuals and byte views. */
import { dtypeSize, elementCount } from '../core/dtypes.ts';
import { ThetaError } from '../core/errors.ts';
import type { ObjectRef } from '../theta/metadata.ts';
import type { EncodeContext, UpdateStore, ApplyContext } from './types.ts';
import type { Kernels } from '../core/kernels.ts';

/** Sparse indices are u32: tensors with more elements than this are stored dense instead. */
export const MAX_SPARSE_ELEMENTS = 0xffffffff;

/** Little-endian bytes of a u32 index array (all supported runtimes are little-endian). */
export function u32Bytes(a: Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function bytesU32(b: Uint8Array): Uint32Array {
  if (b.byteLength % 4) throw new ThetaError('E_OBJECT_CORRUPT', 'sparse index object has a length that is not a multiple of 4');
  const copy = b.byteOffset % 4 ? b.slice() : b;
  return new Uint32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
}

export interface Residual {
  count: number;
  indices: ObjectRef;
  values: ObjectRef;
}

/**
 * The exact correction from `candidate` to `next`: indices of elements whose bits differ and the
 * wanted values there. Null when it would not be smaller than `limitBytes`.
 */
export async function encodeResidual(
  kernels: Kernels, store: UpdateStore, elementSize: number, candidate: Uint8Array, next: Uint8Array, limitBytes: number,
): Promise<Residual | null | 'none'> {
  // more changed elements than this and the residual would not be smaller than the limit
  const maxCount = Math.max(0, Math.ceil(limitBytes / (4 + elementSize)) - 1);
  const idx = kernels.changedIndices(candidate, next, elementSize, maxCount);
  if (!idx) return null;
  if (idx.length === 0) return 'none';
  const values = kernels.gather(next, elementSize, idx);
  return { count: idx.length, indices: await store.put(u32Bytes(idx)), values: await store.put(values) };
}

/** Apply a residual in place. */
export async function applyResidual(ctx: ApplyContext, r: Residual | undefined, target: Uint8Array): Promise<Uint8Array> {
  if (!r) return target;
  const es = dtypeSize(ctx.dtype);
  const idx = bytesU32(await ctx.store.get(r.indices.oid));
  const values = await ctx.store.get(r.values.oid);
  if (idx.length !== r.count || values.length !== r.count * es) {
    throw new ThetaError('E_OBJECT_CORRUPT', `tensor '${ctx.name}': residual objects do not match their recorded count`, { tensor: ctx.name });
  }
  checkIndices(ctx.name, idx, target.length / es);
  ctx.kernels.scatter(target, es, idx, values);
  return target;
}

export function checkIndices(name: string, idx: Uint32Array, n: number): void {
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] >= n) throw new ThetaError('E_OBJECT_CORRUPT', `tensor '${name}': sparse index ${idx[i]} is out of range (${n} elements)`, { tensor: name });
  }
}

export function tensorElements(ctx: { shape: number[] }): number {
  return elementCount(ctx.shape);
}

/** Rows and columns of a tensor seen as a matrix: first dimension by the product of the rest. */
export function matrixShape(shape: number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  return [shape[0], shape.slice(1).reduce((a, b) => a * b, 1)];
}

export function sideFloat32(kernels: Kernels, ctx: EncodeContext, key: string) {
  const t = ctx.side.get(key);
  if (!t) return null;
  return { shape: t.shape, values: kernels.toF32(t.dtype, t.data) };
}
