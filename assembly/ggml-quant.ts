// Quantizing f32 values into ggml blocks (layouts as ggml-common.h defines them) and TF.js affine
// codes. Scale search is done in f64; the stored f16 scales are what the codes are computed
// against, and each block (or sub-block) keeps the candidate with the least squared error.
//
// - Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (32 values): the reference scale (amax/127; signed max/−8 or
//   /−16; (max − min)/15 or /31 with min = the f16-rounded block min) and ×0.97, ×1.03 of it;
//   codes and errors in f32 (SIMD lanes in the SIMD build, the same sums in the scalar one).
// - Q4_K, Q5_K (8 sub-blocks of 32, 6-bit scale and min) and Q2_K (16 of 16, 4-bit scale and
//   min): per sub-block float scale and min, super-block d = max scale / 63 (or 15), dmin likewise,
//   then each sub-block's integer scale and min ±1 around the rounded values. Q2_K's
//   float stage also searches scales with a least-squares refit of scale and min to the codes.
// - Q6_K (16 of 16, int8 scales, 6-bit codes) and Q3_K (16 of 16, 6-bit signed scales, 3-bit
//   codes): signed scales (the largest magnitude lands on the most negative code), d from the
//   largest scale, each integer scale ±1; Q3_K's float stage searches with a least-squares refit.
// - Q8_K: f32 d = max / −128, int8 codes, int16 sums of 16.
// Candidate errors are summed in f32 lanes (SIMD in the SIMD build, the same sums in the scalar
// one), so both builds write the same bytes. NaN inputs give code 0 (or the zero point); values
// beyond the range are clamped.
//
// Nothing is allocated: per-block work space is static data below heapBase.
//
// Why one file past 500 lines: every quantizer shares that static work space and the same small
// helpers (f16 rounding, code rounding, the error lanes, the scale searches); cut by block family,
// those internals would have to be exported across files of the Wasm module's public surface.

import { halfToF32 } from './ggml-dequant';

const CODES = memory.data(256); // u8 codes of one block
const LS = memory.data(16 * 4); // i32 integer sub-block scales
const LM = memory.data(16 * 4); // i32 integer sub-block mins
const SC = memory.data(16 * 8); // f64 float sub-block scales
const MN = memory.data(16 * 8); // f64 float sub-block mins (positive, subtracted)

