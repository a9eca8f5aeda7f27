/**
 * Quantizing float32 values into TF.js affine codes (value = q·scale + min) with a given scale and
 * min: the merge of a uint8/uint16 weight is written back under the first model's manifest entry,
 * so its scale and min stay; codes are rounded to nearest and clamped to the dtype's range (Wasm
 * kernel affine_quantize). uint16 codes are little-endian, as in the shard.
 */
import { quantKernels } from './ggml-kernels.ts';

export function quantizeAffine(bits: 8 | 16, scale: number, min: number, x: Float32Array): Uint8Array {
  return quantKernels().quantizeAffine(bits, scale, min, x);
}
