/**
 * Quantizing float32 values into ggml blocks (the byte layouts ggml defines): Q8_0, Q4_0, Q4_1,
 * Q5_0 and Q5_1, 32 values per block. Used when a merge writes a quantized GGUF tensor back in its
 * own type. Dequantizing lives with the readers (formats/gguf.ts); this file only writes blocks.
 *
 * Scales follow ggml's reference rounding (d from the block's largest magnitude, or its min/max),
 * then each block also tries a few nearby scales and keeps the one with the least squared error,
 * with the quantized values computed against the f16-rounded scale that is actually stored.
 */
import { ArgumentError } from './errors.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float → IEEE half bits, round to nearest even (the conversion ggml uses). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let exp = e - 127 + 15;
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    m |= 0x800000;
    const shift = 14 - exp;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (exp << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

export function f16BitsToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Scale factors tried around the reference scale of each block. */
const TRIES = [1, 0.97, 1.03];

interface BlockCodec {
  name: string;
  bytes: number;
  /** Signed (x = d·(q − zero)) or affine (x = d·q + m). */
  affine: boolean;
  /** Largest code (15 or 31 or 127 for Q8_0 magnitudes). */
  qmax: number;
  write(out: Uint8Array, at: number, d: number, m: number, q: Int32Array): void;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = v >>> 8;
}

const CODECS: Record<string, BlockCodec> = {
  Q8_0: {
    name: 'Q8_0', bytes: 34, affine: false, qmax: 127,
    write(out, at, d, _m, q) {
      put16(out, at, f32ToF16Bits(d));
      for (let j = 0; j < 32; j++) out[at + 2 + j] = q[j] & 0xff;
    },
  },
  Q4_0: {
    name: 'Q4_0', bytes: 18, affine: false, qmax: 15,
    write(out, at, d, _m, q) {
      put16(out, at, f32ToF16Bits(d));
      for (let j = 0; j < 16; j++) out[at + 2 + j] = q[j] | (q[j + 16] << 4);
    },
  },
  Q4_1: {
    name: 'Q4_1', bytes: 20, affine: true, qmax: 15,
    write(out, at, d, m, q) {
      put16(out, at, f32ToF16Bits(d));
      put16(out, at + 2, f32ToF16Bits(m));
      for (let j = 0; j < 16; j++) out[at + 4 + j] = q[j] | (q[j + 16] << 4);
    },
  },
  Q5_0: {
    name: 'Q5_0', bytes: 22, affine: false, qmax: 31,
    write(out, at, d, _m, q) {
      put16(out, at, f32ToF16Bits(d));
      writeQ5(out, at + 2, q);
    },
  },
  Q5_1: {
    name: 'Q5_1', bytes: 24, affine: true, qmax: 31,
    write(out, at, d, m, q) {
      put16(out, at, f32ToF16Bits(d));
      put16(out, at + 2, f32ToF16Bits(m));
      writeQ5(out, at + 4, q);
    },
  },
};

/** qh (u32 LE: bit j = bit 4 of q[j], bit j+16 = bit 4 of q[j+16]) then 16 bytes of low nibbles. */
function writeQ5(out: Uint8Array, at: number, q: Int32Array): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    qh |= ((q[j] >> 4) & 1) << j;
    qh |= ((q[j + 16] >> 4) & 1) << (j + 16);
    out[at + 4 + j] = (q[j] & 15) | ((q[j + 16] & 15) << 4);
  }
  out[at] = qh & 0xff;
  out[at + 1] = (qh >>> 8) & 0xff;
  out[at + 2] = (qh >>> 16) & 0xff;
  out[at + 3] = qh >>> 24;
}

/** Names of the ggml types this file writes. */
export const GGML_QUANTIZABLE = Object.keys(CODECS);

export function ggmlBlockBytes(type: string): number | undefined {
  return CODECS[type]?.bytes;
}

/**
 * Codes and squared error of one block for a candidate stored scale `d` (and min `m` for affine
 * types), the codes written to `q`.
 */
function codesFor(c: BlockCodec, x: Float32Array, o: number, d: number, m: number, q: Int32Array): number {
  const id = d ? 1 / d : 0;
  const top = c.qmax;
  let err = 0;
  // one tight loop per code mapping (the branch is taken once per block, not per value)
  if (c.affine) {
    for (let j = 0; j < 32; j++) {
      const v = x[o + j];
      let k = Math.round((v - m) * id);
      k = k < 0 ? 0 : k > top ? top : k;
      q[j] = k;
      const e = v - (d * k + m);
      err += e * e;
    }
  } else if (top === 127) {
    for (let j = 0; j < 32; j++) {
      const v = x[o + j];
      let k = Math.round(v * id);
      k = k < -127 ? -127 : k > 127 ? 127 : k;
      q[j] = k;
      const e = v - d * k;
      err += e * e;
    }
  } else {
    const zero = (top + 1) >> 1; // 8 or 16
    for (let j = 0; j < 32; j++) {
      const v = x[o + j];
      let k = Math.round(v * id) + zero;
      k = k < 0 ? 0 : k > top ? top : k;
      q[j] = k;
      const e = v - d * (k - zero);
      err += e * e;
    }
  }
  return err;
}

const round16 = (x: number) => f16BitsToF32(f32ToF16Bits(x));

/** Quantize float32 values (a multiple of 32) into blocks of ggml type `type`. */
export function quantizeGgml(type: string, x: Float32Array): Uint8Array {
  const c = CODECS[type];
  if (!c) throw new ArgumentError(`cannot quantize into ggml ${type}; supported: ${GGML_QUANTIZABLE.join(', ')}`);
  if (x.length % 32) throw new ArgumentError(`ggml ${type}: ${x.length} values is not a whole number of 32-value blocks`);
  const blocks = x.length / 32;
  const out = new Uint8Array(blocks * c.bytes);
  const q = new Int32Array(32);
  const best = new Int32Array(32);
  for (let b = 0; b < blocks; b++) {
    const o = b * 32;
    let lo = Infinity;
    let hi = -Infinity;
    let amax = 0;
    let signedMax = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[o + j];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (Math.abs(v) > amax) { amax = Math.abs(v); signedMax = v; }
    }
    // ggml's reference scale: Q8_0 amax/127; Q4_0/Q5_0 max/−8, max/−16 (signed, so the
    // largest magnitude lands on the code with the most room); Q4_1/Q5_1 (max−min)/qmax
    const m = c.affine ? round16(lo) : 0;
    const ref = c.affine ? (hi - m) / c.qmax : c.qmax === 127 ? amax / 127 : signedMax / -((c.qmax + 1) >> 1);
    let bestErr = Infinity;
    let bestD = 0;
    for (const f of TRIES) {
      const d = round16(ref * f);
      const err = codesFor(c, x, o, d, m, q);
      if (err < bestErr) {
        bestErr = err;
        bestD = d;
        best.set(q);
      }
      if (!ref) break;
    }
    c.write(out, b * c.bytes, bestD, m, best);
  }
  return out;
}
