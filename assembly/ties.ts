// TIES-merging kernels (Yadav et al. 2023) over f32 data already in linear memory. Task vectors
// are formed on the fly as tau = model - base (f32), never stored. The host (src/core/merge-kernels.ts)
// runs them piece by piece:
//
//   1. selection of each task vector's trim threshold, the keep-th largest |tau|: a bracket pass
//      (count above a guessed upper bound, collect the magnitudes inside the bracket) or, when the
//      guess misses, two histogram passes; then a select among the collected magnitudes;
//   2. one fused pass: trim, sign election, disjoint mean, base·w0 + merged·lambda.
//
// Magnitudes are compared as the bits of |x|, an i32 in [0, 0x7fffffff]: for non-negative floats the
// order of the bits is the order of the values (NaNs rank above +Inf, by payload). Elements whose
// magnitude equals the threshold are kept, lowest index first, while the per-vector `need` lasts;
// `need` lives in a state slot so a tensor can be processed in pieces of any size.
//
// Arithmetic mirrors the plain TypeScript it replaces (strategies/ties.ts): tau and the weighted sum in
// f32, the sign taken from the sum of the trimmed entries, the mean of agreeing entries in f64 and
// rounded once to f32. The SIMD and scalar builds give identical bits (NaN payloads aside).

const MAG: i32 = 0x7fffffff;

@inline function mag(x: f32): i32 {
  return reinterpret<i32>(x) & MAG;
}

/** Appends the lanes of m selected by inb (in lane order) to cand; tmp: 16 bytes of scratch. */
@inline function appendLanes(m: v128, inb: v128, cand: usize, cap: u32, seen: u32, tmp: usize): u32 {
  let bits = i32x4.bitmask(inb);
  if (bits) {
    v128.store(tmp, m);
    do {
      if (seen < cap) store<u32>(cand + (<usize>seen << 2), load<u32>(tmp + (<usize>ctz(bits) << 2)));
      seen++;
      bits &= bits - 1;
    } while (bits);
  }
  return seen;
}

/**
 * Bracket pass for one task vector: over tau = model - base, returns how many |tau| bits are > hi
 * and appends the bits with lo <= bits <= hi to cand (u32), in index order, while fewer than `cap`
 * are stored. st: u32 count of the in-bracket elements seen across calls (it may pass `cap`: the
 * host then knows the bracket overflowed), then 16 bytes of scratch (st + 16).
 */
export function ties_bracket_f32(base: usize, model: usize, n: usize, lo: i32, hi: i32, cand: usize, cap: u32, st: usize): u32 {
  let seen = load<u32>(st);
  let above: u32 = 0;
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const M = i32x4.splat(MAG), L = i32x4.splat(lo), H = i32x4.splat(hi);
    const tmp = st + 16;
    let acc = i32x4.splat(0);
    for (; i + 16 <= n; i += 16) {
      const o = i << 2;
      const pb = base + o, pm = model + o;
      const m0 = v128.and(f32x4.sub(v128.load(pm), v128.load(pb)), M);
      const m1 = v128.and(f32x4.sub(v128.load(pm, 16), v128.load(pb, 16)), M);
      const m2 = v128.and(f32x4.sub(v128.load(pm, 32), v128.load(pb, 32)), M);
      const m3 = v128.and(f32x4.sub(v128.load(pm, 48), v128.load(pb, 48)), M);
      const g0 = i32x4.gt_s(m0, H), g1 = i32x4.gt_s(m1, H), g2 = i32x4.gt_s(m2, H), g3 = i32x4.gt_s(m3, H);
      acc = i32x4.add(acc, i32x4.add(i32x4.add(g0, g1), i32x4.add(g2, g3))); // -1 per lane above
      const in0 = v128.andnot(i32x4.ge_s(m0, L), g0), in1 = v128.andnot(i32x4.ge_s(m1, L), g1);
      const in2 = v128.andnot(i32x4.ge_s(m2, L), g2), in3 = v128.andnot(i32x4.ge_s(m3, L), g3);
      if (!v128.any_true(v128.or(v128.or(in0, in1), v128.or(in2, in3)))) continue;
      seen = appendLanes(m0, in0, cand, cap, seen, tmp);
      seen = appendLanes(m1, in1, cand, cap, seen, tmp);
      seen = appendLanes(m2, in2, cand, cap, seen, tmp);
      seen = appendLanes(m3, in3, cand, cap, seen, tmp);
    }
    above = <u32>(-(i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3)));
  }
  for (; i < n; i++) {
    const m = mag(load<f32>(model + (i << 2)) - load<f32>(base + (i << 2)));
    if (m > hi) above++;
    else if (m >= lo) {
      if (seen < cap) store<u32>(cand + (<usize>seen << 2), <u32>m);
      seen++;
    }
  }
  store<u32>(st, seen);
  return above;
}

