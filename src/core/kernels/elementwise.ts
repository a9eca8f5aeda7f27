/**
 * Element-wise kernels over F32 arrays (assembly/elementwise.ts): a - b, a + d, a * b, a * s and
 * weighted sums, piece by piece through SCRATCH. Tiny arrays run in JS (same bits).
 */
import { ArgumentError } from '../errors.ts';
import { type KernelMemory, align64 } from './memory.ts';

/** Element-wise ops on fewer elements than this run in JS (same bits, no call overhead). */
const SMALL_N = 32;

function binary(mem: KernelMemory, name: 'delta' | 'apply' | 'multiply', a: Float32Array, b: Float32Array, out: Float32Array | undefined, js: (x: number, y: number) => number): Float32Array {
  if (a.length !== b.length) throw new ArgumentError(`${name}: arrays must have the same length (got ${a.length} and ${b.length})`);
  const n = a.length;
  out ??= new Float32Array(n);
  if (out.length !== n) throw new ArgumentError(`${name}: out has length ${out.length}, expected ${n}`);
  if (n < SMALL_N) {
    for (let i = 0; i < n; i++) out[i] = js(a[i], b[i]);
    return out;
  }
  const k = mem.x[`${name}_f32`];
  const piece = mem.pieceElems(12);
  const A = mem.SCRATCH, B = align64(A + piece * 4), O = align64(B + piece * 4);
  mem.reach(O + piece * 4);
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.f32.set(a.subarray(off, off + m), A >> 2);
    mem.f32.set(b.subarray(off, off + m), B >> 2);
    k(A, B, O, m);
    out.set(mem.f32.subarray(O >> 2, (O >> 2) + m), off);
  }
  return out;
}


/** out = a - b */
export function delta(mem: KernelMemory, a: Float32Array, b: Float32Array, out?: Float32Array): Float32Array {
  return binary(mem, 'delta', a, b, out, (x, y) => x - y);
}

/** out = a + d */
export function apply(mem: KernelMemory, a: Float32Array, d: Float32Array, out?: Float32Array): Float32Array {
  return binary(mem, 'apply', a, d, out, (x, y) => x + y);
}

/** out = a * b */
export function multiply(mem: KernelMemory, a: Float32Array, b: Float32Array, out?: Float32Array): Float32Array {
  return binary(mem, 'multiply', a, b, out, (x, y) => x * y);
}

/** out = a * s (s rounded to f32) */
export function scale(mem: KernelMemory, a: Float32Array, s: number, out?: Float32Array): Float32Array {
  const n = a.length;
  out ??= new Float32Array(n);
  if (out.length !== n) throw new ArgumentError(`scale: out has length ${out.length}, expected ${n}`);
  const sf = Math.fround(s);
  if (n < SMALL_N) {
    for (let i = 0; i < n; i++) out[i] = a[i] * sf;
    return out;
  }
  const k = mem.x.scale_f32;
  const piece = mem.pieceElems(8);
  const A = mem.SCRATCH, O = align64(A + piece * 4);
  mem.reach(O + piece * 4);
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.f32.set(a.subarray(off, off + m), A >> 2);
    k(A, sf, O, m);
    out.set(mem.f32.subarray(O >> 2, (O >> 2) + m), off);
  }
  return out;
}

/** out = sum_i weights[i] * inputs[i], left to right in f32 (weights rounded to f32). */
export function weightedSum(mem: KernelMemory, inputs: readonly Float32Array[], weights: readonly number[], out?: Float32Array): Float32Array {
  if (inputs.length === 0) throw new ArgumentError('weightedSum: need at least one input');
  if (inputs.length !== weights.length) throw new ArgumentError(`weightedSum: ${inputs.length} inputs but ${weights.length} weights`);
  if (inputs.length > 1024) throw new ArgumentError('weightedSum: at most 1024 inputs');
  const n = inputs[0].length;
  for (const x of inputs) if (x.length !== n) throw new ArgumentError('weightedSum: inputs must have the same length');
  out ??= new Float32Array(n);
  if (out.length !== n) throw new ArgumentError(`weightedSum: out has length ${out.length}, expected ${n}`);
  const k = inputs.length;
  const w = weights.map((x) => Math.fround(x));
  if (n < SMALL_N) {
    for (let i = 0; i < n; i++) {
      let acc = Math.fround(inputs[0][i] * w[0]);
      for (let j = 1; j < k; j++) acc = Math.fround(acc + Math.fround(inputs[j][i] * w[j]));
      out[i] = acc;
    }
    return out;
  }
  const fn = mem.x.weighted_sum_f32;
  const piece = mem.pieceElems(4 * (k + 1));
  const PTRS = mem.SMALL, WTS = mem.SMALL + 4096;
  const ptrs: number[] = [];
  let p = mem.SCRATCH;
  for (let j = 0; j < k; j++) {
    ptrs.push(p);
    p = align64(p + piece * 4);
  }
  const O = p;
  mem.reach(O + piece * 4);
  mem.u32.set(ptrs, PTRS >> 2);
  mem.f32.set(w, WTS >> 2);
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    for (let j = 0; j < k; j++) mem.f32.set(inputs[j].subarray(off, off + m), ptrs[j] >> 2);
    fn(PTRS, WTS, k, O, m);
    out.set(mem.f32.subarray(O >> 2, (O >> 2) + m), off);
  }
  return out;
}
