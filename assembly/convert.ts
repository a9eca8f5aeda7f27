// Dtype conversion kernels: F16/BF16/F64 <-> F32 and integer widening.
// All take (src, dst, n) with n elements; src and dst must not overlap unless equal-sized in place.
// Rounding: round to nearest even. NaN stays NaN (quiet bit set, payload kept where it fits),
// ±Inf, subnormals and -0 are preserved. Same results in the SIMD and scalar builds.

// 2^112 as f32 bits: scales an f16 bit pattern shifted into f32 position to its value.
const F16_MAGIC: u32 = 0x77800000;
// Giesen's round-to-nearest-even float->half constants.
const F16_OVERFLOW: u32 = 0x47800000; // 65536.0: at or above rounds to Inf
const F16_MIN_NORMAL: u32 = 0x38800000; // 2^-14: below is subnormal (or zero) in f16
const F16_DENORM_MAGIC: u32 = 0x3f000000; // 0.5
const F16_REBIAS: u32 = 0xc8000fff; // ((15-127) << 23) + 0xfff

@inline function h2f(h: u32): u32 {
  const s = (h & 0x8000) << 16;
  const em = h & 0x7fff;
  if (em >= 0x7c00) return s | 0x7f800000 | ((em & 0x3ff) << 13);
  return s | reinterpret<u32>(reinterpret<f32>(em << 13) * reinterpret<f32>(F16_MAGIC));
}

@inline function f2h(x: u32): u32 {
  const s = (x >> 16) & 0x8000;
  const a = x & 0x7fffffff;
  let o: u32;
  if (a >= F16_OVERFLOW) {
    o = a > 0x7f800000 ? 0x7e00 | ((a >> 13) & 0x3ff) : 0x7c00;
  } else if (a < F16_MIN_NORMAL) {
    o = reinterpret<u32>(reinterpret<f32>(a) + reinterpret<f32>(F16_DENORM_MAGIC)) - F16_DENORM_MAGIC;
  } else {
    o = (a + F16_REBIAS + ((a >> 13) & 1)) >> 13;
  }
  return o | s;
}

@inline function bf2f(h: u32): u32 {
  return h << 16;
}

@inline function f2bf(x: u32): u32 {
  if ((x & 0x7fffffff) > 0x7f800000) return (x >> 16) | 0x40;
  return (x + 0x7fff + ((x >> 16) & 1)) >> 16;
}

// ---- SIMD helpers (only compiled into the SIMD build) ----

@inline function h2f_v(x: v128): v128 {
  const s = i32x4.shl(v128.and(x, i32x4.splat(0x8000)), 16);
  const em = v128.and(x, i32x4.splat(0x7fff));
  const sh = i32x4.shl(em, 13);
  const fin = f32x4.mul(sh, f32x4.splat(reinterpret<f32>(F16_MAGIC)));
  const spec = v128.or(sh, i32x4.splat(0x7f800000));
  const isSpecial = i32x4.gt_s(em, i32x4.splat(0x7bff));
  return v128.or(v128.bitselect(spec, fin, isSpecial), s);
}

@inline function f2h_v(x: v128): v128 {
  const s = v128.and(i32x4.shr_u(x, 16), i32x4.splat(0x8000));
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  const big = i32x4.ge_s(a, i32x4.splat(F16_OVERFLOW));
  const nan = i32x4.gt_s(a, i32x4.splat(0x7f800000));
  const sub = i32x4.lt_s(a, i32x4.splat(F16_MIN_NORMAL));
  const m13 = i32x4.shr_u(a, 13);
  const rnorm = i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(F16_REBIAS)), v128.and(m13, i32x4.splat(1))), 13);
  const rsub = i32x4.sub(f32x4.add(a, f32x4.splat(reinterpret<f32>(F16_DENORM_MAGIC))), i32x4.splat(F16_DENORM_MAGIC));
  const rbig = v128.bitselect(v128.or(v128.and(m13, i32x4.splat(0x3ff)), i32x4.splat(0x7e00)), i32x4.splat(0x7c00), nan);
  return v128.or(v128.bitselect(rbig, v128.bitselect(rsub, rnorm, sub), big), s);
}

@inline function f2bf_v(x: v128): v128 {
  const nan = i32x4.gt_u(v128.and(x, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  const hi = i32x4.shr_u(x, 16);
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(x, i32x4.splat(0x7fff)), v128.and(hi, i32x4.splat(1))), 16);
  return v128.bitselect(v128.or(hi, i32x4.splat(0x40)), rounded, nan);
}

export function f16_to_f32(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 16 <= n; i += 16) {
      const p = src + (i << 1), q = dst + (i << 2);
      const v0 = v128.load(p), v1 = v128.load(p, 16);
      v128.store(q, h2f_v(i32x4.extend_low_i16x8_u(v0)));
      v128.store(q, h2f_v(i32x4.extend_high_i16x8_u(v0)), 16);
      v128.store(q, h2f_v(i32x4.extend_low_i16x8_u(v1)), 32);
      v128.store(q, h2f_v(i32x4.extend_high_i16x8_u(v1)), 48);
    }
  }
  for (; i < n; i++) store<u32>(dst + (i << 2), h2f(<u32>load<u16>(src + (i << 1))));
}