/**
 * Histogram pass for one task vector (the selection's fallback). b1 < 0: hist[bits >>> 16]++
 * (32768 u32 bins); b1 >= 0: hist[bits & 0xffff]++ for the elements with bits >>> 16 == b1
 * (65536 u32 bins). Counts add to what hist holds.
 */
export function ties_hist_f32(base: usize, model: usize, n: usize, b1: i32, hist: usize): void {
  if (b1 < 0) {
    for (let i: usize = 0; i < n; i++) {
      const p = hist + (<usize>(mag(load<f32>(model + (i << 2)) - load<f32>(base + (i << 2))) >>> 16) << 2);
      store<u32>(p, load<u32>(p) + 1);
    }
    return;
  }
  for (let i: usize = 0; i < n; i++) {
    const m = mag(load<f32>(model + (i << 2)) - load<f32>(base + (i << 2)));
    if ((m >>> 16) == b1) {
      const p = hist + (<usize>(m & 0xffff) << 2);
      store<u32>(p, load<u32>(p) + 1);
    }
  }
}

/**
 * The same two histograms over n u32 values, of their low 31 bits (magnitudes: collected ones, or
 * the bits of sampled f32 differences, whose sign bit is ignored here).
 */
export function u32_hist(vals: usize, n: usize, b1: i32, hist: usize): void {
  if (b1 < 0) {
    for (let i: usize = 0; i < n; i++) {
      const p = hist + (<usize>((load<u32>(vals + (i << 2)) >>> 16) & 0x7fff) << 2);
      store<u32>(p, load<u32>(p) + 1);
    }
    return;
  }
  for (let i: usize = 0; i < n; i++) {
    const v = load<u32>(vals + (i << 2)) & <u32>MAG;
    if ((v >>> 16) == <u32>b1) {
      const p = hist + (<usize>(v & 0xffff) << 2);
      store<u32>(p, load<u32>(p) + 1);
    }
  }
}

/**
 * From the top bin down, the bin holding the need-th largest value (1-based): returns its index and
 * stores at st (u32) how many of that bin's values are still needed. -1 when the bins hold fewer.
 */
export function hist_pick(hist: usize, bins: i32, need: u32, st: usize): i32 {
  for (let b = bins - 1; b >= 0; b--) {
    const c = load<u32>(hist + (<usize>b << 2));
    if (c >= need) {
      store<u32>(st, need);
      return b;
    }
    need -= c;
  }
  store<u32>(st, need);
  return -1;
}

// ------------------------------------------------------------------ the fused pass

/** Trim decision for one magnitude against (t, need at st); consumes need for an element equal to t. */
@inline function keepMag(m: i32, t: i32, st: usize): bool {
  if (m > t) return true;
  if (m == t) {
    const need = load<u32>(st);
    if (need > 0) {
      store<u32>(st, need - 1);
      return true;
    }
  }
  return false;
}

/** One element of the two-vector pass (the scalar path, and the SIMD path's fallback at the threshold). */
@inline function merge2One(base: usize, a: usize, b: usize, o: usize, st: usize, w0: f32, lambda: f32, out: usize): void {
  const bv = load<f32>(base + o);
  let x = load<f32>(a + o) - bv;
  let y = load<f32>(b + o) - bv;
  if (!keepMag(mag(x), load<i32>(st), st + 4)) x = 0;
  if (!keepMag(mag(y), load<i32>(st, 8), st + 12)) y = 0;
  let m: f32 = 0;
  const s = x + y; // its sign is the sign of the exact sum (rounding never flips it), as in f64
  if (s > 0) m = x > 0 ? (y > 0 ? <f32>((<f64>x + <f64>y) * 0.5) : x) : y;
  else if (s < 0) m = x < 0 ? (y < 0 ? <f32>((<f64>x + <f64>y) * 0.5) : x) : y;
  store<f32>(out + o, bv * w0 + m * lambda);
}

/**
 * Four lanes of the two-vector pass, none of them at a threshold that still needs elements. The
 * same result as merge2One, formulated for SIMD: when the kept entries are both nonzero with one
 * sign, their f64 mean; otherwise the one of larger magnitude (the sum has its sign; equal
 * magnitudes of opposite signs cancel); and 0 when the sum is zero or NaN.
 */