/** f32 → IEEE half bits, round to nearest even. */
export function f32ToHalf(x: f32): u32 {
  const b = reinterpret<u32>(x);
  const sign = (b >> 16) & 0x8000;
  const e = <i32>((b >> 23) & 0xff);
  let m = b & 0x7fffff;
  if (e == 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const exp = e - 127 + 15;
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    m |= 0x800000;
    const shift = <u32>(14 - exp);
    let h = m >> shift;
    const rem = m & ((1 << shift) - 1);
    const half = <u32>1 << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return sign | h;
  }
  let h = (<u32>exp << 10) | (m >> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return sign | h;
}

@inline function round16(x: f64): f64 {
  return <f64>halfToF32(f32ToHalf(<f32>x));
}

/** JS Math.round of v clamped to [lo, hi]; NaN gives 0 (clamped). */
@inline function qround(v: f64, lo: i32, hi: i32): i32 {
  let r = Math.round(v);
  if (r != r) r = 0;
  r = r < <f64>lo ? <f64>lo : r > <f64>hi ? <f64>hi : r;
  return <i32>r;
}

@inline function clampI(v: i32, lo: i32, hi: i32): i32 {
  return v < lo ? lo : v > hi ? hi : v;
}

@inline function x32(x: usize, i: usize): f64 {
  return <f64>load<f32>(x + (i << 2));
}

@inline function put16(p: usize, v: u32): void {
  store<u16>(p, <u16>v);
}

// ---- 32-value blocks -------------------------------------------------------------------------

/**
 * Codes (into CODES) and squared error of one 32-block for stored scale d and min m: code =
 * clamp(roundeven((v − m)/d), lo, hi) + zero, back = d·(code − zero) + m. f32 throughout, the error
 * summed in 4 lanes (j mod 4) then (l0 + l1) + (l2 + l3), so the SIMD and scalar builds agree.
 */
function codes32(x: usize, d: f32, m: f32, lo: f32, hi: f32, zero: i32): f32 {
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  if (ASC_FEATURE_SIMD) {
    const dv = f32x4.splat(d), mv = f32x4.splat(m), iv = f32x4.splat(id), lov = f32x4.splat(lo), hiv = f32x4.splat(hi);
    const zv = i32x4.splat(zero);
    let ev = f32x4.splat(0);
    for (let j: usize = 0; j < 32; j += 16) {
      const p = x + (j << 2);
      const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
      const r0 = f32x4.max(f32x4.min(f32x4.nearest(f32x4.mul(f32x4.sub(v0, mv), iv)), hiv), lov);
      const r1 = f32x4.max(f32x4.min(f32x4.nearest(f32x4.mul(f32x4.sub(v1, mv), iv)), hiv), lov);
      const r2 = f32x4.max(f32x4.min(f32x4.nearest(f32x4.mul(f32x4.sub(v2, mv), iv)), hiv), lov);
      const r3 = f32x4.max(f32x4.min(f32x4.nearest(f32x4.mul(f32x4.sub(v3, mv), iv)), hiv), lov);
      const e0 = f32x4.sub(v0, f32x4.add(f32x4.mul(dv, r0), mv));
      const e1 = f32x4.sub(v1, f32x4.add(f32x4.mul(dv, r1), mv));
      const e2 = f32x4.sub(v2, f32x4.add(f32x4.mul(dv, r2), mv));
      const e3 = f32x4.sub(v3, f32x4.add(f32x4.mul(dv, r3), mv));
      ev = f32x4.add(ev, f32x4.mul(e0, e0));
      ev = f32x4.add(ev, f32x4.mul(e1, e1));
      ev = f32x4.add(ev, f32x4.mul(e2, e2));
      ev = f32x4.add(ev, f32x4.mul(e3, e3));
      const k0 = i32x4.add(i32x4.trunc_sat_f32x4_s(r0), zv), k1 = i32x4.add(i32x4.trunc_sat_f32x4_s(r1), zv);
      const k2 = i32x4.add(i32x4.trunc_sat_f32x4_s(r2), zv), k3 = i32x4.add(i32x4.trunc_sat_f32x4_s(r3), zv);
      v128.store(CODES + j, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(k0, k1), i16x8.narrow_i32x4_s(k2, k3)));
    }
    return (f32x4.extract_lane(ev, 0) + f32x4.extract_lane(ev, 1)) + (f32x4.extract_lane(ev, 2) + f32x4.extract_lane(ev, 3));
  } else {
    let e0: f32 = 0, e1: f32 = 0, e2: f32 = 0, e3: f32 = 0;
    for (let j: usize = 0; j < 32; j += 4) {
      for (let l: usize = 0; l < 4; l++) {
        const v = load<f32>(x + ((j + l) << 2));
        const r = max<f32>(min<f32>(nearest<f32>((v - m) * id), hi), lo);
        const e = v - (d * r + m);
        const ee = e * e;
        if (l == 0) e0 += ee; else if (l == 1) e1 += ee; else if (l == 2) e2 += ee; else e3 += ee;
        store<i8>(CODES + j + l, <i8>(<i32>r + zero));
      }
    }
    return (e0 + e1) + (e2 + e3);
  }
}

const BEST = memory.data(32);

