// git-theta library entry: runtime-neutral (Node, Deno, browsers).
export * from './core/errors.ts';
export * from './core/dtypes.ts';
export * from './core/io.ts';
export { simdSupported, instantiateKernels, type KernelVariant } from './core/wasm.ts';
