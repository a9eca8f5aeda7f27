/**
 * Update types: how one version of a tensor is stored relative to the previous one. Each type is
 * a small module registered in registry.ts; plug-ins can add more.
 *
 * `encode` turns the new tensor (and, for incremental types, the previous one) into one step of
 * the recipe, writing whatever objects it needs; `apply` turns the previous bytes and a step back
 * into the new bytes. Every type is exact: applying the step gives back the very bytes that were
 * encoded (types that compute in floating point store an exact residual for the elements whose
 * bits their arithmetic does not reproduce).
 */
import type { DType } from '../core/dtypes.ts';
import type { Kernels } from '../core/kernels.ts';
import type { ObjectRef, UpdateStep } from '../theta/metadata.ts';

/** The slice of the object store an update type needs. */
export interface UpdateStore {
  put(bytes: Uint8Array): Promise<ObjectRef>;
  get(oid: string): Promise<Uint8Array>;
  /** Optional unverified partial reads (see ObjectStore.readRanges): heuristics only. */
  readRanges?(oid: string, ranges: { offset: number; length: number }[]): Promise<Uint8Array[]>;
}

/** A side-loaded tensor (`<tensor>/R`, `<tensor>/C`, `<tensor>/ia3`) from --update-data. */
export interface SideTensor {
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

export interface EncodeContext {
  name: string;
  dtype: DType;
  shape: number[];
  /** The new bytes. */
  next: Uint8Array;
  /** The previous version's bytes, rebuilt on demand; null when the tensor is new or its dtype/shape changed. */
  prev: (() => Promise<Uint8Array>) | null;
  /** Side-loaded data for this tensor, keyed by the part after `<tensor>/` (e.g. 'R', 'C', 'ia3'). */
  side: Map<string, SideTensor>;
  store: UpdateStore;
  kernels: Kernels;
}

export interface ApplyContext {
  name: string;
  dtype: DType;
  shape: number[];
  store: UpdateStore;
  kernels: Kernels;
}

export interface UpdateType {
  readonly name: string;
  /** True when the step needs the previous bytes (everything but dense). */
  readonly incremental: boolean;
  /** One-line description for --help. */
  readonly description: string;
  /**
   * Encode `next`; null when this type cannot represent the change (no previous version, no side
   * data, or an encoding no smaller than dense) so the caller falls back to dense.
   */
  encode(ctx: EncodeContext): Promise<UpdateStep | null>;
  /** The new bytes from the previous bytes (null for non-incremental types) and the step. */
  apply(step: UpdateStep, prev: Uint8Array | null, ctx: ApplyContext): Promise<Uint8Array>;
}
