/**
 * GGUF (ggml's docs/gguf.md), versions 2 and 3, little-endian: the magic `GGUF`, u32 version, u64
 * tensor count, u64 metadata key-value count, the key-values (key: u64 length + UTF-8; u32 value
 * type; value: scalars, strings, or typed arrays of them, arrays nested), the tensor infos (name,
 * u32 n_dims, u64 dims with ne[0] the fastest-varying, u32 ggml type, u64 offset relative to the data
 * section), padding to `general.alignment` (default 32), then the tensor data, each tensor at an
 * aligned offset. Version 1 (u32 counts, 2023) and big-endian files are refused with a clear error.
 *
 * Tensors are handed out in data-offset order with C-order shapes (ggml dims reversed). F32, F16,
 * BF16, F64 and I8..I64 map to our dtypes and get full arithmetic. Quantized ggml types (Q4_0 …
 * Q8_K, IQ*, TQ*, MXFP4) are tracked per tensor as opaque bytes: dtype U8 with shape
 * [...outer dims, bytes per row] (so rows stay rows), the ggml type on `ggml`, and a
 * `quantization` description whose dequantizer gives float32 values (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q8_1, Q2_K..Q6_K, Q8_K: see dequantize.ts; IQ*, TQ* and MXFP4 have none and are reported without
 * statistics). Shapes are shown in C order, the reverse of the `ne` order GGUF files list: a
 * llama `token_embd.weight` stored with ne = [4096, 32000] is [32000, 4096] here, as in PyTorch.
 *
 * Byte-exact rebuild: the skeleton is the file's own prefix (header, key-values, tensor infos,
 * padding up to the data section) followed by the padding bytes between tensors and after the last
 * one, exactly as found. `rebuild` parses the prefix with the same strict parser, so a skeleton is
 * itself a GGUF header.
 *
 * Strictness: every count and length is checked against a named limit and, when the input size is
 * known, against the bytes that remain, before anything is allocated; offsets must be aligned,
 * tensors must not overlap and only alignment padding may sit between them.
 *
 * Here: reading, rebuild and the format object; the header (types, limits, parser) is in
 * gguf/header.ts, writing in gguf/write.ts.
 */
import { streamingTensor } from './read-once.ts';
import type { DType } from '../core/dtypes.ts';
import { ArgumentError, TruncatedError, truncatedTensor } from '../core/errors.ts';
import { concat, type ByteReader, type ByteSink } from '../core/io.ts';
import type { CheckpointFormat, CheckpointReader, OpenOptions, StreamedTensor } from './types.ts';
import type { StatsDequantizer, TensorQuantization } from './types.ts';
import { dequantizerFor } from './dequantize.ts';
import { GGML_QUANTIZABLE, quantizeGgml } from '../core/quantize-ggml.ts';
import { GGML_K_QUANTIZABLE, quantizeGgmlK } from '../core/quantize-ggml-k.ts';
import {
  Cursor, GGML_TYPES, ggufError, parseGgufHeader, parseHeader, plain, alignUp, GGUF_FORMAT_ID,
  type GGUFHeader, type GGUFTensorInfo,
} from './gguf/header.ts';
import { writeGguf } from './gguf/write.ts';

export {
  GGUF_FORMAT_ID, GGUF_MAGIC, GGUF_DEFAULT_ALIGNMENT, MAX_GGUF_TENSORS, MAX_GGUF_KV, MAX_GGUF_ARRAY, MAX_GGUF_STRING,
  MAX_GGUF_ARRAY_DEPTH, MAX_GGUF_HEADER_BYTES, MAX_GGUF_DIMS, MAX_GGUF_ALIGNMENT, GGUFValueType, GGML_TYPES, GGML_TYPE_BY_NAME,
  ggmlByteLength, parseGgufHeader, type GGUFValue, type GGUFArray, type GGUFKeyValue, type GGUFTensorInfo, type GGUFHeader,
} from './gguf/header.ts';
export { encodeGgufHeader, writeGguf, type GGUFTensorSpec } from './gguf/write.ts';

export interface GGUFTensor extends StreamedTensor {
  ggml: { type: number; typeName: string; dims: number[]; offset: number };
  /** Present for quantized types: the U8 bytes are ggml blocks. */
  quantization?: TensorQuantization;
}

