// Dequantizing ggml blocks and TF.js affine codes to f32. Block layouts as ggml defines them
// (ggml-common.h); every product and sum is rounded to f32 in ggml's order of operations, so the
// values are the ones ggml's C code computes (and the same bits in the SIMD and scalar builds:
// SIMD lanes do the same f32 operations on exactly converted small integers).
//
// ggml type ids (ggml.h): Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q8_1 9, Q2_K 10, Q3_K 11,
// Q4_K 12, Q5_K 13, Q6_K 14, Q8_K 15.

/** IEEE half bits to f32 (exact). */
@inline export function halfToF32(h: u32): f32 {
  const s = (h & 0x8000) << 16;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e == 0) {
    const v = <f32>m * <f32>5.9604644775390625e-8; // m · 2^-24, exact
    return s ? -v : v;
  }
  if (e == 31) return reinterpret<f32>(s | 0x7f800000 | (m << 13));
  return reinterpret<f32>(s | ((e + 112) << 23) | (m << 13));
}

@inline function h16(p: usize): f32 {
  return halfToF32(<u32>load<u16>(p));
}

/** 16 bytes at p → four f32x4 of (byte − bias) · d, stored at out (SIMD only). */
@inline function storeBytesTimes(v: v128, bias: v128, d: v128, out: usize): void {
  const lo = i16x8.sub(i16x8.extend_low_i8x16_u(v), bias);
  const hi = i16x8.sub(i16x8.extend_high_i8x16_u(v), bias);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), d));
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), d), 16);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), d), 32);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), d), 48);
}

/** 16 bytes at p → four f32x4 of byte · d + m (u8 codes), stored at out (SIMD only). */
@inline function storeBytesAffine(v: v128, d: v128, m: v128, out: usize): void {
  const lo = i16x8.extend_low_i8x16_u(v), hi = i16x8.extend_high_i8x16_u(v);
  v128.store(out, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), d), m));
  v128.store(out, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), d), m), 16);
  v128.store(out, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), d), m), 32);
  v128.store(out, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), d), m), 48);
}

/** n signed bytes at q (n a multiple of 16) → f32 values d·q at y (Q8_0, Q8_1, Q8_K). */
@inline function scaleI8(q: usize, n: usize, d: f32, y: usize): void {
  if (ASC_FEATURE_SIMD) {
    const dv = f32x4.splat(d);
    for (let j: usize = 0; j < n; j += 16) {
      const v = v128.load(q + j);
      const lo = i16x8.extend_low_i8x16_s(v), hi = i16x8.extend_high_i8x16_s(v);
      const o = y + (j << 2);
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), dv));
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), dv), 16);
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), dv), 32);
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), dv), 48);
    }
  } else {
    for (let j: usize = 0; j < n; j++) store<f32>(y + (j << 2), d * <f32>load<i8>(q + j));
  }
}

// Q8_0 {f16 d; i8 qs[32]} (Q8_1 adds an f16 sum after d): x = d·q
function deqQ8_0(b: usize, y: usize, qs: usize): void {
  const d = h16(b);
  scaleI8(b + qs, 32, d, y);
}

// Q4_0 {f16 d; u8 qs[16]}: x[j] = d·((qs[j] & 15) − 8), x[j+16] = d·((qs[j] >> 4) − 8)
function deqQ4_0(b: usize, y: usize): void {
  const d = h16(b);
  if (ASC_FEATURE_SIMD) {
    const v = v128.load(b + 2);
    const mask = i8x16.splat(15), bias = i16x8.splat(8), dv = f32x4.splat(d);
    storeBytesTimes(v128.and(v, mask), bias, dv, y);
    storeBytesTimes(i8x16.shr_u(v, 4), bias, dv, y + 64);
  } else {
    for (let j: usize = 0; j < 16; j++) {
      const q = <i32>load<u8>(b + 2 + j);
      store<f32>(y + (j << 2), d * <f32>((q & 15) - 8));
      store<f32>(y + ((j + 16) << 2), d * <f32>((q >> 4) - 8));
    }
  }
}

