// Decoding kernels for the blosc1 frames of the Python Git-Theta's objects (src/interop/python-git-theta):
// one raw LZ4 block, byte unshuffle and bit unshuffle. Pointers and lengths into linear memory the
// host owns; nothing is allocated. Every read and write is checked against the lengths given.

/** lz4_decode_block results below zero: the host turns them into one typed error each. */
const LZ4_INPUT_OVERRUN: i32 = -1;
const LZ4_OUTPUT_OVERRUN: i32 = -2;
const LZ4_BAD_OFFSET: i32 = -3;
const LZ4_SHORT: i32 = -4;

/**
 * Decode the LZ4 block src[0, srcLen) into dst[0, dstLen). Returns dstLen when the block decodes to
 * exactly that many bytes and ends exactly at the end of its input, else a negative code.
 */
export function lz4_decode_block(src: usize, srcLen: usize, dst: usize, dstLen: usize): i32 {
  let ip: usize = 0;
  let op: usize = 0;
  if (srcLen == 0) return dstLen == 0 ? 0 : LZ4_SHORT;
  while (true) {
    if (ip >= srcLen) return LZ4_INPUT_OVERRUN;
    const token = <u32>load<u8>(src + ip);
    ip++;
    let lit = <usize>(token >> 4);
    if (lit == 15) {
      let b: u32 = 255;
      while (b == 255) {
        if (ip >= srcLen) return LZ4_INPUT_OVERRUN;
        b = <u32>load<u8>(src + ip);
        ip++;
        lit += <usize>b;
        if (lit > dstLen) return LZ4_OUTPUT_OVERRUN;
      }
    }
    if (lit > srcLen - ip) return LZ4_INPUT_OVERRUN;
    if (lit > dstLen - op) return LZ4_OUTPUT_OVERRUN;
    memory.copy(dst + op, src + ip, lit);
    ip += lit;
    op += lit;
    if (ip == srcLen) break; // the last sequence has literals only
    if (ip + 2 > srcLen) return LZ4_INPUT_OVERRUN;
    const offset = <usize>load<u8>(src + ip) | (<usize>load<u8>(src + ip + 1) << 8);
    ip += 2;
    if (offset == 0 || offset > op) return LZ4_BAD_OFFSET;
    let len = <usize>(token & 15);
    if (len == 15) {
      let b: u32 = 255;
      while (b == 255) {
        if (ip >= srcLen) return LZ4_INPUT_OVERRUN;
        b = <u32>load<u8>(src + ip);
        ip++;
        len += <usize>b;
        if (len > dstLen) return LZ4_OUTPUT_OVERRUN;
      }
    }
    len += 4;
    if (len > dstLen - op) return LZ4_OUTPUT_OVERRUN;
    let from = dst + op - offset;
    if (offset >= len) {
      memory.copy(dst + op, from, len);
      op += len;
    } else {
      // an overlapping match repeats the last `offset` bytes
      const end = dst + op + len;
      let to = dst + op;
      while (to < end) {
        store<u8>(to, load<u8>(from));
        to++;
        from++;
      }
      op += len;
    }
  }
  return op == dstLen ? <i32>op : LZ4_SHORT;
}

/**
 * Byte unshuffle of `n` bytes of `ts`-byte elements: src holds byte 0 of every element, then byte
 * 1, ...; trailing n % ts bytes are copied as they are.
 */
export function byte_unshuffle(src: usize, dst: usize, n: usize, ts: usize): void {
  const ne = n / ts;
  let i: usize = 0;
  if (ASC_FEATURE_SIMD && ts == 4) {
    for (; i + 16 <= ne; i += 16) {
      const a = v128.load(src + i);
      const b = v128.load(src + ne + i);
      const c = v128.load(src + 2 * ne + i);
      const d = v128.load(src + 3 * ne + i);
      const abLo = i8x16.shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const abHi = i8x16.shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const cdLo = i8x16.shuffle(c, d, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const cdHi = i8x16.shuffle(c, d, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const o = dst + (i << 2);
      v128.store(o, i8x16.shuffle(abLo, cdLo, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
      v128.store(o, i8x16.shuffle(abLo, cdLo, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 16);
      v128.store(o, i8x16.shuffle(abHi, cdHi, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), 32);
      v128.store(o, i8x16.shuffle(abHi, cdHi, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 48);
    }
  }
  for (let k: usize = 0; k < ts; k++) {
    const row = src + k * ne;
    for (let j = i; j < ne; j++) store<u8>(dst + j * ts + k, load<u8>(row + j));
  }
  memory.copy(dst + ne * ts, src + ne * ts, n - ne * ts);
}

/**
 * Bit unshuffle of `n` bytes of `ts`-byte elements whose count is a multiple of 8 (the host checks):
 * 8·ts rows, one per bit (byte 0's least significant bit first), each holding that bit of every
 * element packed least significant first.
 */
export function bit_unshuffle(src: usize, dst: usize, n: usize, ts: usize): void {
  const ne = n / ts;
  const rowBytes = ne >> 3;
  memory.fill(dst, 0, ne * ts);
  for (let r: usize = 0; r < 8 * ts; r++) {
    const byte = r >> 3;
    const bit = <u8>(1 << <u8>(r & 7));
    const row = src + r * rowBytes;
    for (let j: usize = 0; j < rowBytes; j++) {
      const v = <u32>load<u8>(row + j);
      if (!v) continue;
      const base = dst + (j << 3) * ts + byte;
      for (let q: usize = 0; q < 8; q++) {
        if (v & (1 << <u32>q)) {
          const p = base + q * ts;
          store<u8>(p, load<u8>(p) | bit);
        }
      }
    }
  }
  memory.copy(dst + ne * ts, src + ne * ts, n - ne * ts);
}
