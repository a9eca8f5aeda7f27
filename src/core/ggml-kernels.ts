/**
 * The quantization kernels host: ggml block types and TF.js affine codes to float32 and back,
 * through the Wasm kernels of assembly/ggml-dequant.ts and assembly/ggml-quant.ts (SIMD or scalar
 * build), piece by piece through a bounded scratch area, so any tensor size needs the same small
 * Wasm memory. Web-standard APIs only.
 *
 * The callers (streaming dequantizers, `TensorQuantization.quantize`) are synchronous, so this
 * module owns its own small instance of the kernel module, compiled synchronously on first use
 * (the module is ~30 KB; every runtime we run in allows that, the browser main thread included).
 *
 * Memory: [0, heapBase) static data; SCRATCH = heapBase .. heapBase + SCRATCH_BYTES (4 MiB),
 * split per call into an input and an output part.
 */
import { ArgumentError } from './errors.ts';
import { type KernelExports, type KernelVariant, defaultVariant, kernelExports, kernelModuleBytes } from './wasm.ts';

/** ggml type ids (ggml.h) of the block types the kernels read; all but Q8_1 are also written. */
export const GGML_TYPE_IDS: Record<string, number> = {
  Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
};
/** [values per block, bytes per block] of each type. */
export const GGML_BLOCK_SHAPES: Record<string, readonly [number, number]> = {
  Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24], Q8_0: [32, 34], Q8_1: [32, 36],
  Q2_K: [256, 84], Q3_K: [256, 110], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210], Q8_K: [256, 292],
};
/** ggml types the kernels dequantize. */
export const GGML_DEQUANTIZABLE: readonly string[] = Object.keys(GGML_TYPE_IDS);
/** ggml types the kernels quantize (write). */
export const GGML_WRITABLE: readonly string[] = GGML_DEQUANTIZABLE.filter((t) => t !== 'Q8_1');

const SCRATCH_BYTES = 4 << 20;

export class QuantKernels {
  private readonly x: KernelExports;
  private readonly memory: WebAssembly.Memory;
  private readonly scratch: number;

