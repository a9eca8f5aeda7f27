// CRC-32 (IEEE 802.3, reflected, as zip uses it). crc32_update(ptr, len, crc) continues `crc` over
// len bytes, so a stream can be checksummed piece by piece: crc32(b, crc32(a)) == crc32(a ++ b).
//
// Two methods, bit-identical results:
//
// Tables (slicing by 16): sixteen 256-entry tables in static memory, built on first use; one table
// lookup per byte. Used for short inputs and to finish long ones. About 2.3 GB/s.
//
// Sparse-multiple reduction, for inputs of at least SPARSE_MIN_BLOCKS 16-byte blocks. Without its
// pre- and post-inversion, a CRC is the remainder of M(x)·x^32 modulo P(x) (M: the message, its
// first bit the highest power), so any message congruent to M modulo P has the same CRC. The
// five-term polynomial
//     Q(x) = x^300 + x^155 + x^117 + x^89 + 1
// is a multiple of P (found by searching five-term polynomials; test/shared/crc32.test.ts checks
// the division). Squaring is linear over GF(2), so Q(x)^128 = Q(x^128) is a multiple of P too, and
// its terms sit at whole 16-byte blocks: x^(128·300) ≡ x^(128·155) + x^(128·117) + x^(128·89) + 1.
// Read in message order, that rule moves a block's bits 300-155 = 145, 183, 211 and 300 blocks
// further on and leaves zeros behind. So, going through the message, block i becomes
//     v[i] = b[i] ^ v[i-145] ^ v[i-183] ^ v[i-211] ^ v[i-300]
// (terms before the message are zero) and then counts as eliminated; after the first n-300 blocks
// only the last 300 remain, each with what reached it from eliminated blocks, and the tables finish
// those 4.8 KB whatever the length. A register starting at ~crc equals starting at 0 with ~crc
// XORed into the first four bytes (done by giving v[-300], read by block 0 alone, those bits), and
// a zero register stays zero over zero bytes, so the tables start at 0 on the remaining blocks. Per 16 bytes: five loads, four XORs, one store, no lookup:
// several times the tables' speed (v128 in the SIMD build, two i64 in the scalar one).
//
// The v[] history lives in HIST (static memory): v[i-300] is at q, v[i-211] at q + 89 blocks, ...,
// and v[i] is stored at q + 300 blocks; when q reaches the end, the last 300 are moved to the front.

const T: usize = memory.data(16384, 64);
let ready = false;

/** Q(x) = x^SPARSE_K + x^(SPARSE_K-TAP1) + x^(SPARSE_K-TAP2) + x^(SPARSE_K-TAP3) + 1, in 16-byte blocks. */
const SPARSE_K: usize = 300;
const TAP1: usize = 145;
const TAP2: usize = 183;
const TAP3: usize = 211;
/** Shorter inputs use the tables only (the reduction always leaves SPARSE_K blocks for them). */
const SPARSE_MIN_BLOCKS: usize = 2 * SPARSE_K;
/** Blocks of history; moved down every HIST_BLOCKS - SPARSE_K blocks. */
const HIST_BLOCKS: usize = 2048;
const HIST: usize = memory.data(<i32>(HIST_BLOCKS << 4), 64);

function init(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    store<u32>(T + (n << 2), c);
  }
  for (let n: u32 = 0; n < 256; n++) {
    let c = load<u32>(T + (n << 2));
    for (let k: u32 = 1; k < 16; k++) {
      c = load<u32>(T + ((c & 0xff) << 2)) ^ (c >>> 8);
      store<u32>(T + ((k * 256 + n) << 2), c);
    }
  }
  ready = true;
}

@inline function t(k: u32, i: u32): u32 {
  return load<u32>(T + ((k * 256 + i) << 2));
}

/** The register after 16 more bytes (little-endian words a, b, d, e). */
@inline function step16(c: u32, a: u32, b: u32, d: u32, e: u32): u32 {
  a ^= c;
  return t(15, a & 0xff) ^ t(14, (a >>> 8) & 0xff) ^ t(13, (a >>> 16) & 0xff) ^ t(12, a >>> 24)
    ^ t(11, b & 0xff) ^ t(10, (b >>> 8) & 0xff) ^ t(9, (b >>> 16) & 0xff) ^ t(8, b >>> 24)
    ^ t(7, d & 0xff) ^ t(6, (d >>> 8) & 0xff) ^ t(5, (d >>> 16) & 0xff) ^ t(4, d >>> 24)
    ^ t(3, e & 0xff) ^ t(2, (e >>> 8) & 0xff) ^ t(1, (e >>> 16) & 0xff) ^ t(0, e >>> 24);
}

