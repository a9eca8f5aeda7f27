/**
 * Merging a quantized tensor: every side's stored bytes are dequantized to float32, merged by the
 * strategy in f32, and written back into the same scheme (`TensorQuantization.quantize`), with the
 * error of the written values against the float merge. Shared by merge-models and the git driver.
 */
import { ArgumentError } from '../core/errors.ts';
import type { Kernels } from '../core/kernels.ts';
import type { TensorQuantization } from '../formats/types.ts';
import type { MergeParams, MergeStrategy } from './types.ts';

/** Float32 values of a quantized tensor's stored bytes (undefined: the scheme has no dequantizer). */
export function dequantizeBytes(q: TensorQuantization, bytes: Uint8Array): Float32Array | undefined {
  if (!q.dequantizer) return undefined;
  const d = q.dequantizer();
  const a = d.push(bytes);
  const b = d.finish();
  if (!b.length) return a;
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export const f32Bytes = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** max |a − b| and sqrt(mean (a − b)²). */
export function errorOf(a: Float32Array, b: Float32Array): { maxError: number; rmsError: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (e > max) max = e;
    sum += e * e;
  }
  return { maxError: max, rmsError: a.length ? Math.sqrt(sum / a.length) : 0 };
}

/** True when tensors in this scheme can be merged and written back in it. */
export const canRequantize = (q: TensorQuantization | undefined): boolean => !!q?.dequantizer && !!q.quantize;

/**
 * The strategy's float merge of the sides' dequantized values (null: the strategy left it
 * unmerged). `qs[i]` reads `models[i]` (sides of a TF.js model may have their own scale and min);
 * the base is read with `baseQ`.
 */
export async function mergeDequantized(
  name: string, qs: readonly TensorQuantization[], strategy: MergeStrategy, params: MergeParams, kernels: Kernels, models: Uint8Array[], base: Uint8Array | null,
  baseQ: TensorQuantization = qs[0],
): Promise<Float32Array | null> {
  const q = qs[0];
  const floats = models.map((m, i) => dequantizeBytes(qs[i] ?? q, m));
  if (floats.some((f) => !f)) {
    throw new ArgumentError(`tensor '${name}' is ${q.scheme}, which cannot be dequantized yet, and differs between the models; merge it with --strategy ours or theirs`, { tensor: name, scheme: q.scheme });
  }
  const bf = base ? dequantizeBytes(baseQ, base) : undefined;
  const out = await strategy.merge({ name, dtype: 'F32', shape: q.shape.slice(), base: bf ? f32Bytes(bf) : null, models: floats.map((f) => f32Bytes(f!)) }, params, kernels);
  if (!out) return null;
  return 'values' in out ? out.values : new Float32Array(out.bytes.buffer.slice(out.bytes.byteOffset, out.bytes.byteOffset + out.bytes.byteLength));
}

/** Merged float values written back into the scheme, with their error against the float merge. */
export function requantize(name: string, q: TensorQuantization, merged: Float32Array, storedBytes: number): { bytes: Uint8Array; maxError: number; rmsError: number } {
  if (!q.quantize) throw new ArgumentError(`tensor '${name}': writing ${q.scheme} is not supported yet; pass --keep-float to write float32 values`, { tensor: name, scheme: q.scheme });
  const bytes = q.quantize(merged);
  if (bytes.length !== storedBytes) throw new ArgumentError(`tensor '${name}': requantized ${q.scheme} is ${bytes.length} bytes, stored ${storedBytes}`, { tensor: name });
  return { bytes, ...errorOf(dequantizeBytes(q, bytes)!, merged) };
}
