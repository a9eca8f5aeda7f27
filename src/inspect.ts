/**
 * `inspect`: per-tensor statistics of a checkpoint, computed by the Wasm kernels while the
 * checkpoint streams past, one tensor (one chunk) at a time. Runtime-neutral: the caller opens the
 * checkpoint (a ByteReader from a file, a Blob, a pipe).
 */
import type { CheckpointReader } from './formats/types.ts';
import type { DType } from './core/dtypes.ts';
import { getKernels, type Kernels } from './core/kernels.ts';

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
  dtype: DType;
  shape: number[];
  bytes: number;
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
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

export async function inspectCheckpoint(reader: CheckpointReader, opts: InspectOptions = {}): Promise<InspectReport> {
  const kernels = opts.kernels ?? (await getKernels());
  const tensors: InspectTensor[] = [];
  for await (const t of reader.tensors()) {
    const acc = kernels.statsAccumulator(t.dtype);
    for await (const chunk of t.chunks(opts.chunkBytes)) acc.update(chunk);
    const s = acc.result();
    const n = s.finite;
    const mean = n > 0 ? s.sum / n : NaN;
    const variance = n > 0 ? Math.max(0, s.sumsq / n - mean * mean) : NaN;
    const entry: InspectTensor = {
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      bytes: t.byteLength,
      stats: {
        mean: finiteOrNull(mean),
        std: finiteOrNull(Math.sqrt(variance)),
        min: finiteOrNull(s.min),
        max: finiteOrNull(s.max),
        l2: n > 0 ? Math.sqrt(s.sumsq) : null,
        nonfinite: s.nan + s.inf,
      },
    };
    tensors.push(entry);
    opts.onTensor?.(entry, tensors.length - 1);
  }
  return { format: reader.format, tensors };
}
