// Sparse kernels. Indices are u32 element indices local to the buffers passed in; the host adds
// chunk offsets. Output buffers must have room for n entries (the worst case).

/**
 * Writes the indices i where a[i] != b[i] and !(|a[i]-b[i]| <= threshold) (so NaN differences are
 * kept, equal infinities are not), and the values a[i]-b[i]. Returns how many were written.
 */
export function sparse_extract_f32(a: usize, b: usize, n: usize, threshold: f32, outIdx: usize, outVal: usize): usize {
  let c: usize = 0;
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const t = f32x4.splat(threshold);
    for (; i + 16 <= n; i += 16) {
      const o = i << 2;
      const pa = a + o, pb = b + o;
      const a0 = v128.load(pa), a1 = v128.load(pa, 16), a2 = v128.load(pa, 32), a3 = v128.load(pa, 48);
      const b0 = v128.load(pb), b1 = v128.load(pb, 16), b2 = v128.load(pb, 32), b3 = v128.load(pb, 48);
      const k0 = v128.andnot(f32x4.ne(a0, b0), f32x4.le(f32x4.abs(f32x4.sub(a0, b0)), t));
      const k1 = v128.andnot(f32x4.ne(a1, b1), f32x4.le(f32x4.abs(f32x4.sub(a1, b1)), t));
      const k2 = v128.andnot(f32x4.ne(a2, b2), f32x4.le(f32x4.abs(f32x4.sub(a2, b2)), t));
      const k3 = v128.andnot(f32x4.ne(a3, b3), f32x4.le(f32x4.abs(f32x4.sub(a3, b3)), t));
      if (!v128.any_true(v128.or(v128.or(k0, k1), v128.or(k2, k3)))) continue;
      for (let j: usize = i; j < i + 16; j++) {
        const x = load<f32>(a + (j << 2)), y = load<f32>(b + (j << 2));
        const d = x - y;
        if (x != y && !(Mathf.abs(d) <= threshold)) {
          store<u32>(outIdx + (c << 2), <u32>j);
          store<f32>(outVal + (c << 2), d);
          c++;
        }
      }
    }
  }
  for (; i < n; i++) {
    const x = load<f32>(a + (i << 2)), y = load<f32>(b + (i << 2));
    const d = x - y;
    if (x != y && !(Mathf.abs(d) <= threshold)) {
      store<u32>(outIdx + (c << 2), <u32>i);
      store<f32>(outVal + (c << 2), d);
      c++;
    }
  }
  return c;
}

/** target[idx[j]] += vals[j] for j < k (in order; repeated indices accumulate). */
export function scatter_add_f32(target: usize, idx: usize, vals: usize, k: usize): void {
  for (let j: usize = 0; j < k; j++) {
    const p = target + (<usize>load<u32>(idx + (j << 2)) << 2);
    store<f32>(p, load<f32>(p) + load<f32>(vals + (j << 2)));
  }
}

@inline function elemDiffers(a: usize, b: usize, esize: usize): bool {
  if (esize == 1) return load<u8>(a) != load<u8>(b);
  if (esize == 2) return load<u16>(a) != load<u16>(b);
  if (esize == 4) return load<u32>(a) != load<u32>(b);
  if (esize == 8) return load<u64>(a) != load<u64>(b);
  return memory.compare(a, b, esize) != 0;
}

@inline function changedRange(a: usize, b: usize, from: usize, to: usize, esize: usize, outIdx: usize, c: usize): usize {
  for (let j = from; j < to; j++) {
    const o = j * esize;
    if (elemDiffers(a + o, b + o, esize)) {
      store<u32>(outIdx + (c << 2), <u32>j);
      c++;
    }
  }
  return c;
}

/**
 * Bitwise-exact change detection: writes the indices of the n elements (esize bytes each) whose
 * bytes differ between a and b. Returns the count.
 */
export function changed_indices(a: usize, b: usize, n: usize, esize: usize, outIdx: usize): usize {
  let c: usize = 0;
  let i: usize = 0;
  if (esize == 1 || esize == 2 || esize == 4 || esize == 8) {
    const per = <usize>64 / esize; // elements per 64-byte block
    for (; i + per <= n; i += per) {
      const o = i * esize;
      const pa = a + o, pb = b + o;
      let same: bool;
      if (ASC_FEATURE_SIMD) {
        const e0 = i8x16.eq(v128.load(pa), v128.load(pb));
        const e1 = i8x16.eq(v128.load(pa, 16), v128.load(pb, 16));
        const e2 = i8x16.eq(v128.load(pa, 32), v128.load(pb, 32));
        const e3 = i8x16.eq(v128.load(pa, 48), v128.load(pb, 48));
        same = v128.all_true<i8>(v128.and(v128.and(e0, e1), v128.and(e2, e3)));
      } else {
        same = ((load<u64>(pa) ^ load<u64>(pb)) | (load<u64>(pa, 8) ^ load<u64>(pb, 8)) |
          (load<u64>(pa, 16) ^ load<u64>(pb, 16)) | (load<u64>(pa, 24) ^ load<u64>(pb, 24)) |
          (load<u64>(pa, 32) ^ load<u64>(pb, 32)) | (load<u64>(pa, 40) ^ load<u64>(pb, 40)) |
          (load<u64>(pa, 48) ^ load<u64>(pb, 48)) | (load<u64>(pa, 56) ^ load<u64>(pb, 56))) == 0;
      }
      if (!same) c = changedRange(a, b, i, i + per, esize, outIdx, c);
    }
  }
  return changedRange(a, b, i, n, esize, outIdx, c);
}

/** out[j] = src[idx[j]] for j < k, elements of esize bytes. */
export function gather(src: usize, esize: usize, idx: usize, k: usize, out: usize): void {
  for (let j: usize = 0; j < k; j++) {
    const s = src + <usize>load<u32>(idx + (j << 2)) * esize;
    const d = out + j * esize;
    if (esize == 4) store<u32>(d, load<u32>(s));
    else if (esize == 2) store<u16>(d, load<u16>(s));
    else if (esize == 8) store<u64>(d, load<u64>(s));
    else if (esize == 1) store<u8>(d, load<u8>(s));
    else memory.copy(d, s, esize);
  }
}

/** dst[idx[j]] = vals[j] for j < k (in order: the last write to an index wins). */
export function scatter(dst: usize, esize: usize, idx: usize, k: usize, vals: usize): void {
  for (let j: usize = 0; j < k; j++) {
    const d = dst + <usize>load<u32>(idx + (j << 2)) * esize;
    const s = vals + j * esize;
    if (esize == 4) store<u32>(d, load<u32>(s));
    else if (esize == 2) store<u16>(d, load<u16>(s));
    else if (esize == 8) store<u64>(d, load<u64>(s));
    else if (esize == 1) store<u8>(d, load<u8>(s));
    else memory.copy(d, s, esize);
  }
}