// Q4_1 {f16 d; f16 m; u8 qs[16]}: x = d·q + m
function deqQ4_1(b: usize, y: usize): void {
  const d = h16(b), m = h16(b + 2);
  if (ASC_FEATURE_SIMD) {
    const v = v128.load(b + 4);
    const dv = f32x4.splat(d), mv = f32x4.splat(m);
    storeBytesAffine(v128.and(v, i8x16.splat(15)), dv, mv, y);
    storeBytesAffine(i8x16.shr_u(v, 4), dv, mv, y + 64);
  } else {
    for (let j: usize = 0; j < 16; j++) {
      const q = <i32>load<u8>(b + 4 + j);
      store<f32>(y + (j << 2), d * <f32>(q & 15) + m);
      store<f32>(y + ((j + 16) << 2), d * <f32>(q >> 4) + m);
    }
  }
}

// Q5_0 {f16 d; u8 qh[4]; u8 qs[16]} and Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: bit j of qh is
// the fifth bit of value j; Q5_0: x = d·(q − 16), Q5_1: x = d·q + m
function deqQ5(b: usize, y: usize, affine: bool): void {
  const d = h16(b);
  const m: f32 = affine ? h16(b + 2) : 0;
  const h = affine ? b + 4 : b + 2;
  const qh = load<u32>(h);
  const qs = h + 4;
  for (let j: usize = 0; j < 16; j++) {
    const q = <i32>load<u8>(qs + j);
    const h0 = <i32>(((qh >> <u32>j) << 4) & 0x10);
    const h1 = <i32>((qh >> <u32>(j + 12)) & 0x10);
    if (affine) {
      store<f32>(y + (j << 2), d * <f32>((q & 15) | h0) + m);
      store<f32>(y + ((j + 16) << 2), d * <f32>((q >> 4) | h1) + m);
    } else {
      store<f32>(y + (j << 2), d * <f32>(((q & 15) | h0) - 16));
      store<f32>(y + ((j + 16) << 2), d * <f32>(((q >> 4) | h1) - 16));
    }
  }
}

// Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: 16 sub-blocks of 16, x = d·(sc & 15)·q − dmin·(sc >> 4)
function deqQ2_K(b: usize, y: usize): void {
  const d = h16(b + 80), dmin = h16(b + 82);
  for (let i: usize = 0; i < 256; i++) {
    const sc = <i32>load<u8>(b + (i >> 4));
    const dl = d * <f32>(sc & 15), ml = dmin * <f32>(sc >> 4);
    const q = (<i32>load<u8>(b + 16 + (i >> 7) * 32 + (i & 31)) >> <i32>(((i >> 5) & 3) << 1)) & 3;
    store<f32>(y + (i << 2), dl * <f32>q - ml);
  }
}

/** The k-th 6-bit scale (0..63) of a Q3_K super-block's 12 scale bytes at s. */
@inline function q3Scale(s: usize, k: usize): i32 {
  const lo = (<i32>load<u8>(s + (k & 7)) >> (k >= 8 ? 4 : 0)) & 15;
  const hi = (<i32>load<u8>(s + 8 + (k & 3)) >> <i32>((k >> 2) << 1)) & 3;
  return lo | (hi << 4);
}

// Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: 16 sub-blocks of 16, x = d·(sc − 32)·(q − 4·!hbit)
function deqQ3_K(b: usize, y: usize): void {
  const dAll = h16(b + 108);
  for (let k: usize = 0; k < 16; k++) {
    const dl = dAll * <f32>(q3Scale(b + 96, k) - 32);
    for (let l: usize = 0; l < 16; l++) {
      const i = (k << 4) + l;
      const q = (<i32>load<u8>(b + 32 + (i >> 7) * 32 + (i & 31)) >> <i32>(((i >> 5) & 3) << 1)) & 3;
      const hbit = (<i32>load<u8>(b + (i & 31)) >> <i32>(i >> 5)) & 1;
      store<f32>(y + (i << 2), dl * <f32>(q - (hbit ? 0 : 4)));
    }
  }
}

