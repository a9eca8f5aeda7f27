// The TypeScript ggml block decoders, kept as the tests' independent reference for the Wasm
// dequantization kernels (assembly/ggml-dequant.ts): a different formulation (per-block loops in
// ggml's own order, Math.fround after every product and sum) that matches llama.cpp's `gguf`
// package bit for bit (ggml-blocks.data.ts). Not used by the library.
import { f16BitsToF32 } from '../../src/core/quantize-ggml.ts';

const f16ToNumber = f16BitsToF32;
const fr = Math.fround;

const h16 = (b: Uint8Array, at: number) => f16ToNumber(b[at] | (b[at + 1] << 8));
const i8 = (x: number) => (x << 24) >> 24;

type BlockDecode = (b: Uint8Array, at: number, out: Float32Array, o: number) => void;

/** Q4_0 {f16 d; u8 qs[16]}: x[j] = d·((qs[j] & 15) − 8), x[j+16] = d·((qs[j] >> 4) − 8). */
const q4_0: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at);
  for (let j = 0; j < 16; j++) {
    const q = b[at + 2 + j];
    y[o + j] = fr(d * ((q & 15) - 8));
    y[o + j + 16] = fr(d * ((q >> 4) - 8));
  }
};

/** Q4_1 {f16 d; f16 m; u8 qs[16]}: x = d·q + m. */
const q4_1: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at), m = h16(b, at + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[at + 4 + j];
    y[o + j] = fr(fr(d * (q & 15)) + m);
    y[o + j + 16] = fr(fr(d * (q >> 4)) + m);
  }
};

/** Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: the fifth bit of value j is bit j of qh; x = d·(q − 16). */
const q5_0: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at);
  const qh = (b[at + 2] | (b[at + 3] << 8) | (b[at + 4] << 16) | (b[at + 5] << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    const q = b[at + 6 + j];
    const h0 = ((qh >>> j) << 4) & 0x10;
    const h1 = (qh >>> (j + 12)) & 0x10;
    y[o + j] = fr(d * (((q & 15) | h0) - 16));
    y[o + j + 16] = fr(d * (((q >> 4) | h1) - 16));
  }
};

/** Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: x = d·q + m. */
const q5_1: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at), m = h16(b, at + 2);
  const qh = (b[at + 4] | (b[at + 5] << 8) | (b[at + 6] << 16) | (b[at + 7] << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    const q = b[at + 8 + j];
    const h0 = ((qh >>> j) << 4) & 0x10;
    const h1 = (qh >>> (j + 12)) & 0x10;
    y[o + j] = fr(fr(d * ((q & 15) | h0)) + m);
    y[o + j + 16] = fr(fr(d * ((q >> 4) | h1)) + m);
  }
};

/** Q8_0 {f16 d; i8 qs[32]}: x = d·q. */
const q8_0: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at);
  for (let j = 0; j < 32; j++) y[o + j] = fr(d * i8(b[at + 2 + j]));
};

/** Q8_1 {f16 d; f16 s; i8 qs[32]}: x = d·q (s is the block's sum, for dot products). */
const q8_1: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at);
  for (let j = 0; j < 32; j++) y[o + j] = fr(d * i8(b[at + 4 + j]));
};

/** Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: 16 sub-blocks of 16, 4-bit scale and min each, 2-bit q. */
const q2_K: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at + 80), dmin = h16(b, at + 82);
  let is = 0, q = at + 16;
  for (let n = 0; n < 256; n += 128) {
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half = 0; half < 2; half++) {
        const sc = b[at + is++];
        const dl = fr(d * (sc & 15)), ml = fr(dmin * (sc >> 4));
        for (let l = 0; l < 16; l++) y[o++] = fr(fr(dl * ((b[q + half * 16 + l] >> shift) & 3)) - ml);
      }
    }
    q += 32;
  }
};

/** Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: 16 sub-blocks of 16, 6-bit signed scales, 3-bit q. */
const q3_K: BlockDecode = (b, at, y, o) => {
  const dAll = h16(b, at + 108);
  const s = at + 96;
  const u32 = (k: number) => (b[s + k] | (b[s + k + 1] << 8) | (b[s + k + 2] << 16) | (b[s + k + 3] << 24)) >>> 0;
  const a0 = u32(0), a1 = u32(4), tmp = u32(8);
  const km1 = 0x03030303, km2 = 0x0f0f0f0f;
  const aux = [
    ((a0 & km2) | (((tmp >>> 0) & km1) << 4)) >>> 0,
    ((a1 & km2) | (((tmp >>> 2) & km1) << 4)) >>> 0,
    (((a0 >>> 4) & km2) | (((tmp >>> 4) & km1) << 4)) >>> 0,
    (((a1 >>> 4) & km2) | (((tmp >>> 6) & km1) << 4)) >>> 0,
  ];
  const scale = (k: number) => i8((aux[k >> 2] >>> ((k & 3) * 8)) & 0xff);
  let is = 0, q = at + 32, m = 1;
  for (let n = 0; n < 256; n += 128) {
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half = 0; half < 2; half++) {
        const dl = fr(dAll * (scale(is++) - 32));
        for (let l = 0; l < 16; l++) {
          const k = half * 16 + l;
          y[o++] = fr(dl * (((b[q + k] >> shift) & 3) - (b[at + k] & m ? 0 : 4)));
        }
      }
      m <<= 1;
    }
    q += 32;
  }
};

