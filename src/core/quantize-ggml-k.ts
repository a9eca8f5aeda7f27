/**
 * Quantizing float32 values into ggml K-quant super-blocks of 256 values (layouts as ggml defines
 * them): Q4_K, Q5_K (8 sub-blocks of 32 with 6-bit scales and mins), Q6_K (16 sub-blocks of 16
 * with int8 scales) and Q8_K (f32 scale, int8 codes, int16 sums of 16).
 *
 * Scales: each sub-block's float scale (and min) comes from its range, the super-block's f16
 * scale from the largest of them; then each sub-block tries its quantized scale (and min) ±1 and
 * keeps the pair with the least squared error against the values actually stored.
 */
import { ArgumentError } from './errors.ts';
import { f16BitsToF32, f32ToF16Bits } from './quantize-ggml.ts';

const QK = 256;
const round16 = (x: number) => f16BitsToF32(f32ToF16Bits(x));
const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = v >>> 8;
}

/** 6-bit scales and mins of 8 sub-blocks packed into 12 bytes (ggml's get_scale_min_k4 order). */
function packScalesMins(out: Uint8Array, at: number, ls: Int32Array, lm: Int32Array): void {
  for (let k = 0; k < 12; k++) out[at + k] = 0;
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[at + j] = ls[j];
      out[at + j + 4] = lm[j];
    } else {
      out[at + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      out[at + j - 4] |= (ls[j] >> 4) << 6;
      out[at + j] |= (lm[j] >> 4) << 6;
    }
  }
}

/**
 * Q4_K / Q5_K: per sub-block of 32, y = d·sc·q − dmin·m with q in 0..nmax. Codes go to `L`
 * (256 values); the 12 scale bytes and d, dmin are written at `out[at..]`.
 */
function affineK(x: Float32Array, o: number, nmax: number, out: Uint8Array, at: number, L: Uint8Array): void {
  const scale = new Float32Array(8);
  const min = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let l = 0; l < 32; l++) {
      const v = x[o + j * 32 + l];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    lo = Math.min(lo, 0); // ggml keeps mins ≤ 0 (stored as a positive m that is subtracted)
    scale[j] = (hi - lo) / nmax;
    min[j] = -lo;
    if (scale[j] > maxScale) maxScale = scale[j];
    if (min[j] > maxMin) maxMin = min[j];
  }
  const d = round16(maxScale / 63);
  const dmin = round16(maxMin / 63);
  const ls = new Int32Array(8);
  const lm = new Int32Array(8);
  for (let j = 0; j < 8; j++) {
    const s0 = d ? clamp(Math.round(scale[j] / d), 0, 63) : 0;
    const m0 = dmin ? clamp(Math.round(min[j] / dmin), 0, 63) : 0;
    let best = Infinity;
    for (let ds = -1; ds <= 1; ds++) {
      for (let dm = -1; dm <= 1; dm++) {
        const s = clamp(s0 + ds, 0, 63);
        const m = clamp(m0 + dm, 0, 63);
        const dd = d * s;
        const mm = dmin * m;
        let err = 0;
        for (let l = 0; l < 32; l++) {
          const v = x[o + j * 32 + l];
          const q = dd ? clamp(Math.round((v + mm) / dd), 0, nmax) : 0;
          const e = v - (dd * q - mm);
          err += e * e;
        }
        if (err < best) {
          best = err;
          ls[j] = s;
          lm[j] = m;
        }
      }
    }
    const dd = d * ls[j];
    const mm = dmin * lm[j];
    for (let l = 0; l < 32; l++) L[j * 32 + l] = dd ? clamp(Math.round((x[o + j * 32 + l] + mm) / dd), 0, nmax) : 0;
  }
  put16(out, at, f32ToF16Bits(d));
  put16(out, at + 2, f32ToF16Bits(dmin));
  packScalesMins(out, at + 4, ls, lm);
}

function q4K(x: Float32Array, o: number, out: Uint8Array, at: number, L: Uint8Array): void {
  affineK(x, o, 15, out, at, L);
  const qs = at + 16;
  for (let j = 0; j < QK; j += 64) {
    for (let l = 0; l < 32; l++) out[qs + j / 2 + l] = L[j + l] | (L[j + l + 32] << 4);
  }
}

function q5K(x: Float32Array, o: number, out: Uint8Array, at: number, L: Uint8Array): void {
  affineK(x, o, 31, out, at, L);
  const qh = at + 16;
  const qs = at + 48;
  for (let l = 0; l < 32; l++) out[qh + l] = 0;
  let u1 = 1;
  let u2 = 2;
  for (let j = 0; j < QK; j += 64) {
    for (let l = 0; l < 32; l++) {
      let a = L[j + l];
      let b = L[j + l + 32];
      if (a > 15) { a -= 16; out[qh + l] |= u1; }
      if (b > 15) { b -= 16; out[qh + l] |= u2; }
      out[qs + j / 2 + l] = a | (b << 4);
    }
    u1 <<= 2;
    u2 <<= 2;
  }
}

