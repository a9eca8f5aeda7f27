/**
 * Quantized tensors in metadata and diffs: the `quant` an entry records (from the reader's
 * `quantization`), and the float32 values a diff or an LSH signature is computed on.
 */
import type { DType } from '../core/dtypes.ts';
import type { TensorQuantization } from '../formats/convert.ts';
import { dequantizeBytes, quantLabel, type QuantInfo } from '../formats/dequantize.ts';

/** The metadata description of a reader's quantized tensor (no functions, only what rebuilds the mapping). */
export function quantInfoOf(q: TensorQuantization | undefined): QuantInfo | undefined {
  if (!q) return undefined;
  const out: QuantInfo = { scheme: q.scheme, shape: q.shape.slice() };
  if (typeof q.scale === 'number') out.scale = q.scale;
  if (typeof q.min === 'number') out.min = q.min;
  return out;
}

/** The tensor's values for arithmetic: float32 bytes of the dequantized values, or the bytes as they are. */
export function valuesForStats(quant: QuantInfo | undefined, dtype: DType, bytes: Uint8Array): { dtype: DType; bytes: Uint8Array } | null {
  if (!quant) return { dtype, bytes };
  const v = dequantizeBytes(quant, bytes);
  return v ? { dtype: 'F32', bytes: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) } : null;
}

/** What a tensor is shown as: `{dtype, storage_dtype?, shape}` (for quantized ones the logical type and shape). */
export function shownLayout(t: { dtype: DType | string; shape: number[]; quant?: QuantInfo }): { dtype: string; storage_dtype?: string; shape: number[] } {
  if (!t.quant) return { dtype: t.dtype, shape: t.shape };
  return { dtype: quantLabel(t.quant.scheme), storage_dtype: t.dtype, shape: t.quant.shape };
}

/**
 * The `quant` and `lsh` of a tensor read from a file for a diff: the quantization it carries, and
 * (when `lsh` is given, for approximate diffs) the signature of its values.
 */
export function diffQuant(
  t: { dtype: DType; quantization?: TensorQuantization }, bytes: Uint8Array, lsh: ((dtype: DType, bytes: Uint8Array) => number[]) | null,
): { quant?: QuantInfo; lsh: number[] } {
  const quant = quantInfoOf(t.quantization);
  const v = lsh ? valuesForStats(quant, t.dtype, bytes) : null;
  return { ...(quant ? { quant } : {}), lsh: v && lsh ? lsh(v.dtype, v.bytes) : [] };
}
