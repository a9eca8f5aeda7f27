// Shared reference code for the kernel tests: a seeded PRNG, plain reference loops, and
// bit-level comparison helpers. Written independently of assembly/ (different formulations).
import { Kernels } from '../../src/core/kernels.ts';

/** xorshift32-based PRNG (deterministic across runtimes). */
export function rng(seed: number) {
  let s = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  return {
    u32: next,
    /** uniform in [0, 1) */
    float: () => next() / 4294967296,
    /** standard-ish normal (sum of uniforms, exact operations only) */
    normal: () => {
      let t = 0;
      for (let i = 0; i < 4; i++) t += next() / 4294967296;
      return (t - 2) * 1.7320508075688772;
    },
    int: (n: number) => next() % n,
  };
}

export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal() * scale;
  return a;
}

/** Random f32 values with NaN, ±Inf, subnormals and ±0 sprinkled in. */
export function edgyF32(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = randomF32(n, seed + 1);
  const u = new Uint32Array(a.buffer);
  for (let i = 0; i < n; i++) {
    const k = r.int(40);
    if (k === 0) a[i] = NaN;
    else if (k === 1) a[i] = Infinity;
    else if (k === 2) a[i] = -Infinity;
    else if (k === 3) u[i] = r.u32() & 0x807fffff; // subnormal
    else if (k === 4) a[i] = -0;
    else if (k === 5) a[i] = 0;
    else if (k === 6) u[i] = 0x7f800001 | (r.u32() & 0x803fffff); // signalling-ish NaN with payload
  }
  return a;
}

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Copy of `bytes` placed at an odd byte offset of a fresh buffer (unaligned view). */
export function unaligned(bytes: Uint8Array, offset = 3): Uint8Array {
  const buf = new Uint8Array(bytes.length + offset + 5);
  buf.set(bytes, offset);
  return buf.subarray(offset, offset + bytes.length);
}

/** f32 bits equal, treating every NaN as equal to every NaN. */
export function sameF32(a: Float32Array, b: Float32Array): string | null {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i] && !(a[i] !== a[i] && b[i] !== b[i])) return `index ${i}: ${a[i]} (0x${ua[i].toString(16)}) != ${b[i]} (0x${ub[i].toString(16)})`;
  }
  return null;
}

/** Object.is for numbers, but any NaN equals any NaN. */
export function sameNum(a: number, b: number): boolean {
  return Object.is(a, b) || (a !== a && b !== b);
}

export function sameObj(a: Record<string, number>, b: Record<string, number>): string | null {
  for (const k of Object.keys(b)) if (!sameNum(a[k], b[k])) return `${k}: ${a[k]} != ${b[k]}`;
  return null;
}

/** Splits bytes into pieces at random points (including inside elements). */
export function randomSplits(bytes: Uint8Array, seed: number, maxPiece: number): Uint8Array[] {
  const r = rng(seed);
  const out: Uint8Array[] = [];
  let p = 0;
  while (p < bytes.length) {
    const len = Math.min(bytes.length - p, r.int(maxPiece + 1));
    out.push(bytes.subarray(p, p + len));
    p += len;
  }
  out.push(bytes.subarray(bytes.length)); // an empty chunk too
  return out;
}

/** The kernel instances every test runs against (SIMD, scalar, and odd chunk sizes). */
export interface Instances {
  simd: Kernels;
  scalar: Kernels;
  /** SIMD and scalar instances with small and odd chunk sizes */
  chunked: Kernels[];
  all: Kernels[];
  /** SIMD, scalar and one small-chunk instance (for the heavier exhaustive checks) */
  some: Kernels[];
}

let cached: Promise<Instances> | undefined;
export function instances(): Promise<Instances> {
  cached ??= (async () => {
    const simd = await Kernels.create({ variant: 'simd' });
    const scalar = await Kernels.create({ variant: 'scalar' });
    const chunked = [
      await Kernels.create({ variant: 'simd', chunkBytes: 100 }),
      await Kernels.create({ variant: 'simd', chunkBytes: 4099, scratchBytes: 1 << 20 }),
      await Kernels.create({ variant: 'scalar', chunkBytes: 777 }),
      await Kernels.create({ variant: 'simd', chunkBytes: 65536 + 13 }),
    ];
    return { simd, scalar, chunked, all: [simd, scalar, ...chunked], some: [simd, scalar, chunked[0]] };
  })();
  return cached;
}

export function label(k: Kernels): string {
  return `${k.variant}/chunk ${k.chunkBytes}`;
}

// ---------------------------------------------------------------- reference converters

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);
export const f32bits = (x: number) => ((f32buf[0] = x), u32buf[0]);
export const bitsF32 = (u: number) => ((u32buf[0] = u), f32buf[0]);