function quant32(type: i32, x: usize, out: usize): void {
  const affine = type == 3 || type == 7;
  const qmax: i32 = type == 8 ? 127 : type == 2 || type == 3 ? 15 : 31;
  let lo = Infinity, hi = -Infinity, amax: f64 = 0, signedMax: f64 = 0;
  if (ASC_FEATURE_SIMD) {
    // pmin/pmax skip NaN inputs as the scalar comparisons do; the signed max is then the first
    // value of largest magnitude, as in the scalar loop
    let mn = f32x4.splat(Infinity), mx = f32x4.splat(-Infinity), am = f32x4.splat(0);
    for (let j: usize = 0; j < 32; j += 4) {
      const v = v128.load(x + (j << 2));
      mn = f32x4.pmin(mn, v);
      mx = f32x4.pmax(mx, v);
      am = f32x4.pmax(am, f32x4.abs(v));
    }
    lo = <f64>min(min(f32x4.extract_lane(mn, 0), f32x4.extract_lane(mn, 1)), min(f32x4.extract_lane(mn, 2), f32x4.extract_lane(mn, 3)));
    hi = <f64>max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
    amax = <f64>max(max(f32x4.extract_lane(am, 0), f32x4.extract_lane(am, 1)), max(f32x4.extract_lane(am, 2), f32x4.extract_lane(am, 3)));
    if (amax > 0) {
      for (let j: usize = 0; j < 32; j++) {
        const v = x32(x, j);
        if (Math.abs(v) == amax) { signedMax = v; break; }
      }
    }
  } else {
    for (let j: usize = 0; j < 32; j++) {
      const v = x32(x, j);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (Math.abs(v) > amax) { amax = Math.abs(v); signedMax = v; }
    }
  }
  lo += 0; // −0 → +0: which zero a block's min is must not depend on the scan order
  hi += 0;
  const m = affine ? round16(lo) : 0;
  const ref = affine ? (hi - m) / qmax : qmax == 127 ? amax / 127 : signedMax / -<f64>((qmax + 1) >> 1);
  const zero: i32 = affine || qmax == 127 ? 0 : (qmax + 1) >> 1;
  const lo_: f32 = affine ? 0 : qmax == 127 ? -127 : <f32>-zero;
  const hi_: f32 = affine ? <f32>qmax : qmax == 127 ? 127 : <f32>(qmax - zero);
  let bestErr: f32 = Infinity, bestD: f64 = 0;
  for (let t = 0; t < 3; t++) {
    const d = round16(ref * (t == 0 ? 1 : t == 1 ? 0.97 : 1.03));
    const err = codes32(x, <f32>d, <f32>m, lo_, hi_, zero);
    if (t == 0 || err < bestErr) {
      bestErr = err;
      bestD = d;
      memory.copy(BEST, CODES, 32);
    }
    if (ref == 0) break;
  }
  put16(out, f32ToHalf(<f32>bestD));
  let qs = out + 2;
  if (affine) { put16(out + 2, f32ToHalf(<f32>m)); qs += 2; }
  if (type == 8) {
    memory.copy(qs, BEST, 32);
    return;
  }
  if (qmax == 31) {
    let qh: u32 = 0;
    for (let j: usize = 0; j < 16; j++) {
      const a = <u32>load<u8>(BEST + j), b = <u32>load<u8>(BEST + j + 16);
      qh |= ((a >> 4) & 1) << <u32>j;
      qh |= ((b >> 4) & 1) << <u32>(j + 16);
    }
    store<u32>(qs, qh);
    qs += 4;
  }
  for (let j: usize = 0; j < 16; j++) store<u8>(qs + j, (load<u8>(BEST + j) & 15) | ((load<u8>(BEST + j + 16) & 15) << 4));
}

// ---- K-quants: affine sub-blocks (Q2_K, Q4_K, Q5_K) --------------------------------------------

/** Least-squares float scale and min (stored as a positive subtracted min) for sub-block values at x. */
function fitAffine(x: usize, len: usize, nmax: i32, lo: f64, hi: f64, j: usize, search: bool): void {
  let bestS = (hi - lo) / nmax, bestM = -lo;
  if (search && hi > lo) {
    let bestErr = affineErr(x, len, nmax, bestS, bestM);
    for (let t = -2; t <= 4; t++) {
      // candidate codes from a scale around the range's, then the least-squares scale and min for them
      const i0 = (<f64>nmax + 0.1 * t) / (hi - lo);
      let n: f64 = 0, sq: f64 = 0, sqq: f64 = 0, sx: f64 = 0, sqx: f64 = 0;
      for (let l: usize = 0; l < len; l++) {
        const v = x32(x, l);
        const q = <f64>qround((v - lo) * i0, 0, nmax);
        n += 1; sq += q; sqq += q * q; sx += v; sqx += q * v;
      }
      const det = n * sqq - sq * sq;
      if (det <= 0) continue;
      let s = (n * sqx - sq * sx) / det;
      let mn = (sx - s * sq) / n; // value = s·q + mn
      if (mn > 0) { mn = 0; s = sqq > 0 ? sqx / sqq : 0; }
      if (!(s > 0)) continue;
      const err = affineErr(x, len, nmax, s, -mn);
      if (err < bestErr) { bestErr = err; bestS = s; bestM = -mn; }
    }
  }
  store<f64>(SC + (j << 3), bestS);
  store<f64>(MN + (j << 3), bestM);
}

