/**
 * Blockwise absmax int8 quantization (assembly/quant.ts), piece by piece through SCRATCH.
 */
import { ArgumentError } from '../errors.ts';
import { type KernelMemory, align64 } from './memory.ts';

/** Blockwise absmax int8: q = round_half_even(x * 127 / max|block|), scales[b] = max|block| / 127. */
export function quantizeInt8(mem: KernelMemory, values: Float32Array, blockSize = 64): { q: Int8Array; scales: Float32Array } {
  if (!(Number.isInteger(blockSize) && blockSize >= 1 && blockSize <= 1 << 20)) throw new ArgumentError(`quantizeInt8: bad blockSize ${blockSize}`);
  const n = values.length;
  const nb = Math.ceil(n / blockSize);
  const q = new Int8Array(n), scales = new Float32Array(nb);
  const k = mem.x.quantize_int8;
  const piece = Math.max(1, Math.floor(mem.pieceElems(5 + 4 / blockSize, 1) / blockSize)) * blockSize;
  const X = mem.SCRATCH, Q = align64(X + piece * 4), S = align64(Q + piece);
  mem.reach(S + Math.ceil(piece / blockSize) * 4);
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.f32.set(values.subarray(off, off + m), X >> 2);
    k(X, m, blockSize, Q, S);
    q.set(new Int8Array(mem.memory.buffer, Q, m), off);
    scales.set(mem.f32.subarray(S >> 2, (S >> 2) + Math.ceil(m / blockSize)), off / blockSize);
  }
  return { q, scales };
}

export function dequantizeInt8(mem: KernelMemory, q: Int8Array, scales: Float32Array, blockSize = 64): Float32Array {
  if (!(Number.isInteger(blockSize) && blockSize >= 1 && blockSize <= 1 << 20)) throw new ArgumentError(`dequantizeInt8: bad blockSize ${blockSize}`);
  const n = q.length;
  if (scales.length !== Math.ceil(n / blockSize)) throw new ArgumentError(`dequantizeInt8: ${scales.length} scales for ${n} values in blocks of ${blockSize}`);
  const out = new Float32Array(n);
  const k = mem.x.dequantize_int8;
  const piece = Math.max(1, Math.floor(mem.pieceElems(5 + 4 / blockSize, 1) / blockSize)) * blockSize;
  const Q = mem.SCRATCH, O = align64(Q + piece), S = align64(O + piece * 4);
  mem.reach(S + Math.ceil(piece / blockSize) * 4);
  for (let off = 0; off < n; off += piece) {
    const m = Math.min(piece, n - off);
    mem.u8.set(new Uint8Array(q.buffer, q.byteOffset + off, m), Q);
    mem.f32.set(scales.subarray(off / blockSize, Math.ceil((off + m) / blockSize)), S >> 2);
    k(Q, S, m, blockSize, O);
    out.set(mem.f32.subarray(O >> 2, (O >> 2) + m), off);
  }
  return out;
}