/** Q6_K: 16 sub-blocks of 16, y = d·sc·(q − 32), sc int8, q 6 bits (ql low 4, qh high 2). */
function q6K(x: Float32Array, o: number, out: Uint8Array, at: number, L: Uint8Array): void {
  const scales = new Float32Array(16);
  let maxAbs = 0;
  let maxScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    let m = 0;
    let am = 0;
    for (let l = 0; l < 16; l++) {
      const v = x[o + ib * 16 + l];
      if (Math.abs(v) > am) { am = Math.abs(v); m = v; }
    }
    scales[ib] = m / -32; // signed: the largest magnitude lands on −32
    if (Math.abs(scales[ib]) > maxAbs) { maxAbs = Math.abs(scales[ib]); maxScale = scales[ib]; }
  }
  const d = round16(maxScale / -128);
  const sc = new Int32Array(16);
  for (let ib = 0; ib < 16; ib++) {
    const s0 = d ? clamp(Math.round(scales[ib] / d), -128, 127) : 0;
    let best = Infinity;
    for (let ds = -1; ds <= 1; ds++) {
      const s = clamp(s0 + ds, -128, 127);
      const dd = d * s;
      let err = 0;
      for (let l = 0; l < 16; l++) {
        const v = x[o + ib * 16 + l];
        const q = dd ? clamp(Math.round(v / dd), -32, 31) : 0;
        const e = v - dd * q;
        err += e * e;
      }
      if (err < best) { best = err; sc[ib] = s; }
    }
    const dd = d * sc[ib];
    for (let l = 0; l < 16; l++) L[ib * 16 + l] = (dd ? clamp(Math.round(x[o + ib * 16 + l] / dd), -32, 31) : 0) + 32;
  }
  const ql = at;
  const qh = at + 128;
  const scAt = at + 192;
  for (let k = 0; k < 64; k++) out[qh + k] = 0;
  for (let j = 0; j < QK; j += 128) {
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l];
      const q2 = L[j + l + 32];
      const q3 = L[j + l + 64];
      const q4 = L[j + l + 96];
      out[ql + j / 2 + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      out[ql + j / 2 + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      out[qh + j / 4 + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
  for (let ib = 0; ib < 16; ib++) out[scAt + ib] = sc[ib] & 0xff;
  put16(out, at + 208, f32ToF16Bits(d));
}

/** Q8_K: f32 d, 256 int8 codes, 16 int16 sums of 16 codes. */
function q8K(x: Float32Array, o: number, out: Uint8Array, at: number): void {
  let m = 0;
  let am = 0;
  for (let l = 0; l < QK; l++) {
    const v = x[o + l];
    if (Math.abs(v) > am) { am = Math.abs(v); m = v; }
  }
  const dv = new DataView(out.buffer, out.byteOffset + at, 292);
  if (!am) return; // all zero: d = 0, codes 0
  const iscale = -128 / m;
  const d = Math.fround(1 / iscale);
  dv.setFloat32(0, d, true);
  for (let g = 0; g < 16; g++) {
    let sum = 0;
    for (let l = 0; l < 16; l++) {
      const q = clamp(Math.round(x[o + g * 16 + l] / d), -128, 127);
      out[at + 4 + g * 16 + l] = q & 0xff;
      sum += q;
    }
    dv.setInt16(260 + 2 * g, sum, true);
  }
}

const K_TYPES: Record<string, { bytes: number; write: (x: Float32Array, o: number, out: Uint8Array, at: number, L: Uint8Array) => void }> = {
  Q4_K: { bytes: 144, write: q4K },
  Q5_K: { bytes: 176, write: q5K },
  Q6_K: { bytes: 210, write: q6K },
  Q8_K: { bytes: 292, write: (x, o, out, at) => q8K(x, o, out, at) },
};

export const GGML_K_QUANTIZABLE = Object.keys(K_TYPES);

/** Quantize float32 values (a multiple of 256) into K-quant super-blocks of ggml type `type`. */
export function quantizeGgmlK(type: string, x: Float32Array): Uint8Array {
  const k = K_TYPES[type];
  if (!k) throw new ArgumentError(`cannot quantize into ggml ${type}; K-quants supported: ${GGML_K_QUANTIZABLE.join(', ')}`);
  if (x.length % QK) throw new ArgumentError(`ggml ${type}: ${x.length} values is not a whole number of 256-value super-blocks`);
  const out = new Uint8Array((x.length / QK) * k.bytes);
  const L = new Uint8Array(QK);
  for (let b = 0; b < x.length / QK; b++) k.write(x, b * QK, out, b * k.bytes, L);
  return out;
}
