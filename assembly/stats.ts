// One-pass statistics, pair comparison and histograms over F32 or F64 data.
//
// Accumulators live in a caller-owned state block so a tensor can be fed in any number of calls.
// Sums are kept in f64 in 4 lanes: element i of a call adds into lane i % 4, in element order.
// The host starts every call except the last at a multiple of 4 elements of the tensor, so the
// result does not depend on how the tensor was chunked, and the scalar build emulates the same
// four lanes, so both builds give identical bits.
//
// STATS state (STATS_STATE_BYTES): f64 sum[4] @0, f64 sumsq[4] @32, f64 min @64, f64 max @72,
// f64 maxabs @80, i64 nan @88, i64 inf @96. Host initialises min=+Inf, max=-Inf, rest 0.
// sum/sumsq/min/max/maxabs are over finite values only.
//
// COMPARE state (COMPARE_STATE_BYTES): f64 dot[4] @0, sumsqA[4] @32, sumsqB[4] @64,
// sumsqDiff[4] @96, f64 maxAbsDiff @128, i64 notClose @136. Host initialises all to 0.
// Per element (in f64): d = (a == b) ? 0 : a - b; close = (a == b) || (isFinite(b) && |d| <= atol + rtol*|b|)
// (numpy.isclose with equal_nan=False). NaN propagates into the sums and into maxAbsDiff.

export const STATS_STATE_BYTES: usize = 128;
export const COMPARE_STATE_BYTES: usize = 160;

// ---------------------------------------------------------------- stats

@inline function statsScalar(st: usize, x: f64, lane: usize): void {
  const ax = Math.abs(x);
  if (ax < Infinity) {
    const ps = st + (lane << 3);
    store<f64>(ps, load<f64>(ps) + x);
    store<f64>(ps, load<f64>(ps, 32) + x * x, 32);
    store<f64>(st, min(load<f64>(st, 64), x), 64);
    store<f64>(st, max(load<f64>(st, 72), x), 72);
    store<f64>(st, max(load<f64>(st, 80), ax), 80);
  } else {
    // non-finite: lanes add +0 exactly as the SIMD path's masked add does
    const ps = st + (lane << 3);
    store<f64>(ps, load<f64>(ps) + 0);
    store<f64>(ps, load<f64>(ps, 32) + 0, 32);
    if (x != x) store<i64>(st, load<i64>(st, 88) + 1, 88);
    else store<i64>(st, load<i64>(st, 96) + 1, 96);
  }
}

/**
 * Float bits as a signed integer that orders like the float (IEEE totalOrder without NaN): a
 * negative value's magnitude bits are flipped, so -0 (key -1) sorts below +0 (key 0), as in
 * f32x4.min/max. Applying it twice gives the float bits back.
 */
@inline function orderKey(v: v128): v128 {
  return v128.xor(v, i32x4.shr_u(i32x4.shr_s(v, 31), 1));
}

