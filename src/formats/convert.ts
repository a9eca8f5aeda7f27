/**
 * Format conversion through the shared interface, plus the value helpers formats share for
 * tensors whose stored bytes are not plain numbers (quantized GGUF blocks, TF.js affine-quantized
 * weights).
 *
 * `convertCheckpoint(reader, target, sink)` streams: tensors are taken from the reader one at a
 * time and handed to the target's writer as they come (writers that must see every tensor before
 * writing their header, such as safetensors and GGUF, hold them; the rest write as they go).
 *
 * Quantized tensors carry a `quantization` description (see TensorQuantization). Statistics code
 * (`inspect`, `diff`) calls `dequantizeForStats(tensor)` to get float32 values for any tensor that
 * has one, or undefined when the scheme is tracked as opaque bytes only.
 */
import { ArgumentError } from '../core/errors.ts';
import { concat, type ByteSink } from '../core/io.ts';
import type { CheckpointFormat, CheckpointReader, StreamedTensor, TensorToWrite } from './types.ts';
import { getFormat } from './registry.ts';

/** A streaming decoder from a quantized tensor's stored bytes to float32 values. */
export interface StatsDequantizer {
  /** Feed stored bytes in any pieces; returns the values of every complete block so far. */
  push(bytes: Uint8Array): Float32Array;
  /** End of the tensor; throws if a partial block is left. */
  finish(): Float32Array;
}

/** How a tensor's stored bytes relate to numbers. Present on tensors whose dtype is a byte container for another encoding. */
export interface TensorQuantization {
  /** 'ggml:Q8_0', 'ggml:Q4_K', 'tfjs:uint8', ... */
  scheme: string;
  /** Shape of the dequantized values (C order). */
  shape: number[];
  /** Float32 values for statistics; undefined when the scheme is tracked as opaque bytes only. */
  dequantizer?: () => StatsDequantizer;
  /** Affine parameters (TF.js uint8/uint16: x = q·scale + min), recorded in metadata for diffs. */
  scale?: number;
  min?: number;
}

export type MaybeQuantized = StreamedTensor & { quantization?: TensorQuantization };

/**
 * Float32 values of a quantized tensor for statistics, streamed (consumes the tensor's chunks), or
 * undefined when the tensor is not quantized or its scheme cannot be dequantized (then read its
 * bytes as usual, or report no statistics).
 */
export function dequantizeForStats(tensor: MaybeQuantized, chunkBytes?: number): AsyncIterable<Float32Array> | undefined {
  const q = tensor.quantization;
  if (!q?.dequantizer) return undefined;
  const d = q.dequantizer();
  return (async function* () {
    for await (const c of tensor.chunks(chunkBytes)) {
      const v = d.push(c);
      if (v.length) yield v;
    }
    const v = d.finish();
    if (v.length) yield v;
  })();
}

/** Dequantized values gathered into one array of float32 bytes (memory: the tensor's float32 size). */
export async function float32Bytes(values: AsyncIterable<Float32Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const v of values) parts.push(new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
  return concat(parts);
}

export interface ConvertOptions {
  /** Passed to the target writer (e.g. safetensors `__metadata__`). */
  metadata?: Record<string, string>;
  /**
   * What to do with quantized tensors: 'dequantize' (default: write float32 values when the scheme
   * can be dequantized, else fail), 'raw' (write the stored bytes under their container dtype), or
   * 'error'.
   */
  quantized?: 'dequantize' | 'raw' | 'error';
  /** Skip tensors whose names this returns false for. */
  filter?: (name: string) => boolean;
}

/**
 * Convert a checkpoint to another format: every tensor of `reader`, in file order, written by
 * `target` (a format or its id) to `sink`, or, for a multi-file format such as TF.js, to the files
 * `sink(path)` opens (the format's `writeFiles`). Values are carried bit for bit, except quantized
 * tensors under `quantized: 'dequantize'`.
 */
export async function convertCheckpoint(
  reader: CheckpointReader,
  target: CheckpointFormat | string,
  sink: ByteSink | ((path: string) => Promise<ByteSink>),
  opts: ConvertOptions = {},
): Promise<void> {
  if (!reader || typeof reader.tensors !== 'function') throw new ArgumentError('convertCheckpoint: reader must be an opened CheckpointReader');
  const format = typeof target === 'string' ? getFormat(target) : target;
  if (!format || typeof format.write !== 'function') throw new ArgumentError('convertCheckpoint: target must be a format or a registered format id');
  const mode = opts.quantized ?? 'dequantize';
  async function* tensors(): AsyncGenerator<TensorToWrite> {
    for await (const t of reader.tensors() as AsyncIterable<MaybeQuantized>) {
      if (opts.filter && !opts.filter(t.name)) continue;
      if (t.quantization && mode !== 'raw') {
        const values = mode === 'dequantize' ? dequantizeForStats(t) : undefined;
        if (!values) {
          throw new ArgumentError(`tensor '${t.name}' is quantized (${t.quantization.scheme}) and ${mode === 'error' ? 'quantized tensors are refused' : 'cannot be dequantized'}; pass quantized: 'raw' to copy its stored bytes`, { tensor: t.name, scheme: t.quantization.scheme });
        }
        yield { name: t.name, dtype: 'F32', shape: t.quantization.shape.slice(), data: await float32Bytes(values) };
        continue;
      }
      yield { name: t.name, dtype: t.dtype, shape: t.shape.slice(), data: await t.bytes() };
    }
  }
  if (typeof sink === 'function') {
    const multi = format as CheckpointFormat & { writeFiles?(t: AsyncIterable<TensorToWrite>, sinkFor: (path: string) => Promise<ByteSink>): Promise<void> };
    if (typeof multi.writeFiles !== 'function') throw new ArgumentError(`convertCheckpoint: format '${format.id}' writes one file; pass a ByteSink, not a sink factory`);
    await multi.writeFiles(tensors(), sink);
    return;
  }
  await format.write(tensors(), sink, opts.metadata ? { metadata: opts.metadata } : undefined);
}
