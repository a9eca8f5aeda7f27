/**
 * The Wasm side of blosc decoding (assembly/blosc.ts): LZ4 blocks and the byte and bit unshuffles
 * run in the kernel module (SIMD build where the runtime has SIMD, else the scalar one). One
 * instance of its own, so its memory layout is independent of the numeric kernels': input at the
 * heap base, output after it, memory grown to fit the largest block seen.
 */
import { defaultVariant, instantiateKernels, kernelExports, type KernelVariant } from '../../core/wasm.ts';
import { PyThetaFormatError } from './errors.ts';

export interface BloscKernels {
  readonly variant: KernelVariant;
  lz4(src: Uint8Array, size: number, where: string): Uint8Array;
  byteUnshuffle(src: Uint8Array, ts: number): Uint8Array;
  bitUnshuffle(src: Uint8Array, ts: number): Uint8Array;
}

const PAGE = 65536;
const LZ4_ERRORS: Record<number, string> = {
  [-1]: 'it runs past its input',
  [-2]: 'it runs past the output',
  [-3]: 'a match offset reaches before the start of the output',
  [-4]: 'it decodes to fewer bytes than the block holds',
};

export async function createBloscKernels(variant: KernelVariant = defaultVariant()): Promise<BloscKernels> {
  const inst = await instantiateKernels(variant);
  const x = kernelExports(inst);
  const base = x.heapBase();
  const room = (bytes: number) => {
    const need = base + bytes - x.memory.buffer.byteLength;
    if (need > 0) x.memory.grow(Math.ceil(need / PAGE));
  };
  /** Copy `src` in at the heap base; the output area follows it (64-byte aligned). */
  const place = (src: Uint8Array, outBytes: number): number => {
    const out = base + ((src.length + 63) & ~63);
    room(out - base + outBytes);
    new Uint8Array(x.memory.buffer, base, src.length).set(src);
    return out;
  };
  const take = (at: number, n: number) => new Uint8Array(x.memory.buffer, at, n).slice();
  return {
    variant,
    lz4(src, size, where) {
      const out = place(src, size);
      const r = x.lz4_decode_block(base, src.length, out, size);
      if (r !== size) {
        throw new PyThetaFormatError(`${where}: corrupt LZ4 block (${LZ4_ERRORS[r] ?? `code ${r}`}); the object is damaged — fetch it again`, { where });
      }
      return take(out, size);
    },
    byteUnshuffle(src, ts) {
      const out = place(src, src.length);
      x.byte_unshuffle(base, out, src.length, ts);
      return take(out, src.length);
    },
    bitUnshuffle(src, ts) {
      const n = Math.floor(src.length / ts);
      if (n % 8) return src; // stored as is (FORMAT.md §6)
      const out = place(src, src.length);
      x.bit_unshuffle(base, out, src.length, ts);
      return take(out, src.length);
    },
  };
}

let shared: Promise<BloscKernels> | null = null;

/** The instance the decoders use by default (created once). */
export function getBloscKernels(): Promise<BloscKernels> {
  return (shared ??= createBloscKernels());
}