@inline function merge2Lanes(bv: v128, x: v128, y: v128, TA: v128, TB: v128, W0: v128, LAM: v128): v128 {
  const M = i32x4.splat(MAG), Z = f32x4.splat(0);
  let mx = v128.and(x, M), my = v128.and(y, M);
  const kx = i32x4.gt_s(mx, TA), ky = i32x4.gt_s(my, TB);
  x = v128.and(x, kx);
  y = v128.and(y, ky);
  mx = v128.and(mx, kx);
  my = v128.and(my, ky);
  const valid = f32x4.gt(v128.and(f32x4.add(x, y), M), Z); // the sum is nonzero and not NaN
  let merged = v128.bitselect(x, y, i32x4.gt_s(mx, my));
  const same = v128.and(i32x4.gt_s(v128.xor(x, y), i32x4.splat(-1)), i32x4.gt_s(i32x4.min_s(mx, my), i32x4.splat(0)));
  if (v128.any_true(same)) {
    const HALF = f64x2.splat(0.5);
    const lo = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.add(f64x2.promote_low_f32x4(x), f64x2.promote_low_f32x4(y)), HALF));
    const xh = i32x4.shuffle(x, x, 2, 3, 0, 1), yh = i32x4.shuffle(y, y, 2, 3, 0, 1);
    const hi = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.add(f64x2.promote_low_f32x4(xh), f64x2.promote_low_f32x4(yh)), HALF));
    merged = v128.bitselect(i32x4.shuffle(lo, hi, 0, 1, 4, 5), merged, same);
  }
  return f32x4.add(f32x4.mul(bv, W0), f32x4.mul(v128.and(merged, valid), LAM));
}

/**
 * TIES for two task vectors (model a, model b against base), n elements:
 * out = base·w0 + lambda·merged, where each tau is kept when |tau| > t (or == t while need lasts),
 * the sign is elected by the sum of the kept entries and merged is the mean of the entries agreeing
 * with it (0 when none). st: [t_a i32, need_a u32, t_b i32, need_b u32], needs updated.
 * out may alias an input.
 */
export function ties_merge2_f32(base: usize, a: usize, b: usize, n: usize, st: usize, w0: f32, lambda: f32, out: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const M = i32x4.splat(MAG), W0 = f32x4.splat(w0), LAM = f32x4.splat(lambda);
    const TA = i32x4.splat(load<i32>(st)), TB = i32x4.splat(load<i32>(st, 8));
    for (; i + 8 <= n; i += 8) {
      const o = i << 2;
      const pb = base + o, pa = a + o, pc = b + o;
      const b0 = v128.load(pb), b1 = v128.load(pb, 16);
      const x0 = f32x4.sub(v128.load(pa), b0), x1 = f32x4.sub(v128.load(pa, 16), b1);
      const y0 = f32x4.sub(v128.load(pc), b0), y1 = f32x4.sub(v128.load(pc, 16), b1);
      // an element at a threshold while that vector still needs some: element by element, in order
      if (load<u32>(st, 4) | load<u32>(st, 12)) {
        const e = v128.or(
          v128.or(i32x4.eq(v128.and(x0, M), TA), i32x4.eq(v128.and(x1, M), TA)),
          v128.or(i32x4.eq(v128.and(y0, M), TB), i32x4.eq(v128.and(y1, M), TB)));
        if (v128.any_true(e)) {
          for (let j: usize = 0; j < 8; j++) merge2One(base, a, b, o + (j << 2), st, w0, lambda, out);
          continue;
        }
      }
      v128.store(out + o, merge2Lanes(b0, x0, y0, TA, TB, W0, LAM));
      v128.store(out + o, merge2Lanes(b1, x1, y1, TA, TB, W0, LAM), 16);
    }
  }
  for (; i < n; i++) merge2One(base, a, b, i << 2, st, w0, lambda, out);
}

/**
 * TIES for k task vectors (any k >= 1; the host uses ties_merge2_f32 for two): ptrs holds k u32
 * pointers to the models, st k pairs [t i32, need u32], tmp room for k f32. The sign sum and the
 * mean are in f64, summed in model order. out may alias an input.
 */
export function ties_merge_f32(base: usize, ptrs: usize, k: usize, n: usize, st: usize, tmp: usize, w0: f32, lambda: f32, out: usize): void {
  for (let i: usize = 0; i < n; i++) {
    const o = i << 2;
    const bv = load<f32>(base + o);
    let s: f64 = 0;
    for (let j: usize = 0; j < k; j++) {
      let x = load<f32>(<usize>load<u32>(ptrs + (j << 2)) + o) - bv;
      const sj = st + (j << 3);
      if (!keepMag(mag(x), load<i32>(sj), sj + 4)) x = 0;
      store<f32>(tmp + (j << 2), x);
      s += <f64>x;
    }
    let m: f32 = 0;
    if (s > 0 || s < 0) {
      let sum: f64 = 0;
      let count: i32 = 0;
      for (let j: usize = 0; j < k; j++) {
        const v = load<f32>(tmp + (j << 2));
        if (s > 0 ? v > 0 : v < 0) {
          sum += <f64>v;
          count++;
        }
      }
      m = <f32>(sum / <f64>count);
    }
    store<f32>(out + o, bv * w0 + m * lambda);
  }
}
