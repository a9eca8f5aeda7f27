/**
 * Decoding c-blosc 1.x frames (what tensorstore's zarr driver writes for each chunk), per
 * FORMAT.md §6: a 16-byte header, then either the raw bytes (MEMCPYED) or a table of block starts
 * and, per block, one or `typesize` splits, each raw or an LZ4 block; then each block is
 * unshuffled (byte shuffle or bit shuffle). Only the LZ4 codec is read (the only one git-theta
 * writes); anything inconsistent is PyThetaFormatError.
 */
import { PyThetaFormatError } from './errors.ts';
import { lz4DecodeBlock } from './lz4.ts';
import type { BloscKernels } from './wasm.ts';

export const BLOSC_HEADER_BYTES = 16;
const FLAG_SHUFFLE = 0x01;
const FLAG_MEMCPYED = 0x02;
const FLAG_BITSHUFFLE = 0x04;
const FLAG_DONT_SPLIT = 0x10;
/** Codec number in flag bits 5–7 for LZ4. */
const CODEC_LZ4 = 1;
/** c-blosc splits a block into `typesize` streams only up to this type size. */
const MAX_SPLITS = 16;
/** ... and only when each stream holds at least this many elements. */
const MIN_SPLIT_ELEMENTS = 128;

export interface BloscHeader {
  version: number;
  versionlz: number;
  flags: number;
  typesize: number;
  nbytes: number;
  blocksize: number;
  cbytes: number;
}

function u32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

export function readBloscHeader(frame: Uint8Array, where = 'blosc frame'): BloscHeader {
  if (frame.length < BLOSC_HEADER_BYTES) throw new PyThetaFormatError(`${where}: ${frame.length} bytes is shorter than a blosc header`, { where });
  const h: BloscHeader = {
    version: frame[0], versionlz: frame[1], flags: frame[2], typesize: frame[3],
    nbytes: u32(frame, 4), blocksize: u32(frame, 8), cbytes: u32(frame, 12),
  };
  if (h.version < 1 || h.version > 3) throw new PyThetaFormatError(`${where}: blosc format version ${h.version} is not blosc1`, { where });
  if (h.cbytes !== frame.length) throw new PyThetaFormatError(`${where}: header says ${h.cbytes} compressed bytes but the frame has ${frame.length}`, { where });
  if (h.typesize === 0) throw new PyThetaFormatError(`${where}: type size 0`, { where });
  return h;
}

/**
 * The bytes of one blosc1 frame; `expected` (when given) is the number of bytes the caller needs
 * (a zarr chunk's size) and must match the header. With `kernels` the byte-touching loops (LZ4,
 * unshuffles) run in Wasm; without, in the TypeScript reference below (same results, tested).
 */