function affineErr(x: usize, len: usize, nmax: i32, s: f64, m: f64): f64 {
  return <f64>errLanes(x, len, <f32>s, <f32>m, 0, <f32>nmax);
}

/**
 * Squared error of len (a multiple of 4) values at x against value = s·q − m with
 * q = clamp(roundeven((v + m)/s), lo, hi), in f32, summed in 4 lanes (j mod 4) then
 * (l0 + l1) + (l2 + l3): the SIMD and scalar builds give the same sums.
 */
function errLanes(x: usize, len: usize, s: f32, m: f32, lo: f32, hi: f32): f32 {
  const is: f32 = s != 0 ? <f32>1 / s : 0;
  if (ASC_FEATURE_SIMD) {
    const sv = f32x4.splat(s), mv = f32x4.splat(m), iv = f32x4.splat(is), lov = f32x4.splat(lo), hiv = f32x4.splat(hi);
    let ev = f32x4.splat(0);
    for (let j: usize = 0; j < len; j += 4) {
      const v = v128.load(x + (j << 2));
      const q = f32x4.max(f32x4.min(f32x4.nearest(f32x4.mul(f32x4.add(v, mv), iv)), hiv), lov);
      const e = f32x4.sub(v, f32x4.sub(f32x4.mul(sv, q), mv));
      ev = f32x4.add(ev, f32x4.mul(e, e));
    }
    return (f32x4.extract_lane(ev, 0) + f32x4.extract_lane(ev, 1)) + (f32x4.extract_lane(ev, 2) + f32x4.extract_lane(ev, 3));
  } else {
    let e0: f32 = 0, e1: f32 = 0, e2: f32 = 0, e3: f32 = 0;
    for (let j: usize = 0; j < len; j += 4) {
      for (let l: usize = 0; l < 4; l++) {
        const v = load<f32>(x + ((j + l) << 2));
        const q = max<f32>(min<f32>(nearest<f32>((v + m) * is), hi), lo);
        const e = v - (s * q - m);
        const ee = e * e;
        if (l == 0) e0 += ee; else if (l == 1) e1 += ee; else if (l == 2) e2 += ee; else e3 += ee;
      }
    }
    return (e0 + e1) + (e2 + e3);
  }
}

/**
 * nsub sub-blocks of len values, value = d·ls·q − dmin·lm, q in 0..nmax, ls and lm in 0..smax.
 * Writes codes to CODES, ls/lm to LS/LM; returns d and dmin as f16 bits (d | dmin << 16).
 */
