/**
 * One weight shard of a TF.js model (`group1-shard2of3.bin`), tracked as its own file so that a
 * TF.js model directory is versioned weight by weight while every file in it stays an ordinary file
 * in git: `model.json` is a small text file, each shard goes through the theta filter.
 *
 * A shard holds nothing but weight bytes; which weights, and where they split, is written in the
 * `model.json` that lists it. Opening a shard therefore looks for that manifest through
 * `OpenOptions.files` (the work tree when cleaning): the JSON files in the shard's directory and up
 * to MAX_MANIFEST_LEVELS directories above it, one of which must list the shard's path. The shard's
 * place in its group's byte stream is the sum of the sizes of the shards listed before it.
 *
 * Tensors of a shard, in byte order:
 *   - a weight that lies wholly in the shard, under its own name, dtype and shape;
 *   - a piece of a weight that spans shards, as `<weight>#<byte offset in the weight>`, 1-D, with
 *     the weight's dtype when the piece is whole elements, else as U8 bytes;
 *   - bytes past the group's last weight as `#extra@<offset in the shard>` (U8);
 *   - a shard with no manifest that lists it (or whose neighbours are missing) as windows of at
 *     most RAW_WINDOW_BYTES, `#bytes@<offset>` (U8): still exact, just not split by weight.
 * Zero-byte weights have no bytes in any shard and are left out.
 *
 * The skeleton is the ordered list of tensor names (plus where the layout came from), so checkout
 * is the concatenation of the tensors and needs no manifest at all. `src/theta/tfjs-model.ts`
 * puts the shards of one model.json back together into whole weights for diffs.
 *
 * Memory: each tensor (a weight or a piece) is read into one buffer before it is handed out, since
 * a piece's length is known only once the shard's end is seen; bounded by the largest weight.
 */
import { ArgumentError, FormatError } from '../core/errors.ts';
import type { DType } from '../core/dtypes.ts';
import { dtypeSize } from '../core/dtypes.ts';
import type { ByteReader, ByteSink } from '../core/io.ts';
import { MAX_MODEL_JSON_BYTES, parseTfjsModelJson, type TfjsGroup, type TfjsManifest, type TfjsWeight } from './tfjs.ts';
import { tfjsAffine } from './tfjs-quant.ts';
import type { CheckpointFormat, CheckpointReader, FileAccess, OpenOptions, StreamedTensor, TensorQuantization } from './types.ts';
import { memoryTensor, DEFAULT_CHUNK_BYTES } from './read-once.ts';

export const TFJS_SHARD_FORMAT_ID = 'tfjs-shard';

/** How many directories above the shard's own are searched for its model.json (TF.js keeps them together). */
export const MAX_MANIFEST_LEVELS = 3;

/** JSON files looked at per directory: a model directory holds one or a few; this bounds a hostile tree. */
export const MAX_JSON_CANDIDATES = 64;

/** Window size for shards whose layout is unknown (bounds memory, keeps some deduplication). */
export const RAW_WINDOW_BYTES = 64 << 20;

const SKELETON_MAGIC = 'theta-tfjs-shard/1';

function shardError(file: string, message: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, format: TFJS_SHARD_FORMAT_ID, ...extra });
}

// ---------------------------------------------------------------------------------------------
// Paths ('/'-separated, relative to the FileAccess root)

export function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function joinPath(dir: string, rel: string): string {
  return dir ? `${dir}/${rel}` : rel;
}

// ---------------------------------------------------------------------------------------------
// Finding the manifest

export interface ManifestHit {
  /** Path of the model.json (relative to the FileAccess root). */
  path: string;
  manifest: TfjsManifest;
  /** Group of the manifest that lists the shard, and the shard's index in it. */
  group: number;
  index: number;
}

// Parsed manifests by the bytes object they came from: a FileAccess that caches reads hands back
// the same bytes for an unchanged file, so the shards of one model parse its model.json once.
const parsed = new WeakMap<Uint8Array, TfjsManifest | null>();

function parseCached(bytes: Uint8Array, path: string): TfjsManifest | null {
  if (parsed.has(bytes)) return parsed.get(bytes)!;
  let m: TfjsManifest | null = null;
  try {
    m = parseTfjsModelJson(bytes, path);
  } catch {
    m = null; // not a TF.js manifest (or a broken one): not this shard's
  }
  parsed.set(bytes, m);
  return m;
}

/** The TF.js manifest paths listed in this model.json, resolved against its directory. */
export function manifestShardPaths(manifestPath: string, manifest: TfjsManifest): string[][] {
  const dir = dirOf(manifestPath);
  return manifest.groups.map((g) => g.paths.map((p) => joinPath(dir, p)));
}

