/**
 * A strict decoder for one raw LZ4 block (the LZ4 block format, no frame), as c-blosc stores each
 * split of a block. The input is untrusted: every length is checked against both buffers, a match
 * may not reach before the start of the output, and the block must decode to exactly `size` bytes
 * and end exactly at the end of its input, or PyThetaFormatError is thrown.
 */
import { PyThetaFormatError } from './errors.ts';

/** LZ4 matches are at least this long (the token stores length − 4). */
const MIN_MATCH = 4;

export function lz4DecodeBlock(src: Uint8Array, size: number, where = 'LZ4 block'): Uint8Array {
  const out = new Uint8Array(size);
  const bad = (why: string) => new PyThetaFormatError(`${where}: corrupt LZ4 block (${why}); the object is damaged — fetch it again`, { where });
  let ip = 0;
  let op = 0;
  const n = src.length;
  if (n === 0) {
    if (size === 0) return out;
    throw bad('empty input');
  }
  for (;;) {
    if (ip >= n) throw bad('input ends before a token');
    const token = src[ip++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= n) throw bad('input ends inside a literal length');
        b = src[ip++];
        lit += b;
      } while (b === 255);
    }
    if (lit > n - ip) throw bad('literals run past the input');
    if (lit > size - op) throw bad('literals run past the output');
    out.set(src.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === n) break; // the last sequence has literals only
    if (ip + 2 > n) throw bad('input ends inside a match offset');
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw bad(`match offset ${offset} reaches before the start of the output`);
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= n) throw bad('input ends inside a match length');
        b = src[ip++];
        len += b;
      } while (b === 255);
    }
    len += MIN_MATCH;
    if (len > size - op) throw bad('match runs past the output');
    let from = op - offset;
    if (offset >= len) {
      out.copyWithin(op, from, from + len);
      op += len;
    } else {
      // overlapping copy repeats the last `offset` bytes
      for (const end = op + len; op < end; ) out[op++] = out[from++];
    }
  }
  if (op !== size) throw bad(`decoded ${op} bytes, expected ${size}`);
  return out;
}
