/**
 * Quantizing float32 values into ggml blocks (the byte layouts ggml defines): Q8_0, Q4_0, Q4_1,
 * Q5_0 and Q5_1, 32 values per block, by the Wasm kernels (assembly/ggml-quant.ts, which describes
 * how scales are chosen). Used when a merge writes a quantized GGUF tensor back in its own type.
 * Also IEEE half conversions for the readers.
 */
import { ArgumentError } from './errors.ts';
import { quantKernels } from './ggml-kernels.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float → IEEE half bits, round to nearest even (the conversion ggml uses). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let exp = e - 127 + 15;
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    m |= 0x800000;
    const shift = 14 - exp;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (exp << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

export function f16BitsToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const LEGACY = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1'];

/** Names of the ggml 32-value block types this file writes. */
export const GGML_QUANTIZABLE = LEGACY.slice();

/** Quantize float32 values (a multiple of 32) into blocks of ggml type `type` (Wasm kernels). */
export function quantizeGgml(type: string, x: Float32Array): Uint8Array {
  if (!LEGACY.includes(type)) throw new ArgumentError(`cannot quantize into ggml ${type}; supported: ${GGML_QUANTIZABLE.join(', ')}`);
  return quantKernels().quantize(type, x);
}
