/** Deterministic test data shared by test files (same values in every runtime). */

/** n float32 values in [-0.5, 0.5) from a linear congruential sequence started at `seed`. */
export function lcgFloats(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    a[i] = x / 2147483648 - 0.5;
  }
  return a;
}