function affineK(x: usize, nsub: usize, len: usize, nmax: i32, smax: i32, radius: i32, search: bool): u32 {
  let maxScale: f64 = 0, maxMin: f64 = 0;
  for (let j: usize = 0; j < nsub; j++) {
    const p = x + ((j * len) << 2);
    let lo = Infinity, hi = -Infinity;
    for (let l: usize = 0; l < len; l++) {
      const v = x32(p, l);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo > 0) lo = 0; // mins are ≤ 0 (stored as a positive m that is subtracted)
    fitAffine(p, len, nmax, lo, hi, j, search);
    maxScale = max(maxScale, load<f64>(SC + (j << 3)));
    maxMin = max(maxMin, load<f64>(MN + (j << 3)));
  }
  const dh = f32ToHalf(<f32>(maxScale / smax)), mh = f32ToHalf(<f32>(maxMin / smax));
  const d = <f64>halfToF32(dh), dmin = <f64>halfToF32(mh);
  for (let j: usize = 0; j < nsub; j++) {
    const p = x + ((j * len) << 2);
    const s0 = d != 0 ? qround(load<f64>(SC + (j << 3)) / d, 0, smax) : 0;
    const m0 = dmin != 0 ? qround(load<f64>(MN + (j << 3)) / dmin, 0, smax) : 0;
    let best = Infinity;
    let bs = s0, bm = m0;
    for (let ds = -radius; ds <= radius; ds++) {
      for (let dm = -radius; dm <= radius; dm++) {
        const s = clampI(s0 + ds, 0, smax), m = clampI(m0 + dm, 0, smax);
        const err = affineErr(p, len, nmax, <f64><f32>(d * s), <f64><f32>(dmin * m));
        if (err < best) { best = err; bs = s; bm = m; }
      }
    }
    store<i32>(LS + (j << 2), bs);
    store<i32>(LM + (j << 2), bm);
    const dd = <f64><f32>(d * bs), mm = <f64><f32>(dmin * bm);
    const id = dd != 0 ? 1 / dd : 0;
    for (let l: usize = 0; l < len; l++) store<u8>(CODES + j * len + l, <u8>qround((x32(p, l) + mm) * id, 0, nmax));
  }
  return dh | (mh << 16);
}

/** 6-bit scales and mins of 8 sub-blocks into 12 bytes (ggml's get_scale_min_k4 order). */
function packScalesMinsK4(out: usize): void {
  memory.fill(out, 0, 12);
  for (let j: usize = 0; j < 8; j++) {
    const s = <u8>load<i32>(LS + (j << 2)), m = <u8>load<i32>(LM + (j << 2));
    if (j < 4) {
      store<u8>(out + j, s);
      store<u8>(out + j + 4, m);
    } else {
      store<u8>(out + j + 4, (s & 0xf) | ((m & 0xf) << 4));
      store<u8>(out + j - 4, load<u8>(out + j - 4) | ((s >> 4) << 6));
      store<u8>(out + j, load<u8>(out + j) | ((m >> 4) << 6));
    }
  }
}

function quantQ45_K(x: usize, out: usize, five: bool): void {
  const dm = affineK(x, 8, 32, five ? 31 : 15, 63, 1, false);
  store<u32>(out, dm);
  packScalesMinsK4(out + 4);
  if (!five) {
    for (let j: usize = 0; j < 256; j += 64) {
      for (let l: usize = 0; l < 32; l++) store<u8>(out + 16 + (j >> 1) + l, load<u8>(CODES + j + l) | (load<u8>(CODES + j + l + 32) << 4));
    }
    return;
  }
  const qh = out + 16, qs = out + 48;
  memory.fill(qh, 0, 32);
  for (let j: usize = 0; j < 8; j++) {
    for (let l: usize = 0; l < 32; l++) {
      const q = load<u8>(CODES + (j << 5) + l);
      if (q > 15) store<u8>(qh + l, load<u8>(qh + l) | <u8>(<u32>1 << <u32>j));
      const at = qs + ((j >> 1) << 5) + l;
      store<u8>(at, (j & 1) ? load<u8>(at) | ((q & 15) << 4) : q & 15);
    }
  }
}

function quantQ2_K(x: usize, out: usize): void {
  const dm = affineK(x, 16, 16, 3, 15, 1, true);
  for (let j: usize = 0; j < 16; j++) store<u8>(out + j, <u8>(load<i32>(LS + (j << 2)) | (load<i32>(LM + (j << 2)) << 4)));
  memory.fill(out + 16, 0, 64);
  for (let i: usize = 0; i < 256; i++) {
    const at = out + 16 + (i >> 7) * 32 + (i & 31);
    store<u8>(at, load<u8>(at) | (load<u8>(CODES + i) << <u8>(((i >> 5) & 3) << 1)));
  }
  store<u32>(out + 80, dm);
}