/** Table method from register c (already inverted) over [ptr, ptr + len). */
function tables(ptr: usize, len: usize, c: u32): u32 {
  let i: usize = 0;
  const end = len & ~(<usize>15);
  for (; i < end; i += 16) c = step16(c, load<u32>(ptr + i), load<u32>(ptr + i, 4), load<u32>(ptr + i, 8), load<u32>(ptr + i, 12));
  for (; i < len; i++) c = t(0, (c ^ <u32>load<u8>(ptr + i)) & 0xff) ^ (c >>> 8);
  return c;
}

// One block of the reduction: v[i] (stored at q + SPARSE_K blocks) from b[i] at src and the history at q.
@inline function reduceBlock(src: usize, q: usize): void {
  if (ASC_FEATURE_SIMD) {
    const v = v128.xor(v128.xor(v128.load(src), v128.load(q)),
      v128.xor(v128.xor(v128.load(q, (SPARSE_K - TAP1) << 4), v128.load(q, (SPARSE_K - TAP2) << 4)), v128.load(q, (SPARSE_K - TAP3) << 4)));
    v128.store(q, v, SPARSE_K << 4);
  } else {
    const lo = load<u64>(src) ^ load<u64>(q) ^ load<u64>(q, (SPARSE_K - TAP1) << 4)
      ^ load<u64>(q, (SPARSE_K - TAP2) << 4) ^ load<u64>(q, (SPARSE_K - TAP3) << 4);
    const hi = load<u64>(src, 8) ^ load<u64>(q, 8) ^ load<u64>(q, ((SPARSE_K - TAP1) << 4) + 8)
      ^ load<u64>(q, ((SPARSE_K - TAP2) << 4) + 8) ^ load<u64>(q, ((SPARSE_K - TAP3) << 4) + 8);
    store<u64>(q, lo, SPARSE_K << 4);
    store<u64>(q, hi, (SPARSE_K << 4) + 8);
  }
}

export function crc32_update(ptr: usize, len: usize, crc: u32): u32 {
  if (!ready) init();
  const n = len >>> 4;
  if (n < SPARSE_MIN_BLOCKS) return ~tables(ptr, len, ~crc);

  // eliminate blocks 0 .. n - SPARSE_K - 1
  const eliminate = n - SPARSE_K;
  // v[-300 .. -1] = 0, except that v[-300], which only block 0 reads, carries the register
  memory.fill(HIST, 0, SPARSE_K << 4);
  store<u32>(HIST, ~crc);
  const last = HIST + ((HIST_BLOCKS - SPARSE_K) << 4);
  let q = HIST;
  let src = ptr;
  let done: usize = 0;
  while (done < eliminate) {
    let m = (last - q) >>> 4;
    if (m > eliminate - done) m = eliminate - done;
    const stop = src + (m << 4);
    while (src < stop) {
      reduceBlock(src, q);
      q += 16;
      src += 16;
    }
    done += m;
    if (q == last) {
      memory.copy(HIST, q, SPARSE_K << 4);
      q = HIST;
    }
  }

  // the remaining SPARSE_K blocks: block eliminate + j receives v[eliminate + j - tap] (at
  // q + (SPARSE_K + j - tap) blocks) from each tap that reaches back into the eliminated part
  let c: u32 = 0;
  for (let j: usize = 0; j < SPARSE_K; j++) {
    const p = src + (j << 4);
    let w0 = load<u32>(p), w1 = load<u32>(p, 4), w2 = load<u32>(p, 8), w3 = load<u32>(p, 12);
    let h = q + (j << 4); // v[eliminate + j - SPARSE_K]
    w0 ^= load<u32>(h); w1 ^= load<u32>(h, 4); w2 ^= load<u32>(h, 8); w3 ^= load<u32>(h, 12);
    if (j < TAP3) {
      h = q + ((SPARSE_K + j - TAP3) << 4);
      w0 ^= load<u32>(h); w1 ^= load<u32>(h, 4); w2 ^= load<u32>(h, 8); w3 ^= load<u32>(h, 12);
    }
    if (j < TAP2) {
      h = q + ((SPARSE_K + j - TAP2) << 4);
      w0 ^= load<u32>(h); w1 ^= load<u32>(h, 4); w2 ^= load<u32>(h, 8); w3 ^= load<u32>(h, 12);
    }
    if (j < TAP1) {
      h = q + ((SPARSE_K + j - TAP1) << 4);
      w0 ^= load<u32>(h); w1 ^= load<u32>(h, 4); w2 ^= load<u32>(h, 8); w3 ^= load<u32>(h, 12);
    }
    c = step16(c, w0, w1, w2, w3);
  }
  return ~tables(src + (SPARSE_K << 4), len & 15, c);
}