export interface GGUFReader extends CheckpointReader {
  readonly header: GGUFHeader;
  /** Key-values as plain values (64-bit integers as numbers when safe, else decimal strings; long arrays summarised). */
  readonly metadata: Record<string, unknown>;
  tensors(): AsyncIterable<GGUFTensor>;
}


// ---------------------------------------------------------------------------------------------
// Dequantization for statistics

/** Dequantizers by ggml type number (the block decoders live in dequantize.ts, shared by every reader of values). */
const DEQUANTIZERS: Record<number, (() => StatsDequantizer) | undefined> = Object.fromEntries(
  Object.entries(GGML_TYPES).filter(([, t]) => !t.dtype).map(([k, t]) => [k, dequantizerFor({ scheme: `ggml:${t.name}` })]),
);

// ---------------------------------------------------------------------------------------------
// Reading

function tensorView(info: GGUFTensorInfo): { dtype: DType; shape: number[]; quantization?: TensorQuantization } {
  const t = GGML_TYPES[info.ggmlType];
  const logical = info.dims.slice().reverse();
  if (t.dtype) return { dtype: t.dtype, shape: logical };
  const rowBytes = ((info.dims.length ? info.dims[0] : 1) / t.block) * t.bytes;
  const shape = info.dims.length ? [...logical.slice(0, -1), rowBytes] : [rowBytes];
  const quantize = GGML_QUANTIZABLE.includes(t.name) ? (v: Float32Array) => quantizeGgml(t.name, v)
    : GGML_K_QUANTIZABLE.includes(t.name) ? (v: Float32Array) => quantizeGgmlK(t.name, v) : undefined;
  return { dtype: 'U8', shape, quantization: { scheme: `ggml:${t.name}`, shape: logical, dequantizer: DEQUANTIZERS[info.ggmlType], quantize } };
}

/** A ByteReader that first serves `head`, then continues with `reader`. */
function prepend(head: Uint8Array, reader: ByteReader): ByteReader {
  let h = head;
  let pos = 0;
  return {
    name: reader.name,
    size: reader.size,
    get position() { return pos; },
    async readExactly(n) {
      if (n <= h.length) { const out = h.subarray(0, n); h = h.subarray(n); pos += n; return out; }
      const out = new Uint8Array(n);
      const first = h.length;
      out.set(h);
      h = new Uint8Array(0);
      out.set(await reader.readExactly(n - first), first);
      pos += n;
      return out;
    },
    async readUpTo(n) {
      if (h.length) { const out = h.subarray(0, Math.min(n, h.length)); h = h.subarray(out.length); pos += out.length; return out; }
      const out = await reader.readUpTo(n);
      pos += out.length;
      return out;
    },
    async skip(n) {
      const a = Math.min(n, h.length);
      h = h.subarray(a);
      if (n > a) await reader.skip(n - a);
      pos += n;
    },
    close: () => reader.close(),
  };
}

