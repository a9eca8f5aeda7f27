/**
 * Quantizing float32 values into TF.js affine codes (value = q·scale + min) with a given scale and
 * min: the merge of a uint8/uint16 weight is written back under the first model's manifest entry,
 * so its scale and min stay; codes are rounded to nearest and clamped to the dtype's range.
 */
import { ArgumentError } from './errors.ts';

export function quantizeAffine(bits: 8 | 16, scale: number, min: number, x: Float32Array): Uint8Array {
  if (!(scale > 0) || !Number.isFinite(scale) || !Number.isFinite(min)) throw new ArgumentError(`affine quantization needs a finite positive scale and a finite min (got ${scale}, ${min})`);
  const top = bits === 8 ? 255 : 65535;
  const q = bits === 8 ? new Uint8Array(x.length) : new Uint16Array(x.length);
  const id = 1 / scale;
  for (let i = 0; i < x.length; i++) {
    const k = Math.round((x[i] - min) * id);
    q[i] = k < 0 ? 0 : k > top ? top : k;
  }
  // uint16 codes are little-endian in the shard (every platform we run on is little-endian)
  return new Uint8Array(q.buffer, 0, q.byteLength);
}
