/**
 * The interface every checkpoint format implements. A format is one file under src/formats/ that
 * is registered in formats/index.ts; adding a format never touches the rest.
 *
 * Reading streams: `tensors()` yields tensors in file order, one at a time, and a tensor's bytes are
 * read only when asked for (in chunks), so memory stays bounded by the chunk size (or by the largest
 * tensor when a caller asks for whole tensors). Reconstruction is byte-exact: the skeleton holds every
 * non-tensor byte and the layout, and `rebuild` puts the original file back from it and the tensors.
 */
import type { DType } from '../core/dtypes.ts';
import type { ByteReader, ByteSink } from '../core/io.ts';

export interface TensorHeader {
  /** Unique within the checkpoint; nested containers use dotted paths (e.g. `model.fc.weight`). */
  name: string;
  dtype: DType;
  shape: number[];
  /** Bytes of the tensor's contiguous little-endian data (dtype size × element count). */
  byteLength: number;
}

export interface StreamedTensor extends TensorHeader {
  /**
   * The tensor's bytes in pieces of at most `chunkBytes` (default 4 MiB). Call at most once, before
   * asking for the next tensor; pieces may be views into a reused buffer, valid until the next piece.
   */
  chunks(chunkBytes?: number): AsyncIterable<Uint8Array>;
  /** All of the tensor's bytes in one fresh array (memory: the tensor's size). */
  bytes(): Promise<Uint8Array>;
}

export interface CheckpointReader {
  readonly format: string;
  /** Tensors in file order. Bytes of a tensor that was not read are skipped when the next one is requested. */
  tensors(): AsyncIterable<StreamedTensor>;
  /** Format-specific bytes for byte-exact rebuild; valid once `tensors()` has been iterated to the end. */
  skeleton(): Uint8Array;
  /** Format-level metadata worth showing (e.g. safetensors `__metadata__`). */
  readonly metadata?: Record<string, unknown>;
  close(): Promise<void>;
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

export interface OpenOptions {
  /** Used in error messages; formats that look at neighbouring files take it as a path in `files`. */
  fileName?: string;
  /**
   * Read access to the files around this one (the repository's work tree when cleaning), for
   * formats whose layout is described by another file: a TF.js weight shard is split into weights
   * by the `model.json` next to it. Optional; formats that need it say what they do without it.
   */
  files?: FileAccess;
}

/**
 * Read-only access to a tree of files by '/'-separated paths relative to its root ('' is the root
 * directory). Implementations: the work tree on disk (Node), a git revision, files in memory.
 */
export interface FileAccess {
  /** Names of the regular files directly inside `dir` (not paths, not sub-directories); [] when there is no such directory. */
  list(dir: string): Promise<string[]>;
  /** The file's bytes, or null when it is missing or larger than `maxBytes`. */
  read(path: string, maxBytes: number): Promise<Uint8Array | null>;
  /** The file's size in bytes, or null when it is missing. */
  size(path: string): Promise<number | null>;
}

export interface CheckpointFormat {
  /** Short id recorded in metadata: 'safetensors', 'pytorch', ... */
  readonly id: string;
  /** File name endings, lower case with the dot: ['.safetensors']. */
  readonly extensions: readonly string[];
  /** True when the first bytes (up to 4 KiB; fewer for small files) look like this format. */
  sniff(head: Uint8Array, fileName?: string): boolean;
  open(reader: ByteReader, opts?: OpenOptions): Promise<CheckpointReader>;
  /**
   * Rebuild the exact original file from its skeleton and the bytes of each tensor, asked for by
   * name in the order the format needs them.
   */
  rebuild(skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void>;
  /**
   * The quantized tensors a skeleton describes (by name), for formats whose skeleton records each
   * tensor's encoding (GGUF); merges use it to requantize. Optional.
   */
  quantizations?(skeleton: Uint8Array): Promise<Record<string, TensorQuantization>>;
  /**
   * Optional promise that lets clean's recipe check skip the objects of unchanged tensors
   * (theta/segmented-check.ts): the bytes a tensor's `chunks()` hands out are the file's own bytes,
   * unchanged, read from the ByteReader given to `open` while those chunks are asked for (no
   * read-ahead into them, or read-ahead given back with the reader's `unread` when it offers it),
   * and `rebuild` writes each piece it is given to the sink as it is.
   */
  readonly verbatimTensors?: boolean;
  /** Write a new file holding these tensors (conversion, merges, tests). */
  write(tensors: AsyncIterable<TensorToWrite> | Iterable<TensorToWrite>, sink: ByteSink, opts?: { metadata?: Record<string, string> }): Promise<void>;
}

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
  /**
   * Float32 values back to stored bytes in this same scheme (same block layout, same parameters
   * where the file fixes them, e.g. TF.js scale/min); undefined when the scheme cannot be written.
   * Merges use it to write a quantized tensor back in its own type.
   */
  quantize?: (values: Float32Array) => Uint8Array;
}
