/**
 * `inspect`: per-tensor statistics of a checkpoint, computed by the Wasm kernels while the
 * checkpoint streams past, one tensor (one chunk) at a time. Runtime-neutral: the caller opens the
 * checkpoint (a ByteReader from a file, a Blob, a pipe).
 */
import type { CheckpointReader } from './formats/types.ts';
import type { DType } from './core/dtypes.ts';
import { getKernels, type Kernels, type TensorStats } from './core/kernels.ts';
import type { MaybeQuantized } from './formats/convert.ts';
import { quantLabel } from './formats/dequantize.ts';

export interface InspectStats {
  mean: number | null;
  std: number | null;
  min: number | null;
  max: number | null;
  l2: number | null;
  nonfinite: number;
}

export interface InspectTensor {
  name: string;
  /** The dtype, or for a quantized tensor its type as stored: `Q8_0`, `Q4_K`, `uint8→float32 (affine)`. */
  dtype: DType | string;
  /** For a quantized tensor: the dtype of its stored bytes (`U8`). */
  storage_dtype?: DType;
  /** The logical shape (for a GGUF tensor, C order: GGUF's `ne` reversed). */
  shape: number[];
  bytes: number;
  /** With the sha256 option: SHA-256 of the tensor's bytes as stored (hex). */
  sha256?: string;
  /** For quantized tensors: the scheme ('ggml:Q8_0', 'tfjs:uint8', ...); statistics are of the dequantized values. */
  quantization?: string;
  stats: InspectStats;
}

export interface InspectReport {
  format: string;
  tensors: InspectTensor[];
}

export interface InspectOptions {
  kernels?: Kernels;
  /** Bytes read per step; memory stays bounded by this, not by the tensor size. */
  chunkBytes?: number;
  onTensor?(t: InspectTensor, index: number): void;
  /** Also compute each tensor's SHA-256 (of its contiguous little-endian bytes). */
  sha256?: boolean;
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** The statistics `inspect` shows, from the kernels' one-pass result (null where no value is finite). */
export function inspectStats(s: TensorStats): InspectStats {
  const any = s.finite > 0;
  return {
    mean: any ? finiteOrNull(s.mean) : null,
    std: any ? finiteOrNull(s.std) : null,
    min: finiteOrNull(s.min),
    max: finiteOrNull(s.max),
    l2: any ? s.l2 : null,
    nonfinite: s.nan + s.inf,
  };
}

export async function inspectCheckpoint(reader: CheckpointReader, opts: InspectOptions = {}): Promise<InspectReport> {
  const kernels = opts.kernels ?? (await getKernels());
  const tensors: InspectTensor[] = [];
  for await (const t of reader.tensors()) {
    // quantized tensors (GGUF Q8_0/Q4_0, TF.js uint8/uint16) are measured on their dequantized
    // values; schemes tracked as opaque bytes get no statistics rather than byte statistics
    const q = (t as MaybeQuantized).quantization;
    const values = q?.dequantizer ? true : undefined;
    if (q && !values) {
      const entry: InspectTensor = {
        name: t.name, dtype: quantLabel(q.scheme), storage_dtype: t.dtype, shape: q.shape, bytes: t.byteLength, quantization: q.scheme,
        stats: { mean: null, std: null, min: null, max: null, l2: null, nonfinite: 0 },
      };
      tensors.push(entry);
      opts.onTensor?.(entry, tensors.length - 1);
      continue;
    }
    const acc = kernels.statsAccumulator(values ? 'F32' : t.dtype);
    // imported only when asked for: textconv and diff summarise with inspectStats and need no SHA-256
    const sha = opts.sha256 ? (await import('./core/sha256.ts')).createSha256() : null;
    if (q && values) {
      // the stored bytes are hashed as they pass on their way to the dequantizer
      const d = q.dequantizer!();
      const put = (v: Float32Array) => v.length && acc.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      for await (const chunk of t.chunks(opts.chunkBytes)) {
        sha?.update(chunk);
        put(d.push(chunk));
      }
      put(d.finish());
    } else {
      for await (const chunk of t.chunks(opts.chunkBytes)) {
        acc.update(chunk);
        sha?.update(chunk);
      }
    }
    const entry: InspectTensor = {
      name: t.name,
      dtype: q ? quantLabel(q.scheme) : t.dtype,
      ...(q ? { storage_dtype: t.dtype } : {}),
      shape: q ? q.shape : t.shape,
      bytes: t.byteLength,
      stats: inspectStats(acc.result()),
    };
    if (q) entry.quantization = q.scheme;
    if (sha) entry.sha256 = sha.digestHex();
    tensors.push(entry);
    opts.onTensor?.(entry, tensors.length - 1);
  }
  return { format: reader.format, tensors };
}