export function stats_f32(st: usize, x: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    let s0 = v128.load(st), s1 = v128.load(st, 16), q0 = v128.load(st, 32), q1 = v128.load(st, 48);
    const inf = f32x4.splat(Infinity);
    // min and max run on order-preserving integer keys (orderKey), one instruction each where
    // f32x4.min/max cost several; +Inf's and -Inf's keys stand in for non-finite values
    const keyInf = i32x4.splat(0x7f800000), keyNegInf = i32x4.splat(0x807fffff);
    let mn = keyInf, mx = keyNegInf, ma = i32x4.splat(0);
    let nanc = i32x4.splat(0), infc = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(x + (i << 2));
      const av = f32x4.abs(v);
      const fin = f32x4.lt(av, inf);
      const vf = v128.and(v, fin);
      const lo = f64x2.promote_low_f32x4(vf);
      const hi = f64x2.promote_low_f32x4(i64x2.shuffle(vf, vf, 1, 1));
      s0 = f64x2.add(s0, lo);
      s1 = f64x2.add(s1, hi);
      q0 = f64x2.add(q0, f64x2.mul(lo, lo));
      q1 = f64x2.add(q1, f64x2.mul(hi, hi));
      const key = orderKey(v);
      mn = i32x4.min_s(mn, v128.bitselect(key, keyInf, fin));
      mx = i32x4.max_s(mx, v128.bitselect(key, keyNegInf, fin));
      ma = i32x4.max_s(ma, v128.and(av, fin)); // |v| bits order like |v| (sign bit clear)
      nanc = i32x4.sub(nanc, f32x4.ne(v, v));
      infc = i32x4.sub(infc, f32x4.eq(av, inf));
    }
    v128.store(st, s0);
    v128.store(st, s1, 16);
    v128.store(st, q0, 32);
    v128.store(st, q1, 48);
    mn = orderKey(mn); // the mapping is its own inverse
    mx = orderKey(mx);
    const m1 = min(min(f32x4.extract_lane(mn, 0), f32x4.extract_lane(mn, 1)), min(f32x4.extract_lane(mn, 2), f32x4.extract_lane(mn, 3)));
    const m2 = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
    const m3 = max(max(f32x4.extract_lane(ma, 0), f32x4.extract_lane(ma, 1)), max(f32x4.extract_lane(ma, 2), f32x4.extract_lane(ma, 3)));
    store<f64>(st, min(load<f64>(st, 64), <f64>m1), 64);
    store<f64>(st, max(load<f64>(st, 72), <f64>m2), 72);
    store<f64>(st, max(load<f64>(st, 80), <f64>m3), 80);
    const nn = i32x4.extract_lane(nanc, 0) + i32x4.extract_lane(nanc, 1) + i32x4.extract_lane(nanc, 2) + i32x4.extract_lane(nanc, 3);
    const ni = i32x4.extract_lane(infc, 0) + i32x4.extract_lane(infc, 1) + i32x4.extract_lane(infc, 2) + i32x4.extract_lane(infc, 3);
    store<i64>(st, load<i64>(st, 88) + <i64><u32>nn, 88);
    store<i64>(st, load<i64>(st, 96) + <i64><u32>ni, 96);
  } else {
    let s0 = load<f64>(st), s1 = load<f64>(st, 8), s2 = load<f64>(st, 16), s3 = load<f64>(st, 24);
    let q0 = load<f64>(st, 32), q1 = load<f64>(st, 40), q2 = load<f64>(st, 48), q3 = load<f64>(st, 56);
    let mn = load<f64>(st, 64), mx = load<f64>(st, 72), ma = load<f64>(st, 80);
    let nanc: i64 = 0, infc: i64 = 0;
    for (; i + 4 <= n; i += 4) {
      const p = x + (i << 2);
      // each lane: non-finite values add +0 and count; finite ones feed every accumulator
      let v = <f64>load<f32>(p);
      let av = Math.abs(v);
      if (av < Infinity) { s0 += v; q0 += v * v; mn = min(mn, v); mx = max(mx, v); ma = max(ma, av); }
      else { s0 += 0; q0 += 0; if (v != v) nanc++; else infc++; }
      v = <f64>load<f32>(p, 4); av = Math.abs(v);
      if (av < Infinity) { s1 += v; q1 += v * v; mn = min(mn, v); mx = max(mx, v); ma = max(ma, av); }
      else { s1 += 0; q1 += 0; if (v != v) nanc++; else infc++; }
      v = <f64>load<f32>(p, 8); av = Math.abs(v);
      if (av < Infinity) { s2 += v; q2 += v * v; mn = min(mn, v); mx = max(mx, v); ma = max(ma, av); }
      else { s2 += 0; q2 += 0; if (v != v) nanc++; else infc++; }
      v = <f64>load<f32>(p, 12); av = Math.abs(v);
      if (av < Infinity) { s3 += v; q3 += v * v; mn = min(mn, v); mx = max(mx, v); ma = max(ma, av); }
      else { s3 += 0; q3 += 0; if (v != v) nanc++; else infc++; }
    }
    store<f64>(st, s0); store<f64>(st, s1, 8); store<f64>(st, s2, 16); store<f64>(st, s3, 24);
    store<f64>(st, q0, 32); store<f64>(st, q1, 40); store<f64>(st, q2, 48); store<f64>(st, q3, 56);
    store<f64>(st, mn, 64); store<f64>(st, mx, 72); store<f64>(st, ma, 80);
    store<i64>(st, load<i64>(st, 88) + nanc, 88);
    store<i64>(st, load<i64>(st, 96) + infc, 96);
  }
  for (; i < n; i++) statsScalar(st, <f64>load<f32>(x + (i << 2)), i & 3);
}

