// Element-wise F32 kernels: delta (a-b), apply (a+d), multiply (a*b), scale (a*s) and the
// weighted sum of k inputs. out may alias an input. Plain IEEE f32 arithmetic (no FMA), so the
// SIMD and scalar builds give identical bits.

const OP_SUB = 0;
const OP_ADD = 1;
const OP_MUL = 2;

@inline function opv(op: i32, x: v128, y: v128): v128 {
  if (op == OP_SUB) return f32x4.sub(x, y);
  if (op == OP_ADD) return f32x4.add(x, y);
  return f32x4.mul(x, y);
}

@inline function ops(op: i32, x: f32, y: f32): f32 {
  if (op == OP_SUB) return x - y;
  if (op == OP_ADD) return x + y;
  return x * y;
}

@inline function binary(op: i32, a: usize, b: usize, out: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 16 <= n; i += 16) {
      const o = i << 2;
      const pa = a + o, pb = b + o, po = out + o;
      const a0 = v128.load(pa), a1 = v128.load(pa, 16), a2 = v128.load(pa, 32), a3 = v128.load(pa, 48);
      const b0 = v128.load(pb), b1 = v128.load(pb, 16), b2 = v128.load(pb, 32), b3 = v128.load(pb, 48);
      v128.store(po, opv(op, a0, b0));
      v128.store(po, opv(op, a1, b1), 16);
      v128.store(po, opv(op, a2, b2), 32);
      v128.store(po, opv(op, a3, b3), 48);
    }
    for (; i + 4 <= n; i += 4) {
      const o = i << 2;
      v128.store(out + o, opv(op, v128.load(a + o), v128.load(b + o)));
    }
  } else {
    for (; i + 4 <= n; i += 4) {
      const o = i << 2;
      const pa = a + o, pb = b + o, po = out + o;
      const a0 = load<f32>(pa), a1 = load<f32>(pa, 4), a2 = load<f32>(pa, 8), a3 = load<f32>(pa, 12);
      const b0 = load<f32>(pb), b1 = load<f32>(pb, 4), b2 = load<f32>(pb, 8), b3 = load<f32>(pb, 12);
      store<f32>(po, ops(op, a0, b0));
      store<f32>(po, ops(op, a1, b1), 4);
      store<f32>(po, ops(op, a2, b2), 8);
      store<f32>(po, ops(op, a3, b3), 12);
    }
  }
  for (; i < n; i++) {
    const o = i << 2;
    store<f32>(out + o, ops(op, load<f32>(a + o), load<f32>(b + o)));
  }
}

/** out = a - b */
export function delta_f32(a: usize, b: usize, out: usize, n: usize): void { binary(OP_SUB, a, b, out, n); }
/** out = a + d */
export function apply_f32(a: usize, d: usize, out: usize, n: usize): void { binary(OP_ADD, a, d, out, n); }
/** out = a * b */
export function multiply_f32(a: usize, b: usize, out: usize, n: usize): void { binary(OP_MUL, a, b, out, n); }

/** out = a * s */
export function scale_f32(a: usize, s: f32, out: usize, n: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const sv = f32x4.splat(s);
    for (; i + 16 <= n; i += 16) {
      const o = i << 2;
      const pa = a + o, po = out + o;
      const a0 = v128.load(pa), a1 = v128.load(pa, 16), a2 = v128.load(pa, 32), a3 = v128.load(pa, 48);
      v128.store(po, f32x4.mul(a0, sv));
      v128.store(po, f32x4.mul(a1, sv), 16);
      v128.store(po, f32x4.mul(a2, sv), 32);
      v128.store(po, f32x4.mul(a3, sv), 48);
    }
  }
  for (; i < n; i++) {
    const o = i << 2;
    store<f32>(out + o, load<f32>(a + o) * s);
  }
}

/**
 * out[i] = w[0]*x0[i] + w[1]*x1[i] + ... + w[k-1]*x{k-1}[i], summed left to right in f32.
 * ptrs: k u32 pointers to the inputs; weights: k f32. k = 0 writes zeros.
 */
export function weighted_sum_f32(ptrs: usize, weights: usize, k: usize, out: usize, n: usize): void {
  if (k == 0) {
    memory.fill(out, 0, n << 2);
    return;
  }
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 16 <= n; i += 16) {
      const o = i << 2;
      let p = <usize>load<u32>(ptrs) + o;
      let w = f32x4.splat(load<f32>(weights));
      let a0 = f32x4.mul(v128.load(p), w), a1 = f32x4.mul(v128.load(p, 16), w);
      let a2 = f32x4.mul(v128.load(p, 32), w), a3 = f32x4.mul(v128.load(p, 48), w);
      for (let j: usize = 1; j < k; j++) {
        p = <usize>load<u32>(ptrs + (j << 2)) + o;
        w = f32x4.splat(load<f32>(weights + (j << 2)));
        a0 = f32x4.add(a0, f32x4.mul(v128.load(p), w));
        a1 = f32x4.add(a1, f32x4.mul(v128.load(p, 16), w));
        a2 = f32x4.add(a2, f32x4.mul(v128.load(p, 32), w));
        a3 = f32x4.add(a3, f32x4.mul(v128.load(p, 48), w));
      }
      const po = out + o;
      v128.store(po, a0);
      v128.store(po, a1, 16);
      v128.store(po, a2, 32);
      v128.store(po, a3, 48);
    }
  }
  for (; i < n; i++) {
    const o = i << 2;
    let acc = load<f32>(<usize>load<u32>(ptrs) + o) * load<f32>(weights);
    for (let j: usize = 1; j < k; j++) acc += load<f32>(<usize>load<u32>(ptrs + (j << 2)) + o) * load<f32>(weights + (j << 2));
    store<f32>(out + o, acc);
  }
}