// ---- K-quants: signed sub-blocks (Q3_K, Q6_K) --------------------------------------------------

function symErr(x: usize, len: usize, qlo: i32, s: f64): f64 {
  return <f64>errLanes(x, len, <f32>s, 0, <f32>qlo, <f32>(-qlo - 1));
}

/**
 * 16 sub-blocks of 16, value = d·sc·q with q in qlo..−qlo−1 and sc in slo..−slo−1. Codes (q − qlo)
 * to CODES, scales to LS; returns d as f16 bits.
 */
function symK(x: usize, qlo: i32, slo: i32, search: bool): u32 {
  let maxAbs: f64 = 0, maxScale: f64 = 0;
  for (let j: usize = 0; j < 16; j++) {
    const p = x + (j << 6);
    let am: f64 = 0, m: f64 = 0;
    for (let l: usize = 0; l < 16; l++) {
      const v = x32(p, l);
      if (Math.abs(v) > am) { am = Math.abs(v); m = v; }
    }
    let s = m / qlo; // the largest magnitude lands on the most negative code
    if (search && am > 0) {
      let bestErr = symErr(p, 16, qlo, s);
      for (let t = -2; t <= 6; t++) {
        if (t == 0) continue;
        const i0 = (<f64>qlo - 0.1 * t) / m;
        let sqq: f64 = 0, sqx: f64 = 0;
        for (let l: usize = 0; l < 16; l++) {
          const v = x32(p, l);
          const q = <f64>qround(v * i0, qlo, -qlo - 1);
          sqq += q * q; sqx += q * v;
        }
        if (sqq == 0) continue;
        const s1 = sqx / sqq;
        const err = symErr(p, 16, qlo, s1);
        if (err < bestErr) { bestErr = err; s = s1; }
      }
    }
    store<f64>(SC + (j << 3), s);
    if (Math.abs(s) > maxAbs) { maxAbs = Math.abs(s); maxScale = s; }
  }
  const dh = f32ToHalf(<f32>(maxScale / slo));
  const d = <f64>halfToF32(dh);
  const shi = -slo - 1, qhi = -qlo - 1;
  for (let j: usize = 0; j < 16; j++) {
    const p = x + (j << 6);
    const s0 = d != 0 ? qround(load<f64>(SC + (j << 3)) / d, slo, shi) : 0;
    let best = Infinity, bs = s0;
    for (let ds = -1; ds <= 1; ds++) {
      const s = clampI(s0 + ds, slo, shi);
      const err = symErr(p, 16, qlo, <f64><f32>(d * s));
      if (err < best) { best = err; bs = s; }
    }
    store<i32>(LS + (j << 2), bs);
    const dd = <f64><f32>(d * bs);
    const id = dd != 0 ? 1 / dd : 0;
    for (let l: usize = 0; l < 16; l++) store<u8>(CODES + (j << 4) + l, <u8>(qround(x32(p, l) * id, qlo, qhi) - qlo));
  }
  return dh;
}