export function stats_f64(st: usize, x: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    let s0 = v128.load(st), s1 = v128.load(st, 16), q0 = v128.load(st, 32), q1 = v128.load(st, 48);
    const inf = f64x2.splat(Infinity), ninf = f64x2.splat(-Infinity);
    let mn = f64x2.splat(load<f64>(st, 64)), mx = f64x2.splat(load<f64>(st, 72)), ma = f64x2.splat(load<f64>(st, 80));
    let nanc = i64x2.splat(0), infc = i64x2.splat(0);
    for (; i + 4 <= n; i += 4) {
      const p = x + (i << 3);
      const v0 = v128.load(p), v1 = v128.load(p, 16);
      const a0 = f64x2.abs(v0), a1 = f64x2.abs(v1);
      const f0 = f64x2.lt(a0, inf), f1 = f64x2.lt(a1, inf);
      const w0 = v128.and(v0, f0), w1 = v128.and(v1, f1);
      s0 = f64x2.add(s0, w0);
      s1 = f64x2.add(s1, w1);
      q0 = f64x2.add(q0, f64x2.mul(w0, w0));
      q1 = f64x2.add(q1, f64x2.mul(w1, w1));
      mn = f64x2.min(mn, f64x2.min(v128.bitselect(v0, inf, f0), v128.bitselect(v1, inf, f1)));
      mx = f64x2.max(mx, f64x2.max(v128.bitselect(v0, ninf, f0), v128.bitselect(v1, ninf, f1)));
      ma = f64x2.max(ma, f64x2.max(v128.and(a0, f0), v128.and(a1, f1)));
      nanc = i64x2.sub(nanc, i64x2.add(f64x2.ne(v0, v0), f64x2.ne(v1, v1)));
      infc = i64x2.sub(infc, i64x2.add(f64x2.eq(a0, inf), f64x2.eq(a1, inf)));
    }
    v128.store(st, s0);
    v128.store(st, s1, 16);
    v128.store(st, q0, 32);
    v128.store(st, q1, 48);
    store<f64>(st, min(f64x2.extract_lane(mn, 0), f64x2.extract_lane(mn, 1)), 64);
    store<f64>(st, max(f64x2.extract_lane(mx, 0), f64x2.extract_lane(mx, 1)), 72);
    store<f64>(st, max(f64x2.extract_lane(ma, 0), f64x2.extract_lane(ma, 1)), 80);
    store<i64>(st, load<i64>(st, 88) + i64x2.extract_lane(nanc, 0) + i64x2.extract_lane(nanc, 1), 88);
    store<i64>(st, load<i64>(st, 96) + i64x2.extract_lane(infc, 0) + i64x2.extract_lane(infc, 1), 96);
  } else {
    for (; i + 4 <= n; i += 4) {
      const p = x + (i << 3);
      statsScalar(st, load<f64>(p), 0);
      statsScalar(st, load<f64>(p, 8), 1);
      statsScalar(st, load<f64>(p, 16), 2);
      statsScalar(st, load<f64>(p, 24), 3);
    }
  }
  for (; i < n; i++) statsScalar(st, load<f64>(x + (i << 3)), i & 3);
}

// ---------------------------------------------------------------- compare

@inline function compareScalar(st: usize, x: f64, y: f64, lane: usize, rtol: f64, atol: f64): void {
  const eq = x == y;
  const d = eq ? 0 : x - y;
  const ad = Math.abs(d);
  const ay = Math.abs(y);
  const p = st + (lane << 3);
  store<f64>(p, load<f64>(p) + x * y);
  store<f64>(p, load<f64>(p, 32) + x * x, 32);
  store<f64>(p, load<f64>(p, 64) + y * y, 64);
  store<f64>(p, load<f64>(p, 96) + d * d, 96);
  store<f64>(st, max(load<f64>(st, 128), ad), 128);
  const close = eq || (ay < Infinity && ad <= atol + rtol * ay);
  if (!close) store<i64>(st, load<i64>(st, 136) + 1, 136);
}