/** IEEE half bits -> f32 bits, by value arithmetic (not bit tricks), NaN payload kept. */
export function refF16toF32Bits(h: number): number {
  const s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return ((s << 31) | 0x7f800000 | (m << 13)) >>> 0;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return f32bits(s ? -v : v);
}

/** bfloat16 bits -> f32 bits by value arithmetic. */
export function refBF16toF32Bits(h: number): number {
  const s = h >> 15, e = (h >> 7) & 255, m = h & 127;
  if (e === 255) return ((s << 31) | 0x7f800000 | (m << 16)) >>> 0;
  const v = e === 0 ? m * 2 ** -133 : (1 + m / 128) * 2 ** (e - 127);
  return f32bits(s ? -v : v);
}

function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const d = q - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
export { roundHalfEven };

/** f32 (as number) -> half bits, round to nearest even by value arithmetic. */
export function refF32toF16(bits: number): number {
  const x = bitsF32(bits);
  const s = bits >>> 31 ? 0x8000 : 0;
  if (x !== x) return s | 0x7e00 | ((bits >>> 13) & 0x3ff);
  const a = Math.abs(x);
  if (a === Infinity) return s | 0x7c00;
  // find e with 2^e <= a < 2^(e+1) for normals in half range
  if (a < 2 ** -14) return s | roundHalfEven(a * 2 ** 24); // subnormal (may round up to 0x400, the smallest normal)
  let e = Math.max(-14, Math.floor(Math.log2(a)));
  while (a < 2 ** e) e--;
  while (a >= 2 ** (e + 1)) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) { m = 0; e++; }
  if (e > 15) return s | 0x7c00;
  return s | ((e + 15) << 10) | m;
}

/** f32 -> bfloat16 bits, round to nearest even by value arithmetic. */
export function refF32toBF16(bits: number): number {
  const x = bitsF32(bits);
  const s = bits >>> 31 ? 0x8000 : 0;
  if (x !== x) return (bits >>> 16) | 0x40;
  const a = Math.abs(x);
  if (a === Infinity) return s | 0x7f80;
  if (a < 2 ** -126) return s | roundHalfEven(a * 2 ** 133);
  let e = Math.max(-126, Math.floor(Math.log2(a)));
  while (a < 2 ** e) e--;
  while (a >= 2 ** (e + 1)) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 128);
  if (m === 128) { m = 0; e++; }
  if (e > 127) return s | 0x7f80;
  return s | ((e + 127) << 7) | m;
}

// ---------------------------------------------------------------- reference reductions

/** Reference stats: f64 sums in 4 lanes by element index, over finite values. */
export function refStats(values: ArrayLike<number>) {
  const s = [0, 0, 0, 0], q = [0, 0, 0, 0];
  let mn = Infinity, mx = -Infinity, ma = 0, nan = 0, inf = 0, fin = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      s[i & 3] += v;
      q[i & 3] += v * v;
      if (v < mn || (v === 0 && mn === 0 && Object.is(v, -0))) mn = v;
      if (v > mx || (v === 0 && mx === 0 && Object.is(mx, -0))) mx = v;
      if (Math.abs(v) > ma) ma = Math.abs(v);
      fin++;
    } else {
      s[i & 3] += 0;
      q[i & 3] += 0;
      if (v !== v) nan++;
      else inf++;
    }
  }
  const sum = s[0] + s[1] + s[2] + s[3], sumsq = q[0] + q[1] + q[2] + q[3];
  return {
    count: values.length, finite: fin, nan, inf, sum, sumsq,
    min: fin ? mn : NaN, max: fin ? mx : NaN, maxabs: fin ? ma : NaN,
  };
}

export function refCompare(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number) {
  const dot = [0, 0, 0, 0], sa = [0, 0, 0, 0], sb = [0, 0, 0, 0], sd = [0, 0, 0, 0];
  let md = 0, nc = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    const d = x === y ? 0 : x - y;
    dot[i & 3] += x * y;
    sa[i & 3] += x * x;
    sb[i & 3] += y * y;
    sd[i & 3] += d * d;
    md = md !== md || Math.abs(d) !== Math.abs(d) ? NaN : Math.max(md, Math.abs(d));
    const close = x === y || (Number.isFinite(y) && Math.abs(d) <= atol + rtol * Math.abs(y));
    if (!close) nc++;
  }
  const sum = (v: number[]) => v[0] + v[1] + v[2] + v[3];
  return { count: a.length, dot: sum(dot), sumsqA: sum(sa), sumsqB: sum(sb), sumsqDiff: sum(sd), maxAbsDiff: md, notClose: nc };
}
