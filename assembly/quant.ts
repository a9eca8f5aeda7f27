// Blockwise int8 absmax quantization. For each block of `block` elements: m = max |x|,
// scale = m / 127 (stored as one f32 per block), q = round_half_even(x * (127 / m)) in
// [-127, 127]. An all-zero block has scale 0 and q = 0. A block holding NaN or ±Inf gets a
// NaN/Inf scale and q = 0, so it dequantizes to NaN: non-finite values are not representable.

@inline function quantBlock(x: usize, len: usize, q: usize, scaleOut: usize): void {
  let j: usize = 0;
  let m: f32 = 0;
  if (ASC_FEATURE_SIMD) {
    let m0 = f32x4.splat(0), m1 = f32x4.splat(0), m2 = f32x4.splat(0), m3 = f32x4.splat(0);
    for (; j + 16 <= len; j += 16) {
      const p = x + (j << 2);
      m0 = f32x4.max(m0, f32x4.abs(v128.load(p)));
      m1 = f32x4.max(m1, f32x4.abs(v128.load(p, 16)));
      m2 = f32x4.max(m2, f32x4.abs(v128.load(p, 32)));
      m3 = f32x4.max(m3, f32x4.abs(v128.load(p, 48)));
    }
    let mm = f32x4.max(f32x4.max(m0, m1), f32x4.max(m2, m3));
    mm = f32x4.max(mm, i64x2.shuffle(mm, mm, 1, 0));
    mm = f32x4.max(mm, i32x4.shuffle(mm, mm, 1, 0, 3, 2));
    m = f32x4.extract_lane(mm, 0);
  }
  for (; j < len; j++) m = max(m, Mathf.abs(load<f32>(x + (j << 2))));
  const inv: f32 = m > 0 ? <f32>127 / m : 0;
  store<f32>(scaleOut, m / 127);
  if (inv == 0) {
    // all-zero block, or NaN/Inf in it: every q is 0
    memory.fill(q, 0, len);
    return;
  }
  j = 0;
  if (ASC_FEATURE_SIMD) {
    // |x * inv| <= 127.5, so adding 1.5 * 2^23 rounds to nearest even into the low mantissa
    // bits; subtracting the magic's bits leaves the integer (same as nearest + truncate).
    const iv = f32x4.splat(inv);
    const magic = f32x4.splat(12582912.0);
    for (; j + 16 <= len; j += 16) {
      const p = x + (j << 2);
      const i0 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(p), iv), magic), magic);
      const i1 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(p, 16), iv), magic), magic);
      const i2 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(p, 32), iv), magic), magic);
      const i3 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(p, 48), iv), magic), magic);
      v128.store(q + j, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i0, i1), i16x8.narrow_i32x4_s(i2, i3)));
    }
  }
  for (; j < len; j++) {
    let v = <i32>nearest<f32>(load<f32>(x + (j << 2)) * inv);
    v = v > 127 ? 127 : v < -127 ? -127 : v;
    store<i8>(q + j, <i8>v);
  }
}

/** x: n f32 -> q: n i8 and scales: ceil(n / block) f32. */
export function quantize_int8(x: usize, n: usize, block: usize, q: usize, scales: usize): void {
  let b: usize = 0;
  for (let i: usize = 0; i < n; i += block) {
    const len = i + block <= n ? block : n - i;
    quantBlock(x + (i << 2), len, q + i, scales + (b << 2));
    b++;
  }
}

/** out[i] = q[i] * scales[i / block] */
export function dequantize_int8(q: usize, scales: usize, n: usize, block: usize, out: usize): void {
  let b: usize = 0;
  for (let i: usize = 0; i < n; i += block) {
    const len = i + block <= n ? block : n - i;
    const s = load<f32>(scales + (b << 2));
    const pq = q + i, po = out + (i << 2);
    let j: usize = 0;
    if (ASC_FEATURE_SIMD) {
      const sv = f32x4.splat(s);
      for (; j + 16 <= len; j += 16) {
        const v = v128.load(pq + j);
        const lo = i16x8.extend_low_i8x16_s(v), hi = i16x8.extend_high_i8x16_s(v);
        const p = po + (j << 2);
        v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), sv));
        v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), sv), 16);
        v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), sv), 32);
        v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), sv), 48);
      }
    }
    for (; j < len; j++) store<f32>(po + (j << 2), <f32>load<i8>(pq + j) * s);
    b++;
  }
}