@inline function compare_simd(st: usize, pa: usize, pb: usize, n: usize, wide: bool, rtol: f64, atol: f64): usize {
  let dot0 = v128.load(st), dot1 = v128.load(st, 16);
  let sa0 = v128.load(st, 32), sa1 = v128.load(st, 48);
  let sb0 = v128.load(st, 64), sb1 = v128.load(st, 80);
  let sd0 = v128.load(st, 96), sd1 = v128.load(st, 112);
  let md = f64x2.splat(load<f64>(st, 128));
  let nc = i64x2.splat(0);
  const rt = f64x2.splat(rtol), at = f64x2.splat(atol), inf = f64x2.splat(Infinity);
  let i: usize = 0;
  for (; i + 4 <= n; i += 4) {
    let x0: v128, x1: v128, y0: v128, y1: v128;
    if (wide) {
      const oa = pa + (i << 3), ob = pb + (i << 3);
      x0 = v128.load(oa); x1 = v128.load(oa, 16);
      y0 = v128.load(ob); y1 = v128.load(ob, 16);
    } else {
      const va = v128.load(pa + (i << 2)), vb = v128.load(pb + (i << 2));
      x0 = f64x2.promote_low_f32x4(va); x1 = f64x2.promote_low_f32x4(i64x2.shuffle(va, va, 1, 1));
      y0 = f64x2.promote_low_f32x4(vb); y1 = f64x2.promote_low_f32x4(i64x2.shuffle(vb, vb, 1, 1));
    }
    dot0 = f64x2.add(dot0, f64x2.mul(x0, y0));
    dot1 = f64x2.add(dot1, f64x2.mul(x1, y1));
    sa0 = f64x2.add(sa0, f64x2.mul(x0, x0));
    sa1 = f64x2.add(sa1, f64x2.mul(x1, x1));
    sb0 = f64x2.add(sb0, f64x2.mul(y0, y0));
    sb1 = f64x2.add(sb1, f64x2.mul(y1, y1));
    const e0 = f64x2.eq(x0, y0), e1 = f64x2.eq(x1, y1);
    const d0 = v128.andnot(f64x2.sub(x0, y0), e0), d1 = v128.andnot(f64x2.sub(x1, y1), e1);
    sd0 = f64x2.add(sd0, f64x2.mul(d0, d0));
    sd1 = f64x2.add(sd1, f64x2.mul(d1, d1));
    const ad0 = f64x2.abs(d0), ad1 = f64x2.abs(d1);
    md = f64x2.max(md, f64x2.max(ad0, ad1));
    const ay0 = f64x2.abs(y0), ay1 = f64x2.abs(y1);
    const c0 = v128.or(e0, v128.and(f64x2.lt(ay0, inf), f64x2.le(ad0, f64x2.add(at, f64x2.mul(rt, ay0)))));
    const c1 = v128.or(e1, v128.and(f64x2.lt(ay1, inf), f64x2.le(ad1, f64x2.add(at, f64x2.mul(rt, ay1)))));
    // not-close lanes have mask 0: count them as 1 + mask
    nc = i64x2.add(nc, i64x2.add(i64x2.add(c0, c1), i64x2.splat(2)));
  }
  v128.store(st, dot0); v128.store(st, dot1, 16);
  v128.store(st, sa0, 32); v128.store(st, sa1, 48);
  v128.store(st, sb0, 64); v128.store(st, sb1, 80);
  v128.store(st, sd0, 96); v128.store(st, sd1, 112);
  store<f64>(st, max(f64x2.extract_lane(md, 0), f64x2.extract_lane(md, 1)), 128);
  store<i64>(st, load<i64>(st, 136) + i64x2.extract_lane(nc, 0) + i64x2.extract_lane(nc, 1), 136);
  return i;
}

export function compare_f32(st: usize, a: usize, b: usize, n: usize, rtol: f64, atol: f64): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) i = compare_simd(st, a, b, n, false, rtol, atol);
  for (; i < n; i++) compareScalar(st, <f64>load<f32>(a + (i << 2)), <f64>load<f32>(b + (i << 2)), i & 3, rtol, atol);
}

export function compare_f64(st: usize, a: usize, b: usize, n: usize, rtol: f64, atol: f64): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) i = compare_simd(st, a, b, n, true, rtol, atol);
  for (; i < n; i++) compareScalar(st, load<f64>(a + (i << 3)), load<f64>(b + (i << 3)), i & 3, rtol, atol);
}

// ---------------------------------------------------------------- histogram

@inline function histo<T>(x: usize, n: usize, lo: f64, hi: f64, bins: u32, counts: usize): void {
  const scale = <f64>bins / (hi - lo);
  const last = bins - 1;
  for (let i: usize = 0; i < n; i++) {
    const v = <f64>load<T>(x + i * sizeof<T>());
    if (v >= lo && v < hi) {
      let b = <u32>((v - lo) * scale);
      if (b > last) b = last;
      const p = counts + (<usize>b << 2);
      store<u32>(p, load<u32>(p) + 1);
    }
  }
}

/**
 * counts[b] += number of x with lo <= x < hi and floor((x - lo) * (bins / (hi - lo))) == b
 * (clamped to bins-1 against rounding). NaN and values outside [lo, hi) are not counted.
 */
export function histogram_f32(x: usize, n: usize, lo: f64, hi: f64, bins: u32, counts: usize): void { histo<f32>(x, n, lo, hi, bins, counts); }
export function histogram_f64(x: usize, n: usize, lo: f64, hi: f64, bins: u32, counts: usize): void { histo<f64>(x, n, lo, hi, bins, counts); }
