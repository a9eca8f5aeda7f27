/**
 * TF.js affine quantization (`quantization: {dtype: 'uint8' | 'uint16', scale, min}` in a weights
 * manifest: value = code·scale + min) as a `TensorQuantization`: how its codes are read as float32
 * and how float32 values are written back as codes with the same scale and min. Shared by the
 * whole-model reader (tfjs.ts), the per-shard reader (tfjs-shard.ts) and merges, which rebuild each
 * side's mapping from the `quant` its metadata entry recorded.
 */
import { quantizeAffine } from '../core/quantize-affine.ts';
import { dequantizerFor, type QuantInfo } from './dequantize.ts';
import type { TensorQuantization } from './types.ts';

export interface TfjsAffine {
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
}

/** The mapping of a uint8/uint16 weight (undefined for float16, which is a plain dtype, or for none). */
export function tfjsAffine(q: TfjsAffine | undefined, shape: readonly number[]): TensorQuantization | undefined {
  if (!q || (q.dtype !== 'uint8' && q.dtype !== 'uint16') || typeof q.scale !== 'number' || typeof q.min !== 'number') return undefined;
  const scheme = `tfjs:${q.dtype}`;
  const { scale, min } = q;
  const bits = q.dtype === 'uint8' ? 8 : 16;
  return { scheme, shape: shape.slice(), dequantizer: dequantizerFor({ scheme, scale, min }), scale, min, quantize: (v: Float32Array) => quantizeAffine(bits, scale, min, v) };
}

/** The mapping a metadata entry recorded (`tfjs:uint8` / `tfjs:uint16` with scale and min), or undefined. */
export function tfjsAffineOfInfo(info: QuantInfo | undefined): TensorQuantization | undefined {
  const m = info && /^tfjs:(uint8|uint16)$/.exec(info.scheme);
  return m ? tfjsAffine({ dtype: m[1] as 'uint8' | 'uint16', scale: info!.scale, min: info!.min }, info!.shape) : undefined;
}
