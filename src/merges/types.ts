/**
 * Merge strategies: how one tensor changed on two (or more) sides is combined. Each strategy is a
 * small module over the Wasm kernels, registered in registry.ts; plug-ins can add more.
 */
import type { DType } from '../core/dtypes.ts';
import type { Kernels } from '../core/kernels.ts';

export interface ParamSpec {
  name: string;
  description: string;
  default: number | string;
  /** For numbers: the allowed closed range. */
  min?: number;
  max?: number;
  /** For strings: the allowed values. */
  choices?: readonly string[];
}

export type MergeParams = Record<string, number | string>;

export interface MergeInput {
  name: string;
  dtype: DType;
  shape: number[];
  /** The merge base's bytes (null when the tensor is new on every side). */
  base: Uint8Array | null;
  /** The sides' bytes: ours first, then theirs (then any further models for merge-models). */
  models: Uint8Array[];
  /**
   * Where a strategy may write its result: bytes of the tensor's length that the caller owns and
   * gives up, possibly one of `models` or `base` (merge-models passes the first model's fresh
   * bytes). A strategy that writes there returns `{ bytes: out }`; it reads every element of the
   * inputs before writing that element. Without it, strategies allocate their result.
   */
  out?: Uint8Array;
}

/**
 * A result: bytes in the tensor's dtype (selection strategies, and the float strategies, which
 * compute in f32 and convert back as they go), float32 values (to convert back), or null = leave
 * the conflict.
 */
export type MergeOutput = { bytes: Uint8Array } | { values: Float32Array } | null;

export interface MergeStrategy {
  readonly name: string;
  readonly description: string;
  readonly params: readonly ParamSpec[];
  /** Needs the merge base (task vectors are relative to it). */
  readonly needsBase: boolean;
  /** Works on integer and other non-float dtypes (only selection strategies do). */
  readonly anyDtype?: boolean;
  /** Fewest and most models (sides) it combines. */
  readonly minModels?: number;
  readonly maxModels?: number;
  merge(input: MergeInput, params: MergeParams, kernels: Kernels): MergeOutput | Promise<MergeOutput>;
}