/** ggml's get_scale_min_k4: the j-th 6-bit scale (low 16 bits) and min (high 16 bits). */
@inline function scaleMinK4(j: usize, s: usize): i32 {
  if (j < 4) return (<i32>load<u8>(s + j) & 63) | ((<i32>load<u8>(s + j + 4) & 63) << 16);
  const sc = (<i32>load<u8>(s + j + 4) & 15) | ((<i32>load<u8>(s + j - 4) >> 6) << 4);
  const m = (<i32>load<u8>(s + j + 4) >> 4) | ((<i32>load<u8>(s + j) >> 6) << 4);
  return sc | (m << 16);
}

// Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]} and Q5_K (adds u8 qh[32] before qs):
// 8 sub-blocks of 32, x = d·sc·q − dmin·m
function deqQ45_K(b: usize, y: usize, five: bool): void {
  const d = h16(b), dmin = h16(b + 2);
  const qh = b + 16;
  const qs = five ? b + 48 : b + 16;
  for (let j: usize = 0; j < 8; j++) {
    const sm = scaleMinK4(j, b + 4);
    const dl = d * <f32>(sm & 0xffff), ml = dmin * <f32>(sm >>> 16);
    const q = qs + ((j >> 1) << 5);
    const shift = <i32>((j & 1) << 2);
    const o = y + (j << 7);
    let l: usize = 0;
    if (ASC_FEATURE_SIMD) {
      if (!five) l = deqNibbles32(q, shift, dl, ml, o);
    }
    for (; l < 32; l++) {
      let v = (<i32>load<u8>(q + l) >> shift) & 15;
      if (five) v += ((<i32>load<u8>(qh + l) >> <i32>j) & 1) << 4;
      store<f32>(o + (l << 2), dl * <f32>v - ml);
    }
  }
}

/** 32 nibbles (q[l] >> shift & 15) → d·q − m at o (SIMD only); returns 32. */
@inline function deqNibbles32(q: usize, shift: i32, dl: f32, ml: f32, o: usize): usize {
  const mask = i8x16.splat(15);
  const dv = f32x4.splat(dl), mv = f32x4.splat(ml);
  for (let l: usize = 0; l < 32; l += 16) {
    const v = v128.and(i8x16.shr_u(v128.load(q + l), shift), mask);
    const lo = i16x8.extend_low_i8x16_u(v), hi = i16x8.extend_high_i8x16_u(v);
    const p = o + (l << 2);
    v128.store(p, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), dv), mv));
    v128.store(p, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), dv), mv), 16);
    v128.store(p, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), dv), mv), 32);
    v128.store(p, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), dv), mv), 48);
  }
  return 32;
}

// Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 16 sub-blocks of 16, x = (d·sc)·(q − 32)
function deqQ6_K(b: usize, y: usize): void {
  const d = h16(b + 208);
  for (let n: usize = 0; n < 256; n += 128) {
    const ql = b + (n >> 1), qh = b + 128 + (n >> 2), sc = b + 192 + (n >> 4);
    for (let l: usize = 0; l < 32; l++) {
      const is = l >> 4;
      const h = <i32>load<u8>(qh + l);
      const a = <i32>load<u8>(ql + l), c = <i32>load<u8>(ql + l + 32);
      const q1 = ((a & 15) | ((h & 3) << 4)) - 32;
      const q2 = ((c & 15) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((a >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((c >> 4) | (((h >> 6) & 3) << 4)) - 32;
      const o = y + ((n + l) << 2);
      store<f32>(o, (d * <f32>load<i8>(sc + is)) * <f32>q1);
      store<f32>(o, (d * <f32>load<i8>(sc + is + 2)) * <f32>q2, 128);
      store<f32>(o, (d * <f32>load<i8>(sc + is + 4)) * <f32>q3, 256);
      store<f32>(o, (d * <f32>load<i8>(sc + is + 6)) * <f32>q4, 384);
    }
  }
}

// Q8_K {f32 d; i8 qs[256]; i16 bsums[16]}: x = d·q
function deqQ8_K(b: usize, y: usize): void {
  const d = load<f32>(b);
  scaleI8(b + 4, 256, d, y);
}

/** [values per block, bytes per block] of a ggml type id packed as values | bytes << 16; 0 when unknown. */
export function ggml_block_shape(type: i32): i32 {
  switch (type) {
    case 2: return 32 | (18 << 16);
    case 3: return 32 | (20 << 16);
    case 6: return 32 | (22 << 16);
    case 7: return 32 | (24 << 16);
    case 8: return 32 | (34 << 16);
    case 9: return 32 | (36 << 16);
    case 10: return 256 | (84 << 16);
    case 11: return 256 | (110 << 16);
    case 12: return 256 | (144 << 16);
    case 13: return 256 | (176 << 16);
    case 14: return 256 | (210 << 16);
    case 15: return 256 | (292 << 16);
    default: return 0;
  }
}

/** `blocks` blocks of ggml type `type` at src → f32 values at out. Returns 0 for an unknown type, else 1. */
export function ggml_dequantize(type: i32, src: usize, blocks: usize, out: usize): i32 {
  const shape = ggml_block_shape(type);
  if (!shape) return 0;
  const per = <usize>(shape & 0xffff), size = <usize>(shape >>> 16);
  const ystep = per << 2;
  for (let k: usize = 0; k < blocks; k++) {
    const b = src + k * size, y = out + k * ystep;
    switch (type) {
      case 2: deqQ4_0(b, y); break;
      case 3: deqQ4_1(b, y); break;
      case 6: deqQ5(b, y, false); break;
      case 7: deqQ5(b, y, true); break;
      case 8: deqQ8_0(b, y, 2); break;
      case 9: deqQ8_0(b, y, 4); break;
      case 10: deqQ2_K(b, y); break;
      case 11: deqQ3_K(b, y); break;
      case 12: deqQ45_K(b, y, false); break;
      case 13: deqQ45_K(b, y, true); break;
      case 14: deqQ6_K(b, y); break;
      default: deqQ8_K(b, y); break;
    }
  }
  return 1;
}

/**
 * TF.js affine: n codes (u8 when bits is 8, little-endian u16 when 16) at src → f32 at out,
 * x = f32(q·scale + min) computed in f64 as TF.js does.
 */
export function affine_dequantize(bits: i32, src: usize, n: usize, scale: f64, min: f64, out: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const sv = f64x2.splat(scale), mv = f64x2.splat(min);
    if (bits == 8) {
      for (; i + 8 <= n; i += 8) {
        const v = i16x8.extend_low_i8x16_u(v128.load64_zero(src + i));
        const a = i32x4.extend_low_i16x8_u(v), c = i32x4.extend_high_i16x8_u(v);
        const o = out + (i << 2);
        const r0 = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_u(a), sv), mv));
        const r1 = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_u(i64x2.shuffle(a, a, 1, 0)), sv), mv));
        const r2 = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_u(c), sv), mv));
        const r3 = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_u(i64x2.shuffle(c, c, 1, 0)), sv), mv));
        v128.store(o, i64x2.shuffle(r0, r1, 0, 2));
        v128.store(o, i64x2.shuffle(r2, r3, 0, 2), 16);
      }
    } else {
      for (; i + 4 <= n; i += 4) {
        const a = i32x4.extend_low_i16x8_u(v128.load64_zero(src + (i << 1)));
        const r0 = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_u(a), sv), mv));
        const r1 = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_u(i64x2.shuffle(a, a, 1, 0)), sv), mv));
        v128.store(out + (i << 2), i64x2.shuffle(r0, r1, 0, 2));
      }
    }
  }
  for (; i < n; i++) {
    const q: f64 = bits == 8 ? <f64>load<u8>(src + i) : <f64>load<u16>(src + (i << 1));
    store<f32>(out + (i << 2), <f32>(q * scale + min));
  }
}
