// A fast non-cryptographic 128-bit content hash of raw bytes (not an object id: SHA-256 is).
//
// State: 16 u32 lanes @0 (64 bytes). The input is read in 64-byte stripes; 32-bit word w of a
// stripe goes to lane w: lane = rotl(lane ^ (word * K1), 15) * K2. A final partial stripe is
// zero-padded to 64 bytes. The byte length is mixed in at the end, so padding cannot collide.
// Finalisation folds the 16 lanes into four words, mixes in the length, and runs two rounds of
// cross-word adds plus a 32-bit avalanche (xor-shift-multiply) on each word.
// The SIMD build runs four lanes per i32x4; the scalar build does the same arithmetic per lane.

const K1: u32 = 0x9e3779b1;
const K2: u32 = 0x85ebca77;
const K3: u32 = 0xc2b2ae3d;
const K4: u32 = 0x27d4eb2f;

export const HASH_STATE_BYTES: usize = 64;

export function hash_init(st: usize): void {
  for (let i: u32 = 0; i < 16; i++) store<u32>(st + (<usize>i << 2), (K4 * (i + 1)) ^ K3);
}

@inline function roundV(acc: v128, w: v128, k1: v128, k2: v128): v128 {
  const x = v128.xor(acc, i32x4.mul(w, k1));
  return i32x4.mul(v128.or(i32x4.shl(x, 15), i32x4.shr_u(x, 17)), k2);
}

@inline function roundS(acc: u32, w: u32): u32 {
  return rotl<u32>(acc ^ (w * K1), 15) * K2;
}

/** Hashes nbytes (a multiple of 64) at p into the state. */
export function hash_update(st: usize, p: usize, nbytes: usize): void {
  if (ASC_FEATURE_SIMD) {
    const k1 = i32x4.splat(K1), k2 = i32x4.splat(K2);
    let a0 = v128.load(st), a1 = v128.load(st, 16), a2 = v128.load(st, 32), a3 = v128.load(st, 48);
    for (let o: usize = 0; o + 64 <= nbytes; o += 64) {
      const q = p + o;
      a0 = roundV(a0, v128.load(q), k1, k2);
      a1 = roundV(a1, v128.load(q, 16), k1, k2);
      a2 = roundV(a2, v128.load(q, 32), k1, k2);
      a3 = roundV(a3, v128.load(q, 48), k1, k2);
    }
    v128.store(st, a0); v128.store(st, a1, 16); v128.store(st, a2, 32); v128.store(st, a3, 48);
  } else {
    for (let l: usize = 0; l < 64; l += 16) {
      let a0 = load<u32>(st + l), a1 = load<u32>(st + l, 4), a2 = load<u32>(st + l, 8), a3 = load<u32>(st + l, 12);
      for (let o: usize = 0; o + 64 <= nbytes; o += 64) {
        const q = p + o + l;
        a0 = roundS(a0, load<u32>(q));
        a1 = roundS(a1, load<u32>(q, 4));
        a2 = roundS(a2, load<u32>(q, 8));
        a3 = roundS(a3, load<u32>(q, 12));
      }
      store<u32>(st + l, a0); store<u32>(st + l, a1, 4); store<u32>(st + l, a2, 8); store<u32>(st + l, a3, 12);
    }
  }
}

@inline function avalanche(x: u32): u32 {
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  x ^= x >> 16;
  return x;
}

/**
 * Finishes: hashes the tail (tailLen < 64 bytes at tail; the 64 bytes at tail are scratch and get
 * zero-padded), mixes in the total length (lenLo, lenHi: u32 halves) and writes 16 bytes to out.
 */
export function hash_final(st: usize, tail: usize, tailLen: usize, lenLo: u32, lenHi: u32, out: usize): void {
  if (tailLen > 0) {
    memory.fill(tail + tailLen, 0, 64 - tailLen);
    hash_update(st, tail, 64);
  }
  let h0: u32 = 0, h1: u32 = 0, h2: u32 = 0, h3: u32 = 0;
  h0 = load<u32>(st) + rotl<u32>(load<u32>(st, 16), 7) + rotl<u32>(load<u32>(st, 32), 13) + rotl<u32>(load<u32>(st, 48), 19);
  h1 = load<u32>(st, 4) + rotl<u32>(load<u32>(st, 20), 7) + rotl<u32>(load<u32>(st, 36), 13) + rotl<u32>(load<u32>(st, 52), 19);
  h2 = load<u32>(st, 8) + rotl<u32>(load<u32>(st, 24), 7) + rotl<u32>(load<u32>(st, 40), 13) + rotl<u32>(load<u32>(st, 56), 19);
  h3 = load<u32>(st, 12) + rotl<u32>(load<u32>(st, 28), 7) + rotl<u32>(load<u32>(st, 44), 13) + rotl<u32>(load<u32>(st, 60), 19);
  h0 ^= lenLo;
  h1 ^= lenHi;
  h2 ^= lenLo * K1;
  h3 ^= ~lenLo;
  for (let r = 0; r < 2; r++) {
    h0 += h1 + h2 + h3;
    h1 += h0; h2 += h0; h3 += h0;
    h0 = avalanche(h0); h1 = avalanche(h1 ^ K2); h2 = avalanche(h2 ^ K3); h3 = avalanche(h3 ^ K4);
  }
  h0 += h1 + h2 + h3;
  h1 += h0; h2 += h0; h3 += h0;
  store<u32>(out, h0); store<u32>(out, h1, 4); store<u32>(out, h2, 8); store<u32>(out, h3, 12);
}
