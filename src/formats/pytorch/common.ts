/** PyTorch checkpoints (see ../pytorch.ts): the format id, the reading limits, the public types and the skeleton's plan types. */
import type { DType } from '../../core/dtypes.ts';
import type { CheckpointReader, StreamedTensor } from '../types.ts';
import type { PyValue } from '../pickle.ts';

export const PYTORCH_FORMAT_ID = 'pytorch';

/** Largest `data.pkl` we read: a state dict of 100k tensors pickles to ~10 MB; training state with Python extras rarely passes 100 MB. */
export const MAX_PICKLE_BYTES = 256 << 20;
/** Largest entry other than data.pkl and the storages (`version`, `byteorder`, unreferenced extras), all kept in the skeleton. */
export const MAX_OTHER_ENTRY_BYTES = 64 << 20;
/** Largest size a deflated entry may inflate to (declared or actual): guards against zip bombs. */
export const MAX_INFLATED_BYTES = 256 << 20;
/** Largest central directory + end records: ~100 bytes per entry, so a million entries fit. */
export const MAX_TAIL_BYTES = 256 << 20;
/** Most zip entries: a checkpoint has one per storage plus a handful. */
export const MAX_ENTRIES = 1 << 20;
/** Deepest container nesting we walk when naming tensors. */
export const MAX_NAME_DEPTH = 1000;

export const SKELETON_MAGIC = 'GTPTSK01';
export const U32_MAX = 0xffffffff;

export interface PytorchTensor extends StreamedTensor {
  /** The storage (zip entry `data/<key>`) this tensor is a view of. */
  storageKey: string;
  /** Offset (in elements) into the storage, and the view's strides (in elements). */
  storageOffset: number;
  stride: number[];
  /** Another name for the very same view (tied weights): the first name it was found under. */
  tiedTo?: string;
}

export interface PytorchReader extends CheckpointReader {
  /** The archive's top-level folder (torch uses the file's base name). */
  readonly archive: string;
  /** The unpickled object (tensors as TensorRef), for callers that want non-tensor values. */
  readonly object: PyValue;
  readonly metadata: { archive: string };
  tensors(): AsyncIterable<PytorchTensor>;
}

export interface ViewPlan {
  name: string;
  offset: number;
  shape: number[];
  stride: number[];
  tiedTo?: string;
}

export interface StoragePlan {
  key: string;
  dtype: DType;
  bytes: number;
  /** Blob offsets of the CRC fields to patch when the storage is rebuilt. */
  crcAt: number[];
  views: ViewPlan[];
  /** Uncovered ranges: [byte offset in storage, blob offset, length]. */
  fill: [number, number, number][];
}

export type Segment = ['r', number, number] | ['s', number];

export interface SkeletonDoc {
  v: 1;
  segments: Segment[];
  storages: StoragePlan[];
}