/** ggml's get_scale_min_k4: the j-th 6-bit scale and min of a Q4_K/Q5_K super-block. */
function scaleMinK4(j: number, b: Uint8Array, s: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 15) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

/** Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: 8 sub-blocks of 32, x = d·sc·q − dmin·m. */
const q4_K: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at), dmin = h16(b, at + 2);
  let q = at + 16;
  for (let is = 0; is < 8; is += 2) {
    const [sc1, m1] = scaleMinK4(is, b, at + 4);
    const [sc2, m2] = scaleMinK4(is + 1, b, at + 4);
    const d1 = fr(d * sc1), mm1 = fr(dmin * m1), d2 = fr(d * sc2), mm2 = fr(dmin * m2);
    for (let l = 0; l < 32; l++) y[o++] = fr(fr(d1 * (b[q + l] & 15)) - mm1);
    for (let l = 0; l < 32; l++) y[o++] = fr(fr(d2 * (b[q + l] >> 4)) - mm2);
    q += 32;
  }
};

/** Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: Q4_K with a fifth bit from qh. */
const q5_K: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at), dmin = h16(b, at + 2);
  const qh = at + 16;
  let ql = at + 48, u1 = 1, u2 = 2;
  for (let is = 0; is < 8; is += 2) {
    const [sc1, m1] = scaleMinK4(is, b, at + 4);
    const [sc2, m2] = scaleMinK4(is + 1, b, at + 4);
    const d1 = fr(d * sc1), mm1 = fr(dmin * m1), d2 = fr(d * sc2), mm2 = fr(dmin * m2);
    for (let l = 0; l < 32; l++) y[o++] = fr(fr(d1 * ((b[ql + l] & 15) + (b[qh + l] & u1 ? 16 : 0))) - mm1);
    for (let l = 0; l < 32; l++) y[o++] = fr(fr(d2 * ((b[ql + l] >> 4) + (b[qh + l] & u2 ? 16 : 0))) - mm2);
    ql += 32;
    u1 <<= 2;
    u2 <<= 2;
  }
};

/** Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 16 sub-blocks of 16, x = d·sc·(q − 32), 6-bit q. */
const q6_K: BlockDecode = (b, at, y, o) => {
  const d = h16(b, at + 208);
  let ql = at, qh = at + 128, sc = at + 192;
  for (let n = 0; n < 256; n += 128) {
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = b[qh + l];
      const q1 = ((b[ql + l] & 15) | (((h >> 0) & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32] & 15) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[o + n + l] = fr(fr(d * i8(b[sc + is])) * q1);
      y[o + n + l + 32] = fr(fr(d * i8(b[sc + is + 2])) * q2);
      y[o + n + l + 64] = fr(fr(d * i8(b[sc + is + 4])) * q3);
      y[o + n + l + 96] = fr(fr(d * i8(b[sc + is + 6])) * q4);
    }
    ql += 64;
    qh += 32;
    sc += 8;
  }
};

/** Q8_K {f32 d; i8 qs[256]; i16 bsums[16]}: x = d·q. */
const q8_K: BlockDecode = (b, at, y, o) => {
  const d = new DataView(b.buffer, b.byteOffset + at, 4).getFloat32(0, true);
  for (let j = 0; j < 256; j++) y[o + j] = fr(d * i8(b[at + 4 + j]));
};

/** ggml block types this module decodes: [values per block, bytes per block, decode]. */
export const GGML_BLOCK_DECODERS: Record<string, [number, number, BlockDecode]> = {
  Q4_0: [32, 18, q4_0], Q4_1: [32, 20, q4_1], Q5_0: [32, 22, q5_0], Q5_1: [32, 24, q5_1],
  Q8_0: [32, 34, q8_0], Q8_1: [32, 36, q8_1],
  Q2_K: [256, 84, q2_K], Q3_K: [256, 110, q3_K], Q4_K: [256, 144, q4_K], Q5_K: [256, 176, q5_K],
  Q6_K: [256, 210, q6_K], Q8_K: [256, 292, q8_K],
};


/** All values of whole blocks of `type`, decoded in TypeScript. */
export function referenceDequantize(type: string, bytes: Uint8Array): Float32Array {
  const [values, size, decode] = GGML_BLOCK_DECODERS[type];
  const blocks = Math.floor(bytes.length / size);
  const out = new Float32Array(blocks * values);
  for (let k = 0; k < blocks; k++) decode(bytes, k * size, out, k * values);
  return out;
}

/** TF.js affine in TypeScript: q·scale + min in double precision, stored as float32. */
export function referenceAffine(bits: 8 | 16, scale: number, min: number, bytes: Uint8Array): Float32Array {
  const n = bytes.length / (bits / 8);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (bits === 8 ? bytes[i] : bytes[2 * i] | (bytes[2 * i + 1] << 8)) * scale + min;
  return out;
}