  constructor(readonly variant: KernelVariant) {
    const mod = new WebAssembly.Module(kernelModuleBytes(variant) as BufferSource);
    const inst = new WebAssembly.Instance(mod, {
      env: {
        abort(_msg: number, _file: number, line: number, col: number) {
          throw new Error(`kernel abort at ${line}:${col}`);
        },
      },
    });
    this.x = kernelExports(inst);
    this.memory = inst.exports.memory as WebAssembly.Memory;
    this.scratch = Math.ceil(this.x.heapBase() / 64) * 64;
    const need = this.scratch + SCRATCH_BYTES;
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / 65536));
  }

  private blockShape(type: string, write: boolean): [number, number, number] {
    const id = GGML_TYPE_IDS[type];
    if (id === undefined || (write && type === 'Q8_1')) {
      throw new ArgumentError(`cannot ${write ? 'quantize into' : 'dequantize'} ggml ${type}; supported: ${(write ? GGML_WRITABLE : GGML_DEQUANTIZABLE).join(', ')}`, { type });
    }
    const [per, size] = GGML_BLOCK_SHAPES[type];
    return [id, per, size];
  }

  /** Values of whole ggml blocks (bytes.length a multiple of the block size). */
  dequantize(type: string, bytes: Uint8Array, out?: Float32Array): Float32Array {
    const [id, per, size] = this.blockShape(type, false);
    if (bytes.length % size) throw new ArgumentError(`ggml ${type}: ${bytes.length} bytes is not a whole number of ${size}-byte blocks`, { type });
    const blocks = bytes.length / size;
    const y = out ?? new Float32Array(blocks * per);
    if (y.length < blocks * per) throw new ArgumentError(`ggml ${type}: output holds ${y.length} values, need ${blocks * per}`);
    const piece = Math.floor((SCRATCH_BYTES - 64) / (size + per * 4));
    const inAt = this.scratch;
    for (let b = 0; b < blocks; b += piece) {
      const n = Math.min(piece, blocks - b);
      const outAt = inAt + align64(n * size);
      new Uint8Array(this.memory.buffer, inAt, n * size).set(bytes.subarray(b * size, (b + n) * size));
      this.x.ggml_dequantize(id, inAt, n, outAt);
      y.set(new Float32Array(this.memory.buffer, outAt, n * per), b * per);
    }
    return y;
  }

  /** Float32 values (a multiple of the block's value count) into ggml blocks of `type`. */
  quantize(type: string, values: Float32Array): Uint8Array {
    const [id, per, size] = this.blockShape(type, true);
    if (values.length % per) throw new ArgumentError(`ggml ${type}: ${values.length} values is not a whole number of ${per}-value blocks`, { type });
    const blocks = values.length / per;
    const out = new Uint8Array(blocks * size);
    const piece = Math.floor((SCRATCH_BYTES - 64) / (size + per * 4 + 64));
    const inAt = this.scratch;
    for (let b = 0; b < blocks; b += piece) {
      const n = Math.min(piece, blocks - b);
      const outAt = inAt + align64(n * per * 4);
      new Float32Array(this.memory.buffer, inAt, n * per).set(values.subarray(b * per, (b + n) * per));
      this.x.ggml_quantize(id, inAt, n, outAt);
      out.set(new Uint8Array(this.memory.buffer, outAt, n * size), b * size);
    }
    return out;
  }

  /** TF.js affine codes (u8, or little-endian u16 for bits 16) → f32(q·scale + min), computed in f64. */
  dequantizeAffine(bits: 8 | 16, scale: number, min: number, bytes: Uint8Array): Float32Array {
    const item = bits / 8;
    if (bytes.length % item) throw new ArgumentError(`affine uint16: ${bytes.length} bytes is not a whole number of 2-byte codes`);
    const n = bytes.length / item;
    const y = new Float32Array(n);
    const piece = Math.floor((SCRATCH_BYTES - 64) / (item + 4) / 64) * 64;
    const inAt = this.scratch;
    for (let i = 0; i < n; i += piece) {
      const k = Math.min(piece, n - i);
      const outAt = inAt + align64(k * item);
      new Uint8Array(this.memory.buffer, inAt, k * item).set(bytes.subarray(i * item, (i + k) * item));
      this.x.affine_dequantize(bits, inAt, k, scale, min, outAt);
      y.set(new Float32Array(this.memory.buffer, outAt, k), i);
    }
    return y;
  }

  /** Float32 values → TF.js affine codes round((x − min)/scale), clamped to the dtype's range. */
  quantizeAffine(bits: 8 | 16, scale: number, min: number, values: Float32Array): Uint8Array {
    if (!(scale > 0) || !Number.isFinite(scale) || !Number.isFinite(min)) throw new ArgumentError(`affine quantization needs a finite positive scale and a finite min (got ${scale}, ${min})`);
    const item = bits / 8;
    const out = new Uint8Array(values.length * item);
    const piece = Math.floor((SCRATCH_BYTES - 64) / (item + 4) / 64) * 64;
    const inAt = this.scratch;
    for (let i = 0; i < values.length; i += piece) {
      const k = Math.min(piece, values.length - i);
      const outAt = inAt + align64(k * 4);
      new Float32Array(this.memory.buffer, inAt, k).set(values.subarray(i, i + k));
      this.x.affine_quantize(bits, inAt, k, scale, min, outAt);
      out.set(new Uint8Array(this.memory.buffer, outAt, k * item), i * item);
    }
    return out;
  }
}

const align64 = (n: number) => Math.ceil(n / 64) * 64;

const instances = new Map<KernelVariant, QuantKernels>();

/** The shared quantization kernels of this build variant (default: SIMD when supported), created on first use. */
export function quantKernels(variant: KernelVariant = defaultVariant()): QuantKernels {
  let k = instances.get(variant);
  if (!k) {
    k = new QuantKernels(variant);
    instances.set(variant, k);
  }
  return k;
}
