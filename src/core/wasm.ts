/**
 * Loading the kernel module, identically in Node, Deno and browsers. Both builds (SIMD and scalar)
 * are embedded as base64 by scripts/build.mjs, so no file or network access is needed. The SIMD
 * build is chosen when `WebAssembly.validate` accepts a tiny v128 module, else the scalar build.
 * The exports' types (`KernelExports`) are generated with the embedded builds from asc's
 * declarations for assembly/ (scripts/kernel-exports.mjs): hosts read exports only through them.
 */
import { SIMD_WASM_BASE64, SCALAR_WASM_BASE64, type KernelExports } from '../../build/gen/kernels-wasm.ts';

export type { KernelExports, KernelFunctionName } from '../../build/gen/kernels-wasm.ts';

export type KernelVariant = 'simd' | 'scalar';

// (module (func (result v128) v128.const i32x4 0 0 0 0))
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03,
  0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b,
]);

export function simdSupported(): boolean {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const moduleCache = new Map<KernelVariant, Promise<WebAssembly.Module>>();

export function kernelModuleBytes(variant: KernelVariant): Uint8Array {
  return decodeBase64(variant === 'simd' ? SIMD_WASM_BASE64 : SCALAR_WASM_BASE64);
}

export function defaultVariant(): KernelVariant {
  return simdSupported() ? 'simd' : 'scalar';
}

export async function compileKernels(variant: KernelVariant = defaultVariant()): Promise<WebAssembly.Module> {
  let m = moduleCache.get(variant);
  if (!m) {
    m = WebAssembly.compile(kernelModuleBytes(variant) as BufferSource);
    moduleCache.set(variant, m);
  }
  return m;
}

/** A fresh instance (each owns its own linear memory). */
export async function instantiateKernels(variant: KernelVariant = defaultVariant()): Promise<WebAssembly.Instance> {
  const mod = await compileKernels(variant);
  return WebAssembly.instantiate(mod, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new Error(`kernel abort at ${line}:${col}`);
      },
    },
  });
}

/** The exports of a kernel instance, typed (both builds export the same names; the build checks it). */
export function kernelExports(inst: WebAssembly.Instance): KernelExports {
  return inst.exports as unknown as KernelExports;
}
