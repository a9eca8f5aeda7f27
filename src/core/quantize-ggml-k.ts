/**
 * Quantizing float32 values into ggml K-quant super-blocks of 256 values (layouts as ggml defines
 * them): Q2_K, Q3_K (16 sub-blocks of 16 with 4-bit scales and mins / 6-bit signed scales), Q4_K,
 * Q5_K (8 sub-blocks of 32 with 6-bit scales and mins), Q6_K (16 sub-blocks of 16 with int8
 * scales) and Q8_K (f32 scale, int8 codes, int16 sums of 16), by the Wasm kernels
 * (assembly/ggml-quant.ts, which describes how scales are chosen to keep the error small).
 */
import { ArgumentError } from './errors.ts';
import { quantKernels } from './ggml-kernels.ts';

export const GGML_K_QUANTIZABLE = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K'];

/** Quantize float32 values (a multiple of 256) into K-quant super-blocks of ggml type `type`. */
export function quantizeGgmlK(type: string, x: Float32Array): Uint8Array {
  if (!GGML_K_QUANTIZABLE.includes(type)) throw new ArgumentError(`cannot quantize into ggml ${type}; K-quants supported: ${GGML_K_QUANTIZABLE.join(', ')}`);
  return quantKernels().quantize(type, x);
}
