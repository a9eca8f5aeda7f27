// LSH signatures (E2LSH style) in two stages, built only from exactly rounded operations and a
// counter-based splitmix64 generator, so signatures are bit-identical in every runtime and in
// both builds.
//
// Stage 1 (streaming, memory-bound): a count-sketch of the tensor into D buckets (D a power of two
// dividing POOL): element i goes to bucket i % D with sign pool[i % POOL] XOR blockSign(i / POOL).
// The pool holds POOL sign masks (0 or 0x80000000) so SIMD flips signs with one xor; the per-block
// sign makes elements POOL apart independent. Non-finite values count as 0. Accumulators are f64
// and each bucket sums its elements in element order, so chunking never changes the result.
// Stage 2 (once): p_k = sum_j r_kj * c_j with Rademacher r_kj = ±1 (k < S, j < D).
// Then E[(p_k(a) - p_k(b))^2] = ||a - b||^2, and sqrt(mean_k (p_k(a) - p_k(b))^2) estimates the L2
// distance.
//
// LSH state: u64 elements seen @0, then f64 acc[D] @LSH_ACC_OFFSET.

export const LSH_POOL: usize = 4096;
const LOG_POOL: u64 = 12;
export const LSH_ACC_OFFSET: usize = 64;

const GOLDEN: u64 = 0x9e3779b97f4a7c15;
const STREAM_POOL: u64 = 0x243f6a8885a308d3;
const STREAM_BLOCK: u64 = 0x13198a2e03707344;
const STREAM_PROJ: u64 = 0xa4093822299f31d0;
const STREAM_OFFSET: u64 = 0x082efa98ec4e6c89;

@inline function mix64(z: u64): u64 {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

@inline function streamKey(seed: u32, stream: u64): u64 {
  return mix64((<u64>seed) * GOLDEN ^ stream);
}

/** The i-th 64-bit value of a stream (counter-based splitmix64). */
@inline function rnd(key: u64, i: u64): u64 {
  return mix64(key + (i + 1) * GOLDEN);
}

/** Fills pool[0..LSH_POOL) with sign masks for `seed`. */
export function lsh_pool_init(pool: usize, seed: u32): void {
  const key = streamKey(seed, STREAM_POOL);
  for (let i: usize = 0; i < LSH_POOL; i++) store<u32>(pool + (i << 2), <u32>(rnd(key, i) >> 63) << 31);
}

/** Feeds n f32 values at x into the sketch (state: see above; d: buckets, power of two <= LSH_POOL). */
export function lsh_update(st: usize, pool: usize, x: usize, n: usize, d: usize, seed: u32): void {
  let cnt = load<u64>(st);
  const acc = st + LSH_ACC_OFFSET;
  const bkey = streamKey(seed, STREAM_BLOCK);
  while (n > 0) {
    const j = <usize>(cnt & (LSH_POOL - 1));
    const b = j & (d - 1);
    let len = d - b;
    if (len > n) len = n;
    const bm = <u32>(rnd(bkey, cnt >> LOG_POOL) >> 63) << 31;
    const pp = pool + (j << 2);
    const pa = acc + (b << 3);
    let k: usize = 0;
    if (ASC_FEATURE_SIMD) {
      const bmv = i32x4.splat(bm);
      const inf = f32x4.splat(Infinity);
      for (; k + 8 <= len; k += 8) {
        const ox = x + (k << 2), op = pp + (k << 2), oa = pa + (k << 3);
        let v0 = v128.load(ox), v1 = v128.load(ox, 16);
        v0 = v128.and(v128.xor(v0, v128.xor(v128.load(op), bmv)), f32x4.lt(f32x4.abs(v0), inf));
        v1 = v128.and(v128.xor(v1, v128.xor(v128.load(op, 16), bmv)), f32x4.lt(f32x4.abs(v1), inf));
        v128.store(oa, f64x2.add(v128.load(oa), f64x2.promote_low_f32x4(v0)));
        v128.store(oa, f64x2.add(v128.load(oa, 16), f64x2.promote_low_f32x4(i64x2.shuffle(v0, v0, 1, 1))), 16);
        v128.store(oa, f64x2.add(v128.load(oa, 32), f64x2.promote_low_f32x4(v1)), 32);
        v128.store(oa, f64x2.add(v128.load(oa, 48), f64x2.promote_low_f32x4(i64x2.shuffle(v1, v1, 1, 1))), 48);
      }
    }
    for (; k < len; k++) {
      let u = load<u32>(x + (k << 2));
      if ((u & 0x7fffffff) >= 0x7f800000) u = 0;
      else u ^= load<u32>(pp + (k << 2)) ^ bm;
      const oa = pa + (k << 3);
      store<f64>(oa, load<f64>(oa) + <f64>reinterpret<f32>(u));
    }
    x += len << 2;
    n -= len;
    cnt += len;
  }
  store<u64>(st, cnt);
}

/** out[k] = f32(sum_j r_kj * acc[j]) for k < s, r_kj = ±1 from the projection stream of `seed`. */
export function lsh_project(st: usize, d: usize, s: usize, seed: u32, out: usize): void {
  const key = streamKey(seed, STREAM_PROJ);
  const acc = st + LSH_ACC_OFFSET;
  for (let k: usize = 0; k < s; k++) {
    let p: f64 = 0;
    for (let j: usize = 0; j < d; j += 64) {
      const bits = rnd(key, <u64>(k * (d >> 6) + (j >> 6)) );
      const lim = j + 64 < d ? j + 64 : d;
      for (let t = j; t < lim; t++) {
        const c = load<f64>(acc + (t << 3));
        p = ((bits >> <u64>(t - j)) & 1) != 0 ? p - c : p + c;
      }
    }
    store<f32>(out + (k << 2), <f32>p);
  }
}

/** out[k] = uniform [0, 1) f64 offsets for E2LSH buckets, k < s. */
export function lsh_offsets(seed: u32, s: usize, out: usize): void {
  const key = streamKey(seed, STREAM_OFFSET);
  for (let k: usize = 0; k < s; k++) store<f64>(out + (k << 3), <f64>(rnd(key, k) >> 11) * 1.1102230246251565e-16);
}
