/**
 * Dequantization: the one path from a quantized tensor's stored bytes to the float32 values it
 * stands for, used by everything that shows numbers (`inspect`, `diff`, textconv, `log`, merge
 * reports, the page), so a diff's numbers are those `inspect` shows. Runtime-neutral.
 *
 * Schemes (`QuantInfo.scheme`):
 *
 * - `ggml:<type>`: ggml's block formats as ggml defines them (ggml-common.h block structs and
 *   ggml-quants.c `dequantize_row_*`): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 (32 values per block) and
 *   the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K (256 values per super-block), decoded by the
 *   Wasm kernels (assembly/ggml-dequant.ts through core/ggml-kernels.ts). Every product and sum is
 *   rounded to float32 in ggml's order of operations, so the values are the ones ggml's C code
 *   computes. Other ggml types (IQ*, TQ*, MXFP4) have no dequantizer here and are reported
 *   without statistics.
 * - `tfjs:uint8`, `tfjs:uint16`: TF.js affine quantization, x = q·scale + min (TF.js computes it in
 *   double precision and stores float32, as here).
 */
import { FormatError } from '../core/errors.ts';
import { concat } from '../core/io.ts';
import { f16BitsToF32 } from '../core/quantize-ggml.ts';
import { GGML_BLOCK_SHAPES, GGML_DEQUANTIZABLE, quantKernels, type QuantKernels } from '../core/ggml-kernels.ts';
import type { StatsDequantizer } from './types.ts';

/** What a quantized tensor is, as recorded in metadata and carried to diffs. */
export interface QuantInfo {
  /** 'ggml:Q8_0', 'ggml:Q4_K', 'tfjs:uint8', ... */
  scheme: string;
  /** Logical shape of the values (C order: the last dimension varies fastest). */
  shape: number[];
  /** TF.js affine parameters. */
  scale?: number;
  min?: number;
}

/** IEEE half to number (exact). */
export const f16ToNumber: (h: number) => number = f16BitsToF32;

/**
 * A streaming dequantizer over whole units of `unit` bytes (a ggml block, a uint16 code): a unit
 * split between two pushes waits for the next one; bytes left at the end are an error.
 */
function unitDequantizer(
  scheme: string, unit: number, decode: (k: QuantKernels, whole: Uint8Array) => Float32Array, leftover: (n: number) => string,
): () => StatsDequantizer {
  return () => {
    const k = quantKernels();
    let carry = new Uint8Array(0);
    return {
      push(bytes) {
        const all = carry.length ? concat([carry, bytes]) : bytes;
        const whole = all.length - (all.length % unit);
        const out = decode(k, all.subarray(0, whole));
        carry = all.slice(whole);
        return out;
      },
      finish() {
        if (carry.length) throw new FormatError(`${scheme}: ${leftover(carry.length)}`, { scheme });
        return new Float32Array(0);
      },
    };
  };
}

function blockDequantizer(scheme: string, type: string): () => StatsDequantizer {
  return unitDequantizer(scheme, GGML_BLOCK_SHAPES[type][1], (k, b) => k.dequantize(type, b), (n) => `${n} bytes left over, not a whole block`);
}

function affineDequantizer(scheme: string, item: 1 | 2, scale: number, min: number): () => StatsDequantizer {
  return unitDequantizer(scheme, item, (k, b) => k.dequantizeAffine(item === 1 ? 8 : 16, scale, min, b), () => 'an odd number of bytes for 2-byte values');
}

/** A streaming dequantizer for this scheme, or undefined when its values cannot be computed here. */
export function dequantizerFor(q: Pick<QuantInfo, 'scheme' | 'scale' | 'min'>): (() => StatsDequantizer) | undefined {
  if (q.scheme.startsWith('ggml:')) {
    const type = q.scheme.slice(5);
    return GGML_DEQUANTIZABLE.includes(type) ? blockDequantizer(q.scheme, type) : undefined;
  }
  if ((q.scheme === 'tfjs:uint8' || q.scheme === 'tfjs:uint16') && typeof q.scale === 'number' && typeof q.min === 'number') {
    return affineDequantizer(q.scheme, q.scheme === 'tfjs:uint8' ? 1 : 2, q.scale, q.min);
  }
  return undefined;
}

/** All values of a quantized tensor's bytes at once, or undefined when the scheme has no dequantizer. */
export function dequantizeBytes(q: QuantInfo, bytes: Uint8Array): Float32Array | undefined {
  const make = dequantizerFor(q);
  if (!make) return undefined;
  const d = make();
  const v = d.push(bytes);
  d.finish();
  return v;
}

/**
 * How a quantized tensor's type is shown: the ggml type name (`Q8_0`, `Q4_K`), or for TF.js
 * `uint8→float32 (affine)`.
 */
export function quantLabel(scheme: string): string {
  if (scheme.startsWith('ggml:')) return scheme.slice(5);
  const m = /^tfjs:(uint8|uint16)$/.exec(scheme);
  if (m) return `${m[1]}→float32 (affine)`;
  return scheme;
}

/** Two tensors' quantizations describe the same mapping from bytes to values. */
export function sameQuant(a: QuantInfo | undefined, b: QuantInfo | undefined): boolean {
  if (!a || !b) return a === b;
  return a.scheme === b.scheme && a.scale === b.scale && a.min === b.min && a.shape.length === b.shape.length && a.shape.every((x, i) => x === b.shape[i]);
}