function quantQ6_K(x: usize, out: usize): void {
  const dh = symK(x, -32, -128, false);
  const ql = out, qh = out + 128;
  memory.fill(qh, 0, 64);
  for (let j: usize = 0; j < 256; j += 128) {
    for (let l: usize = 0; l < 32; l++) {
      const q1 = load<u8>(CODES + j + l), q2 = load<u8>(CODES + j + l + 32);
      const q3 = load<u8>(CODES + j + l + 64), q4 = load<u8>(CODES + j + l + 96);
      store<u8>(ql + (j >> 1) + l, (q1 & 0xf) | ((q3 & 0xf) << 4));
      store<u8>(ql + (j >> 1) + l + 32, (q2 & 0xf) | ((q4 & 0xf) << 4));
      store<u8>(qh + (j >> 2) + l, (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
  for (let j: usize = 0; j < 16; j++) store<u8>(out + 192 + j, <u8>load<i32>(LS + (j << 2)));
  put16(out + 208, dh);
}

function quantQ3_K(x: usize, out: usize): void {
  const dh = symK(x, -4, -32, true);
  memory.fill(out, 0, 108);
  for (let i: usize = 0; i < 256; i++) {
    const q = <u32>load<u8>(CODES + i); // 0..7, value q − 4
    const at = out + 32 + (i >> 7) * 32 + (i & 31);
    store<u8>(at, load<u8>(at) | <u8>((q & 3) << <u32>(((i >> 5) & 3) << 1)));
    if (q & 4) store<u8>(out + (i & 31), load<u8>(out + (i & 31)) | <u8>(<u32>1 << <u32>(i >> 5)));
  }
  const s = out + 96;
  for (let k: usize = 0; k < 16; k++) {
    const v = <u32>(load<i32>(LS + (k << 2)) + 32); // 0..63
    store<u8>(s + (k & 7), load<u8>(s + (k & 7)) | <u8>((v & 15) << (k >= 8 ? 4 : 0)));
    store<u8>(s + 8 + (k & 3), load<u8>(s + 8 + (k & 3)) | <u8>((v >> 4) << <u32>((k >> 2) << 1)));
  }
  put16(out + 108, dh);
}

function quantQ8_K(x: usize, out: usize): void {
  let am: f64 = 0, m: f64 = 0;
  for (let l: usize = 0; l < 256; l++) {
    const v = x32(x, l);
    if (Math.abs(v) > am) { am = Math.abs(v); m = v; }
  }
  memory.fill(out, 0, 292);
  if (am == 0) return; // all zero: d = 0, codes 0
  const d = <f64><f32>(1 / (-128 / m));
  store<f32>(out, <f32>d);
  for (let g: usize = 0; g < 16; g++) {
    let sum: i32 = 0;
    for (let l: usize = 0; l < 16; l++) {
      const q = qround(x32(x, (g << 4) + l) / d, -128, 127);
      store<i8>(out + 4 + (g << 4) + l, <i8>q);
      sum += q;
    }
    store<i16>(out + 260 + (g << 1), <i16>sum);
  }
}

/** True when ggml type `type` can be written by ggml_quantize. */
export function ggml_quantizable(type: i32): i32 {
  return type == 2 || type == 3 || type == 6 || type == 7 || type == 8 || (type >= 10 && type <= 15) ? 1 : 0;
}

/**
 * `blocks` blocks' worth of f32 values at x → blocks of ggml type `type` at out (sizes as
 * ggml_block_shape gives). Returns 0 when the type cannot be written, else 1.
 */
export function ggml_quantize(type: i32, x: usize, blocks: usize, out: usize): i32 {
  if (!ggml_quantizable(type)) return 0;
  const per: usize = type >= 10 ? 256 : 32;
  const size: usize = type == 2 ? 18 : type == 3 ? 20 : type == 6 ? 22 : type == 7 ? 24 : type == 8 ? 34
    : type == 10 ? 84 : type == 11 ? 110 : type == 12 ? 144 : type == 13 ? 176 : type == 14 ? 210 : 292;
  for (let k: usize = 0; k < blocks; k++) {
    const v = x + ((k * per) << 2), o = out + k * size;
    switch (type) {
      case 10: quantQ2_K(v, o); break;
      case 11: quantQ3_K(v, o); break;
      case 12: quantQ45_K(v, o, false); break;
      case 13: quantQ45_K(v, o, true); break;
      case 14: quantQ6_K(v, o); break;
      case 15: quantQ8_K(v, o); break;
      default: quant32(type, v, o); break;
    }
  }
  return 1;
}

/** TF.js affine: n f32 at x → codes (u8, or little-endian u16 when bits is 16), q = round((x − min)/scale) clamped. */
export function affine_quantize(bits: i32, x: usize, n: usize, scale: f64, min: f64, out: usize): void {
  const top = bits == 8 ? 255 : 65535;
  const id = 1 / scale;
  for (let i: usize = 0; i < n; i++) {
    const k = qround((x32(x, i) - min) * id, 0, top);
    if (bits == 8) store<u8>(out + i, <u8>k);
    else store<u16>(out + (i << 1), <u16>k);
  }
}