export function bloscDecode(frame: Uint8Array, expected?: number, where = 'blosc frame', kernels?: BloscKernels): Uint8Array {
  const h = readBloscHeader(frame, where);
  const bad = (why: string) => new PyThetaFormatError(`${where}: corrupt blosc frame (${why}); the object is damaged — fetch it again`, { where });
  if (expected !== undefined && h.nbytes !== expected) throw bad(`holds ${h.nbytes} bytes, expected ${expected}`);
  if (h.flags & FLAG_MEMCPYED) {
    if (BLOSC_HEADER_BYTES + h.nbytes !== frame.length) throw bad(`a stored frame of ${h.nbytes} bytes has ${frame.length - BLOSC_HEADER_BYTES}`);
    return frame.slice(BLOSC_HEADER_BYTES);
  }
  const codec = h.flags >>> 5;
  if (codec !== CODEC_LZ4) throw bad(`codec ${codec} is not LZ4 (git-theta writes LZ4 only)`);
  const out = new Uint8Array(h.nbytes);
  if (h.nbytes === 0) return out;
  if (h.blocksize === 0) throw bad('block size 0');
  const nblocks = Math.ceil(h.nbytes / h.blocksize);
  const leftover = h.nbytes % h.blocksize;
  const tableEnd = BLOSC_HEADER_BYTES + 4 * nblocks;
  if (tableEnd > frame.length) throw bad('the block table runs past the frame');
  const ts = h.typesize;
  for (let b = 0; b < nblocks; b++) {
    const last = b === nblocks - 1;
    const bsize = last && leftover ? leftover : h.blocksize;
    const leftoverBlock = last && leftover > 0;
    const split = !(h.flags & FLAG_DONT_SPLIT) && ts <= MAX_SPLITS && bsize / ts >= MIN_SPLIT_ELEMENTS && !leftoverBlock;
    const nsplits = split ? ts : 1;
    if (bsize % nsplits) throw bad(`block ${b} of ${bsize} bytes does not split into ${nsplits}`);
    const part = bsize / nsplits;
    let ip = u32(frame, BLOSC_HEADER_BYTES + 4 * b);
    if (ip < tableEnd || ip > frame.length) throw bad(`block ${b} starts at ${ip}, outside the frame`);
    const block = new Uint8Array(bsize);
    for (let s = 0; s < nsplits; s++) {
      if (ip + 4 > frame.length) throw bad(`block ${b} split ${s} has no size`);
      const csize = u32(frame, ip) | 0;
      ip += 4;
      if (csize < 0 || csize > frame.length - ip) throw bad(`block ${b} split ${s} runs past the frame`);
      const src = frame.subarray(ip, ip + csize);
      ip += csize;
      const at = `${where}: block ${b}`;
      block.set(csize === part ? src : kernels ? kernels.lz4(src, part, at) : lz4DecodeBlock(src, part, at), s * part);
    }
    out.set(unshuffleBlock(block, h.flags, ts, kernels), b * h.blocksize);
  }
  return out;
}

function unshuffleBlock(block: Uint8Array, flags: number, ts: number, kernels?: BloscKernels): Uint8Array {
  if (flags & FLAG_SHUFFLE && ts > 1) return kernels ? kernels.byteUnshuffle(block, ts) : byteUnshuffle(block, ts);
  if (flags & FLAG_BITSHUFFLE && block.length >= ts) return kernels ? kernels.bitUnshuffle(block, ts) : bitUnshuffle(block, ts);
  return block;
}

/** Byte shuffle: byte k of every element, then byte k+1, ...; trailing bytes copied as they are. */
export function byteUnshuffle(src: Uint8Array, ts: number): Uint8Array {
  const n = Math.floor(src.length / ts);
  const out = new Uint8Array(src.length);
  for (let k = 0; k < ts; k++) {
    const row = k * n;
    for (let i = 0; i < n; i++) out[i * ts + k] = src[row + i];
  }
  out.set(src.subarray(n * ts), n * ts);
  return out;
}

/**
 * Bit shuffle (bitshuffle's layout as c-blosc uses it): `8*ts` rows, one per bit of the element
 * (byte 0's least significant bit first), each row `n` bits packed least significant first. Only
 * whole groups of 8 elements are shuffled; otherwise the block was stored as is.
 */
export function bitUnshuffle(src: Uint8Array, ts: number): Uint8Array {
  const n = Math.floor(src.length / ts);
  if (n % 8) return src;
  const out = new Uint8Array(src.length);
  const rowBytes = n / 8;
  for (let r = 0; r < 8 * ts; r++) {
    const byte = r >>> 3;
    const bit = 1 << (r & 7);
    const row = src.subarray(r * rowBytes, (r + 1) * rowBytes);
    for (let j = 0; j < rowBytes; j++) {
      const v = row[j];
      if (!v) continue;
      for (let q = 0; q < 8; q++) if (v & (1 << q)) out[(j * 8 + q) * ts + byte] |= bit;
    }
  }
  out.set(src.subarray(n * ts), n * ts);
  return out;
}