async function open(reader: ByteReader, opts: OpenOptions = {}): Promise<GGUFReader> {
  const file = opts.fileName ?? reader.name;
  const start = reader.position;
  const size = reader.size === undefined ? undefined : reader.size - start;
  const c = new Cursor(reader, file, size);
  const header = await parseHeader(c, file);
  const prefix = c.prefix();
  // the header parse read ahead: give those bytes back when the reader can take them (then its
  // position before each tensor is the tensor's offset, and they are read as the tensor's), else
  // serve them in front of it
  const ahead = c.leftover();
  const r = reader.unread ? reader : prepend(ahead, reader);
  reader.unread?.(ahead);
  const gaps: Uint8Array[] = [];
  let done = false;
  let iterated = false;

  const rethrow = (e: unknown, tensor: string | undefined, wanted: number, at: number): never => {
    if (e instanceof TruncatedError) throw truncatedTensor(file, wanted, e.data.got as number, at, tensor);
    throw e;
  };

  async function* tensors(): AsyncGenerator<GGUFTensor> {
    if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once (the input is read sequentially)`);
    iterated = true;
    let at = 0; // relative to the data section
    for (const info of header.tensors) {
      if (info.offset > at) {
        const n = info.offset - at;
        try { gaps.push((await r.readExactly(n)).slice()); } catch (e) { rethrow(e, info.name, n, header.dataStart + at); }
        at = info.offset;
      }
      const view = tensorView(info);
      const streamed = streamingTensor(file, {
        name: info.name,
        dtype: view.dtype,
        shape: view.shape,
        byteLength: info.byteLength,
        ggml: { type: info.ggmlType, typeName: GGML_TYPES[info.ggmlType].name, dims: info.dims.slice(), offset: info.offset },
        quantization: view.quantization,
      }, {
        readUpTo: (max) => r.readUpTo(max),
        truncated: (done) => rethrow(new TruncatedError(file, 0, 0, 0), info.name, info.byteLength - done, header.dataStart + info.offset + done),
      });
      yield streamed.tensor;
      streamed.retire();
      const consumed = streamed.consumed();
      if (consumed < info.byteLength) {
        const left = info.byteLength - consumed;
        try { await r.skip(left); } catch (e) { rethrow(e, info.name, left, header.dataStart + info.offset + consumed); }
      }
      at = info.offset + info.byteLength;
    }
    // After the last tensor: nothing, or padding up to the alignment.
    const pad = alignUp(at, header.alignment) - at;
    const tail: Uint8Array[] = [];
    let n = 0;
    while (n <= pad) {
      const more = await r.readUpTo(pad + 1 - n);
      if (!more.length) break;
      tail.push(more.slice());
      n += more.length;
    }
    const trailing = concat(tail, n);
    if (n !== 0 && n !== pad) {
      throw ggufError(file, `${n > pad ? `more than ${pad}` : n} bytes follow the last tensor; only nothing or the padding to the ${header.alignment}-byte alignment (${pad} bytes) may`, undefined, { reason: 'trailing' });
    }
    gaps.push(trailing);
    done = true;
  }

  return {
    format: GGUF_FORMAT_ID,
    header,
    metadata: Object.fromEntries(header.kv.map((x) => [x.key, plain(x.value)])),
    tensors,
    skeleton() {
      if (!done) throw new ArgumentError(`${file}: skeleton() is valid once tensors() has been iterated to the end`);
      return concat([prefix, ...gaps]);
    },
    close: () => reader.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Rebuilding and writing

async function rebuild(skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void> {
  const file = '<skeleton>';
  const header = await parseGgufHeader(skeleton, file);
  if (skeleton.length < header.dataStart) throw ggufError(file, 'skeleton is shorter than its header');
  await sink.write(skeleton.subarray(0, header.dataStart));
  let s = header.dataStart;
  let at = 0;
  for (const info of header.tensors) {
    const gap = info.offset - at;
    if (gap > 0) {
      if (s + gap > skeleton.length) throw ggufError(file, 'skeleton lacks padding bytes between tensors');
      await sink.write(skeleton.subarray(s, s + gap));
      s += gap;
    }
    let got = 0;
    for await (const part of tensor(info.name)) {
      got += part.length;
      if (got > info.byteLength) throw ggufError(file, `got more than the ${info.byteLength} bytes its header needs`, info.name);
      if (part.length) await sink.write(part);
    }
    if (got !== info.byteLength) throw ggufError(file, `got ${got} bytes but its header needs ${info.byteLength}`, info.name);
    at = info.offset + info.byteLength;
  }
  const trailing = skeleton.length - s;
  const pad = alignUp(at, header.alignment) - at;
  if (trailing !== 0 && trailing !== pad) throw ggufError(file, `skeleton has ${trailing} trailing bytes; expected 0 or ${pad}`);
  if (trailing) await sink.write(skeleton.subarray(s));
}

function sniff(head: Uint8Array): boolean {
  return head.length >= 8 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46;
}

export interface GGUFFormat extends CheckpointFormat {
  open(reader: ByteReader, opts?: OpenOptions): Promise<GGUFReader>;
}

export const gguf: GGUFFormat = {
  id: GGUF_FORMAT_ID,
  extensions: ['.gguf'],
  sniff,
  open,
  rebuild,
  // tensors are handed out as the bytes read at their place (quantized ones as their ggml blocks),
  // the header's read-ahead given back when the reader can take it; rebuild writes each piece as given
  verbatimTensors: true,
  write: (tensors, sink, opts) => writeGguf(tensors, sink, opts),
  // the skeleton starts with the header, which records each tensor's ggml type
  async quantizations(skeleton) {
    const out: Record<string, TensorQuantization> = {};
    for (const info of (await parseGgufHeader(skeleton, '<skeleton>')).tensors) {
      const q = tensorView(info).quantization;
      if (q) out[info.name] = q;
    }
    return out;
  },
};

export function dtypeOfGgml(type: number): DType | undefined {
  return GGML_TYPES[type]?.dtype;
}