/** The JSON files of `dir` that are TF.js manifests, with their parsed content. */
export async function manifestsIn(files: FileAccess, dir: string): Promise<{ path: string; manifest: TfjsManifest }[]> {
  const names = (await files.list(dir)).filter((n) => n.toLowerCase().endsWith('.json')).sort().slice(0, MAX_JSON_CANDIDATES);
  const out: { path: string; manifest: TfjsManifest }[] = [];
  for (const name of names) {
    const path = joinPath(dir, name);
    const bytes = await files.read(path, MAX_MODEL_JSON_BYTES);
    const manifest = bytes && parseCached(bytes, path);
    if (manifest) out.push({ path, manifest });
  }
  return out;
}

/**
 * The model.json that lists `shardPath`, searching the shard's directory and up to
 * MAX_MANIFEST_LEVELS above it (the nearest directory with a hit wins). null when none does;
 * FormatError when two manifests in one directory both list it.
 */
export async function findTfjsManifest(shardPath: string, files: FileAccess): Promise<ManifestHit | null> {
  let dir = dirOf(shardPath);
  for (let level = 0; level <= MAX_MANIFEST_LEVELS; level++) {
    const hits: ManifestHit[] = [];
    for (const { path, manifest } of await manifestsIn(files, dir)) {
      manifestShardPaths(path, manifest).forEach((paths, group) => {
        const index = paths.indexOf(shardPath);
        if (index >= 0) hits.push({ path, manifest, group, index });
      });
    }
    if (hits.length > 1) {
      throw shardError(shardPath, `is listed by more than one model.json (${hits.map((h) => h.path).join(', ')}); keep one manifest per set of shards`, { reason: 'ambiguous' });
    }
    if (hits.length) return hits[0];
    if (!dir) break;
    dir = dirOf(dir);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Layout: where each weight lies in a group's byte stream

export interface WeightSpan {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range in the group's stream (all of its shards, end to end). */
  start: number;
  end: number;
  /** The manifest's dtype (float32, int32, bool) and its affine quantization, if any. */
  manifestDtype?: string;
  quantization?: TfjsWeight['quantization'];
}

export function weightSpans(g: TfjsGroup): WeightSpan[] {
  let at = 0;
  return g.weights.map((w) => {
    const span: WeightSpan = { name: w.name, dtype: w.dtype, shape: w.shape, start: at, end: at + w.byteLength, manifestDtype: w.manifestDtype, quantization: w.quantization };
    at += w.byteLength;
    return span;
  });
}

/**
 * The affine mapping of a float32 weight quantized to uint8/uint16 codes, for a whole weight or a
 * piece of whole codes (the mapping is per element), so diffs and merges work on its values. An
 * int32 weight stored as codes gets none: its values are integers, which merges never average.
 */
export function spanQuantization(w: WeightSpan, dtype: DType, shape: number[]): TensorQuantization | undefined {
  if (w.manifestDtype !== 'float32' || dtype !== w.dtype) return undefined;
  return tfjsAffine(w.quantization, shape);
}

/** The name a shard gives the part [from, to) of a weight (both in group-stream bytes). */
export function pieceName(w: WeightSpan, from: number, to: number): string {
  return from === w.start && to === w.end ? w.name : `${w.name}#${from - w.start}`;
}

/** Dtype and shape of a piece: whole elements keep the weight's dtype, anything else is bytes. */
export function pieceLayout(w: WeightSpan, from: number, to: number): { dtype: DType; shape: number[] } {
  if (from === w.start && to === w.end) return { dtype: w.dtype, shape: w.shape.slice() };
  const size = dtypeSize(w.dtype);
  const aligned = (from - w.start) % size === 0 && (to - from) % size === 0;
  return aligned ? { dtype: w.dtype, shape: [(to - from) / size] } : { dtype: 'U8', shape: [to - from] };
}

export const extraName = (shardOffset: number) => `#extra@${shardOffset}`;
export const rawName = (shardOffset: number) => `#bytes@${shardOffset}`;

// ---------------------------------------------------------------------------------------------
// Reading

export interface TfjsShardLayout {
  /** The model.json the shard was split by, or null when none was found. */
  modelJson: string | null;
  group?: number;
  index?: number;
  /** Where the shard starts in its group's byte stream. */
  offset?: number;
  /** Why the shard was not split by weight (missing manifest, missing neighbours). */
  reason?: string;
}

export interface TfjsShardReader extends CheckpointReader {
  readonly layout: TfjsShardLayout;
}

/** Work out the shard's place in its group: the manifest, and the sizes of the shards before it. */
export async function locateShard(shardPath: string, files: FileAccess | undefined): Promise<{ layout: TfjsShardLayout; spans: WeightSpan[] }> {
  if (!files) return { layout: { modelJson: null, reason: 'no access to the files next to the shard' }, spans: [] };
  const hit = await findTfjsManifest(shardPath, files);
  if (!hit) return { layout: { modelJson: null, reason: `no model.json next to it (or up to ${MAX_MANIFEST_LEVELS} directories above) lists it` }, spans: [] };
  const paths = manifestShardPaths(hit.path, hit.manifest)[hit.group];
  let offset = 0;
  for (const p of paths.slice(0, hit.index)) {
    const size = await files.size(p);
    if (size === null) return { layout: { modelJson: hit.path, reason: `the shard before it, ${p}, is missing, so where it starts in ${hit.path}'s weights is unknown` }, spans: [] };
    offset += size;
  }
  return { layout: { modelJson: hit.path, group: hit.group, index: hit.index, offset }, spans: weightSpans(hit.manifest.groups[hit.group]) };
}

async function readUpTo(reader: ByteReader, n: number): Promise<Uint8Array> {
  let out: Uint8Array | null = null;
  let filled = 0;
  while (filled < n) {
    const p = await reader.readUpTo(n - filled);
    if (!p.length) break;
    if (!out) {
      if (p.length === n) return p.slice();
      out = new Uint8Array(n);
    }
    out.set(p, filled);
    filled += p.length;
  }
  return out ? (filled === n ? out : out.slice(0, filled)) : new Uint8Array(0);
}

async function openShard(reader: ByteReader, opts: OpenOptions = {}): Promise<TfjsShardReader> {
  const file = opts.fileName ?? reader.name;
  const { layout, spans } = await locateShard(file, opts.files);
  const names: string[] = [];
  let iterated = false;
  let done = false;

  async function* tensors(): AsyncGenerator<StreamedTensor> {
    if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once`);
    iterated = true;
    const start = layout.offset ?? 0;
    let pos = start; // in the group's stream
    let ended = false;
    if (layout.offset !== undefined) {
      for (const w of spans) {
        if (w.end <= pos || w.end === w.start) continue;
        const data = await readUpTo(reader, w.end - pos);
        if (!data.length) { ended = true; break; }
        const name = pieceName(w, pos, pos + data.length);
        const { dtype, shape } = pieceLayout(w, pos, pos + data.length);
        names.push(name);
        const tensor = memoryTensor(file, { name, dtype, shape, byteLength: data.length }, () => data, DEFAULT_CHUNK_BYTES);
        const quantization = spanQuantization(w, dtype, shape);
        yield quantization ? Object.assign(tensor, { quantization }) : tensor;
        pos += data.length;
        if (pos < w.end) { ended = true; break; }
      }
    }
    // bytes past the group's weights, or a shard whose layout is unknown, in bounded windows
    while (!ended) {
      const data = await readUpTo(reader, RAW_WINDOW_BYTES);
      if (!data.length) break;
      const name = layout.offset !== undefined ? extraName(pos - start) : rawName(pos - start);
      names.push(name);
      yield memoryTensor(file, { name, dtype: 'U8', shape: [data.length], byteLength: data.length }, () => data, DEFAULT_CHUNK_BYTES);
      pos += data.length;
    }
    done = true;
  }

  return {
    format: TFJS_SHARD_FORMAT_ID,
    layout,
    metadata: { modelJson: layout.modelJson, ...(layout.reason ? { note: layout.reason } : {}) },
    tensors,
    skeleton() {
      if (!done) throw new ArgumentError(`${file}: skeleton() is valid once tensors() has been iterated to the end`);
      const { modelJson, group, index, offset } = layout;
      return new TextEncoder().encode(JSON.stringify({ skeleton: SKELETON_MAGIC, modelJson, group, index, offset, tensors: names }));
    },
    async close() { await reader.close(); },
  };
}

// ---------------------------------------------------------------------------------------------
// Rebuilding

export function decodeShardSkeleton(skeleton: Uint8Array): { modelJson: string | null; tensors: string[] } {
  let meta: { skeleton?: unknown; modelJson?: unknown; tensors?: unknown };
  try {
    meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(skeleton));
  } catch {
    throw shardError('<skeleton>', 'not a TF.js shard skeleton (not JSON)');
  }
  if (meta?.skeleton !== SKELETON_MAGIC || !Array.isArray(meta.tensors) || !meta.tensors.every((n) => typeof n === 'string')) {
    throw shardError('<skeleton>', 'not a TF.js shard skeleton');
  }
  return { modelJson: typeof meta.modelJson === 'string' ? meta.modelJson : null, tensors: meta.tensors as string[] };
}

async function rebuild(skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void> {
  for (const name of decodeShardSkeleton(skeleton).tensors) {
    for await (const part of tensor(name)) await sink.write(part);
  }
}

export interface TfjsShardFormat extends CheckpointFormat {
  open(reader: ByteReader, opts?: OpenOptions): Promise<TfjsShardReader>;
}

export const tfjsShard: TfjsShardFormat = {
  id: TFJS_SHARD_FORMAT_ID,
  // Shards are raw bytes: nothing can be told from their content, and `.bin` is PyTorch's too. The
  // format is chosen by the `theta-format=tfjs-shard` attribute that `git theta track` writes.
  extensions: [],
  sniff: () => false,
  open: openShard,
  rebuild,
  async write() {
    throw new ArgumentError('a TF.js weight shard is laid out by its model.json: write the whole model with writeTfjs (or `git theta convert ... model.json`), not one shard');
  },
};

