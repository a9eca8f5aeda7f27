// git-theta numeric kernels. Entry point: re-exports every kernel module.
// Memory contract: the host owns all linear memory from heapBase() upward and passes pointers +
// lengths; kernels never allocate. The module imports nothing but `abort`.

export function heapBase(): usize {
  return (__heap_base + 63) & ~63;
}

/** 1 when this build uses SIMD, 0 for the scalar build (lets the host report which one it loaded). */
export function simdEnabled(): i32 {
  return ASC_FEATURE_SIMD ? 1 : 0;
}

export * from './convert';
export * from './elementwise';
export * from './ties';
export * from './sparse';
export * from './lowrank';
export * from './quant';
export * from './stats';
export * from './lsh';
export * from './hash';
export * from './crc32';
export * from './blosc';
export * from './ggml-dequant';
export * from './ggml-quant';