export function f32_to_f16(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 16 <= n; i += 16) {
      const p = src + (i << 2), q = dst + (i << 1);
      const a = f2h_v(v128.load(p)), b = f2h_v(v128.load(p, 16));
      const c = f2h_v(v128.load(p, 32)), d = f2h_v(v128.load(p, 48));
      v128.store(q, i16x8.narrow_i32x4_u(a, b));
      v128.store(q, i16x8.narrow_i32x4_u(c, d), 16);
    }
  }
  for (; i < n; i++) store<u16>(dst + (i << 1), <u16>f2h(load<u32>(src + (i << 2))));
}

export function bf16_to_f32(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const z = i32x4.splat(0);
    for (; i + 16 <= n; i += 16) {
      const p = src + (i << 1), q = dst + (i << 2);
      const v0 = v128.load(p), v1 = v128.load(p, 16);
      v128.store(q, i16x8.shuffle(z, v0, 0, 8, 1, 9, 2, 10, 3, 11));
      v128.store(q, i16x8.shuffle(z, v0, 4, 12, 5, 13, 6, 14, 7, 15), 16);
      v128.store(q, i16x8.shuffle(z, v1, 0, 8, 1, 9, 2, 10, 3, 11), 32);
      v128.store(q, i16x8.shuffle(z, v1, 4, 12, 5, 13, 6, 14, 7, 15), 48);
    }
  }
  for (; i < n; i++) store<u32>(dst + (i << 2), bf2f(<u32>load<u16>(src + (i << 1))));
}

export function f32_to_bf16(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 16 <= n; i += 16) {
      const p = src + (i << 2), q = dst + (i << 1);
      const a = f2bf_v(v128.load(p)), b = f2bf_v(v128.load(p, 16));
      const c = f2bf_v(v128.load(p, 32)), d = f2bf_v(v128.load(p, 48));
      v128.store(q, i16x8.narrow_i32x4_u(a, b));
      v128.store(q, i16x8.narrow_i32x4_u(c, d), 16);
    }
  }
  for (; i < n; i++) store<u16>(dst + (i << 1), <u16>f2bf(load<u32>(src + (i << 2))));
}

export function f64_to_f32(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 8 <= n; i += 8) {
      const p = src + (i << 3), q = dst + (i << 2);
      const a = f32x4.demote_f64x2_zero(v128.load(p)), b = f32x4.demote_f64x2_zero(v128.load(p, 16));
      const c = f32x4.demote_f64x2_zero(v128.load(p, 32)), d = f32x4.demote_f64x2_zero(v128.load(p, 48));
      v128.store(q, i64x2.shuffle(a, b, 0, 2));
      v128.store(q, i64x2.shuffle(c, d, 0, 2), 16);
    }
  }
  for (; i < n; i++) store<f32>(dst + (i << 2), <f32>load<f64>(src + (i << 3)));
}

export function f32_to_f64(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 8 <= n; i += 8) {
      const p = src + (i << 2), q = dst + (i << 3);
      const a = v128.load(p), b = v128.load(p, 16);
      v128.store(q, f64x2.promote_low_f32x4(a));
      v128.store(q, f64x2.promote_low_f32x4(i64x2.shuffle(a, a, 1, 1)), 16);
      v128.store(q, f64x2.promote_low_f32x4(b), 32);
      v128.store(q, f64x2.promote_low_f32x4(i64x2.shuffle(b, b, 1, 1)), 48);
    }
  }
  for (; i < n; i++) store<f64>(dst + (i << 3), <f64>load<f32>(src + (i << 2)));
}

// Integer widening (exact for every value of the listed types except 32/64-bit ints to f32 and
// 64-bit ints to f64 beyond 2^53, which round to nearest even).
@inline function widen<S, D>(src: usize, dst: usize, n: usize): void {
  for (let i: usize = 0; i < n; i++) store<D>(dst + i * sizeof<D>(), <D>load<S>(src + i * sizeof<S>()));
}
export function i8_to_f32(s: usize, d: usize, n: usize): void { widen<i8, f32>(s, d, n); }
export function u8_to_f32(s: usize, d: usize, n: usize): void { widen<u8, f32>(s, d, n); }
export function i16_to_f32(s: usize, d: usize, n: usize): void { widen<i16, f32>(s, d, n); }
export function u16_to_f32(s: usize, d: usize, n: usize): void { widen<u16, f32>(s, d, n); }
export function i32_to_f32(s: usize, d: usize, n: usize): void { widen<i32, f32>(s, d, n); }
export function u32_to_f32(s: usize, d: usize, n: usize): void { widen<u32, f32>(s, d, n); }
export function i64_to_f32(s: usize, d: usize, n: usize): void { widen<i64, f32>(s, d, n); }
export function u64_to_f32(s: usize, d: usize, n: usize): void { widen<u64, f32>(s, d, n); }
export function i32_to_f64(s: usize, d: usize, n: usize): void { widen<i32, f64>(s, d, n); }
export function u32_to_f64(s: usize, d: usize, n: usize): void { widen<u32, f64>(s, d, n); }
export function i64_to_f64(s: usize, d: usize, n: usize): void { widen<i64, f64>(s, d, n); }
export function u64_to_f64(s: usize, d: usize, n: usize): void { widen<u64, f64>(s, d, n); }
