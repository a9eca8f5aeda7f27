/**
 * TF.js weights: a `model.json` whose `weightsManifest` is a list of groups
 * `{paths: [shard files], weights: [{name, shape, dtype, quantization?}]}`. A group's weights are
 * laid end to end, in order, across the concatenation of its shard files, so one weight may span
 * shards. Weight dtypes: float32, int32, bool (1 byte). Quantized weights store `quantization.dtype`
 * values instead: uint8/uint16 with value = q·scale + min, or float16.
 *
 * The model is several files, tracked as one: `model.json` is the entry point (what `open` reads)
 * and shards are opened through a callback, relative to it (like sharded safetensors). Tensors are
 * handed out group by group in manifest order, streaming across shard boundaries. uint8/uint16
 * weights are handed out as the stored U8/U16 values (exact), with a `quantization` whose
 * dequantizer gives q·scale + min as float32 for statistics; float16 weights are F16 tensors.
 *
 * Byte-exact rebuild: the shard files hold nothing but weight bytes, so the skeleton is the exact
 * model.json bytes plus each shard's length (the manifest does not record where shards split).
 * `rebuildTfjs` writes model.json and every shard through a sink factory; the single-sink `rebuild`
 * of the format interface writes model.json only.
 */
import { streamingTensor } from './read-once.ts';
import type { DType } from '../core/dtypes.ts';
import { ArgumentError, FormatError, TruncatedError } from '../core/errors.ts';
import { concat, type ByteReader, type ByteSink } from '../core/io.ts';
import type { CheckpointFormat, CheckpointReader, OpenOptions, StreamedTensor, TensorToWrite } from './types.ts';
import type { TensorQuantization } from './types.ts';
import { tfjsAffine } from './tfjs-quant.ts';

export const TFJS_FORMAT_ID = 'tfjs';

/** Largest model.json we read: topologies run to a few MB; 100 MB bounds a hostile file. */
export const MAX_MODEL_JSON_BYTES = 100_000_000;

/** Most weights in a manifest (real models: hundreds to a few thousand). */
export const MAX_TFJS_WEIGHTS = 1_000_000;

/** TF.js's own converter default shard size, used by our writer. */
export const DEFAULT_SHARD_BYTES = 4 << 20;


const SKELETON_MAGIC = 'theta-tfjs-skeleton/1';

const WEIGHT_DTYPES: Record<string, { dtype: DType; size: number }> = {
  float32: { dtype: 'F32', size: 4 },
  int32: { dtype: 'I32', size: 4 },
  bool: { dtype: 'BOOL', size: 1 },
};
const QUANT_DTYPES: Record<string, { dtype: DType; size: number }> = {
  uint8: { dtype: 'U8', size: 1 },
  uint16: { dtype: 'U16', size: 2 },
  float16: { dtype: 'F16', size: 2 },
};

export interface TfjsWeight {
  name: string;
  shape: number[];
  /** The manifest's dtype (float32, int32, bool). */
  manifestDtype: string;
  /** What the shard bytes hold. */
  dtype: DType;
  byteLength: number;
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

export interface TfjsGroup {
  paths: string[];
  weights: TfjsWeight[];
  byteLength: number;
}

export interface TfjsManifest {
  groups: TfjsGroup[];
  json: Record<string, unknown>;
}

function tfError(file: string, message: string, tensor?: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, tensor, format: TFJS_FORMAT_ID, ...extra });
}

/** A shard path must stay inside the model's directory: relative, no '.'/'..' segments, no backslash, drive or NUL. */
export function checkShardPath(path: unknown, file = 'model.json'): string {
  if (typeof path !== 'string' || path === '') throw tfError(file, `shard path must be a non-empty string, found ${JSON.stringify(path)}`, undefined, { reason: 'unsafe-path' });
  const bad = path.startsWith('/') || path.includes('\\') || path.includes('\0') || /^[A-Za-z]:/.test(path) || path.includes('://') ||
    path.split('/').some((s) => s === '' || s === '.' || s === '..');
  if (bad) throw tfError(file, `shard path ${JSON.stringify(path)} must be a relative path inside the model directory (no '..', '/' prefix, '\\' or drive)`, undefined, { path, reason: 'unsafe-path' });
  return path;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse and check a model.json. */
export function parseTfjsModelJson(bytes: Uint8Array, file = 'model.json'): TfjsManifest {
  if (bytes.length > MAX_MODEL_JSON_BYTES) throw tfError(file, `model.json is ${bytes.length} bytes, over the ${MAX_MODEL_JSON_BYTES}-byte limit`, undefined, { reason: 'too-large' });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw tfError(file, 'model.json is not valid UTF-8', undefined, { reason: 'utf8' });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw tfError(file, `model.json is not valid JSON (${(e as Error).message})`, undefined, { reason: 'json' });
  }
  // a bare weights manifest (face-api's `*-weights_manifest.json`) is the array model.json holds under weightsManifest
  if (!isObj(json) && !Array.isArray(json)) throw tfError(file, 'model.json must be a JSON object (or a bare weights manifest array)');
  const manifest = Array.isArray(json) ? json : json.weightsManifest;
  if (!Array.isArray(manifest)) throw tfError(file, 'model.json has no weightsManifest array', undefined, { reason: 'manifest' });
  const groups: TfjsGroup[] = [];
  const names = new Set<string>();
  const allPaths = new Set<string>();
  let count = 0;
  for (const [gi, g] of manifest.entries()) {
    if (!isObj(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw tfError(file, `weightsManifest[${gi}] must be {paths: [...], weights: [...]}`, undefined, { reason: 'manifest' });
    const paths = g.paths.map((p) => checkShardPath(p, file));
    for (const p of paths) {
      if (allPaths.has(p)) throw tfError(file, `shard ${JSON.stringify(p)} is listed twice`, undefined, { path: p, reason: 'duplicate' });
      allPaths.add(p);
    }
    const weights: TfjsWeight[] = [];
    let total = 0;
    for (const w of g.weights) {
      if (++count > MAX_TFJS_WEIGHTS) throw tfError(file, `more than ${MAX_TFJS_WEIGHTS} weights`, undefined, { reason: 'too-many' });
      if (!isObj(w) || typeof w.name !== 'string') throw tfError(file, `weightsManifest[${gi}] has a weight without a name`, undefined, { reason: 'manifest' });
      const name = w.name;
      const fail = (m: string, extra: Record<string, unknown> = {}) => tfError(file, m, name, { reason: 'manifest', ...extra });
      if (names.has(name)) throw fail('appears twice in the weights manifest', { reason: 'duplicate' });
      names.add(name);
      if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw fail(`shape must be non-negative integers, found ${JSON.stringify(w.shape)}`);
      const shape = w.shape as number[];
      const base = typeof w.dtype === 'string' ? WEIGHT_DTYPES[w.dtype] : undefined;
      if (!base) throw fail(`unsupported dtype ${JSON.stringify(w.dtype)} (supported: float32, int32, bool)`, { reason: 'dtype' });
      let stored = base;
      let quantization: TfjsWeight['quantization'];
      if (w.quantization !== undefined) {
        const q = w.quantization;
        if (!isObj(q) || typeof q.dtype !== 'string' || !QUANT_DTYPES[q.dtype]) throw fail(`quantization must have dtype uint8, uint16 or float16, found ${JSON.stringify(q)}`, { reason: 'quantization' });
        stored = QUANT_DTYPES[q.dtype];
        if (q.dtype !== 'float16') {
          if (typeof q.scale !== 'number' || typeof q.min !== 'number' || !Number.isFinite(q.scale) || !Number.isFinite(q.min)) {
            throw fail(`${q.dtype} quantization needs finite numbers scale and min`, { reason: 'quantization' });
          }
        }
        quantization = { dtype: q.dtype as 'uint8', scale: q.scale as number | undefined, min: q.min as number | undefined };
      }
      let n = stored.size;
      for (const d of shape) n *= d;
      if (!Number.isSafeInteger(n) || !Number.isSafeInteger(total + n)) throw fail(`shape ${JSON.stringify(shape)} is too large (more than 2^53 bytes)`, { reason: 'overflow' });
      weights.push({ name, shape: shape.slice(), manifestDtype: w.dtype as string, dtype: stored.dtype, byteLength: n, quantization });
      total += n;
    }
    if (total > 0 && paths.length === 0) throw tfError(file, `weightsManifest[${gi}] has weights but no shard paths`, undefined, { reason: 'manifest' });
    groups.push({ paths, weights, byteLength: total });
  }
  return { groups, json: Array.isArray(json) ? { weightsManifest: json } : json };
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface TfjsTensor extends StreamedTensor {
  group: number;
  manifestDtype: string;
  quantization?: TensorQuantization;
}

export interface TfjsReader extends CheckpointReader {
  readonly manifest: TfjsManifest;
  tensors(): AsyncIterable<TfjsTensor>;
  /** Each shard's length, known once reading has passed it. */
  shardSizes(): Map<string, number>;
}

export interface TfjsOpenOptions extends OpenOptions {
  /** Open a shard by its path relative to model.json. */
  openShard(path: string): Promise<ByteReader>;
}

/** Open a TF.js model from its model.json (read whole, bounded) and a shard callback. */
export async function openTfjs(modelJson: ByteReader | Uint8Array, opts: TfjsOpenOptions): Promise<TfjsReader> {
  if (!opts || typeof opts.openShard !== 'function') {
    throw new ArgumentError('tfjs: open needs opts.openShard(path) to read the weight shards next to model.json');
  }
  const file = opts.fileName ?? (modelJson instanceof Uint8Array ? 'model.json' : modelJson.name);
  let bytes: Uint8Array;
  if (modelJson instanceof Uint8Array) {
    bytes = modelJson.slice();
  } else {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (;;) {
      const p = await modelJson.readUpTo(1 << 20);
      if (!p.length) break;
      n += p.length;
      if (n > MAX_MODEL_JSON_BYTES) throw tfError(file, `model.json is over the ${MAX_MODEL_JSON_BYTES}-byte limit`, undefined, { reason: 'too-large' });
      parts.push(p.slice());
    }
    await modelJson.close();
    bytes = concat(parts, n);
  }
  const manifest = parseTfjsModelJson(bytes, file);
  const sizes = new Map<string, number>();
  let iterated = false;
  let done = false;
  let openShard: ByteReader | undefined;

  async function* tensors(): AsyncGenerator<TfjsTensor> {
    if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once`);
    iterated = true;
    for (const [gi, g] of manifest.groups.entries()) {
      let shardIndex = -1;
      let shardPos = 0;
      let groupPos = 0;
      const nextShard = async (): Promise<boolean> => {
        if (openShard) { sizes.set(g.paths[shardIndex], shardPos); await openShard.close(); openShard = undefined; }
        if (++shardIndex >= g.paths.length) return false;
        openShard = await opts.openShard(g.paths[shardIndex]);
        shardPos = 0;
        return true;
      };
      /** Up to n bytes of the group's byte stream (crossing into the next shard when one ends). */
      const readUpTo = async (n: number, tensor: string): Promise<Uint8Array> => {
        for (;;) {
          if (!openShard && !(await nextShard())) {
            throw new TruncatedError(file, n, 0, groupPos);
          }
          const p = await openShard!.readUpTo(n);
          if (p.length) { shardPos += p.length; groupPos += p.length; return p; }
          if (shardPos === 0 && shardIndex >= 0) throw tfError(file, `shard ${JSON.stringify(g.paths[shardIndex])} is empty`, tensor, { reason: 'empty-shard' });
          if (!(await nextShard())) {
            const t = new TruncatedError(g.paths[g.paths.length - 1], n, 0, shardPos);
            t.data.tensor = tensor;
            t.message = `${file}: tensor '${tensor}': the weight shards of group ${gi + 1} end ${g.byteLength - groupPos} bytes early (shards hold ${groupPos} bytes, the manifest describes ${g.byteLength}); re-copy the shard files`;
            throw t;
          }
        }
      };
      for (const w of g.weights) {
        const quantization = tfjsAffine(w.quantization, w.shape);
        const streamed = streamingTensor(file, {
          name: w.name,
          dtype: w.dtype,
          shape: w.shape.slice(),
          byteLength: w.byteLength,
          group: gi,
          manifestDtype: w.manifestDtype,
          quantization,
        }, {
          // readUpTo throws its own error when the shards end early, so it never returns nothing
          readUpTo: (max) => readUpTo(max, w.name),
          truncated: (done) => new TruncatedError(file, w.byteLength - done, 0, groupPos),
        });
        yield streamed.tensor;
        streamed.retire();
        let consumed = streamed.consumed();
        while (consumed < w.byteLength) consumed += (await readUpTo(Math.min(1 << 20, w.byteLength - consumed), w.name)).length;
      }
      // The group's shards must end exactly where its last weight does, and every listed shard must be used.
      if (openShard) {
        const extra = await openShard.readUpTo(1);
        if (extra.length) throw tfError(file, `shard ${JSON.stringify(g.paths[shardIndex])} has bytes after the group's last weight (the manifest describes ${g.byteLength} bytes)`, undefined, { reason: 'trailing' });
      }
      if (g.byteLength > 0 || g.paths.length) {
        while (await nextShard()) {
          const extra = await openShard!.readUpTo(1);
          if (extra.length) throw tfError(file, `shard ${JSON.stringify(g.paths[shardIndex])} holds bytes beyond the group's weights (the manifest describes ${g.byteLength} bytes)`, undefined, { reason: 'trailing' });
        }
      }
    }
    done = true;
  }

  return {
    format: TFJS_FORMAT_ID,
    manifest,
    metadata: Object.fromEntries(Object.entries(manifest.json).filter(([k]) => k !== 'weightsManifest' && k !== 'modelTopology')),
    tensors,
    shardSizes: () => new Map(sizes),
    skeleton() {
      if (!done) throw new ArgumentError(`${file}: skeleton() is valid once tensors() has been iterated to the end`);
      const meta = new TextEncoder().encode(JSON.stringify({ skeleton: SKELETON_MAGIC, modelJson: baseName(file), shards: manifest.groups.flatMap((g) => g.paths.map((p) => [p, sizes.get(p) ?? 0])) }));
      const head = new Uint8Array(4);
      new DataView(head.buffer).setUint32(0, meta.length, true);
      return concat([head, meta, bytes]);
    },
    async close() { await openShard?.close(); openShard = undefined; },
  };
}

function baseName(p: string): string {
  const b = p.slice(Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\')) + 1);
  return b || 'model.json';
}

// ---------------------------------------------------------------------------------------------
// Rebuilding and writing

function decodeSkeleton(skeleton: Uint8Array): { modelJson: string; shards: Map<string, number>; bytes: Uint8Array; manifest: TfjsManifest } {
  const file = '<skeleton>';
  if (skeleton.length < 4) throw tfError(file, 'skeleton is too short');
  const n = new DataView(skeleton.buffer, skeleton.byteOffset, 4).getUint32(0, true);
  if (4 + n > skeleton.length) throw tfError(file, 'skeleton header runs past its end');
  let meta: { skeleton?: string; modelJson?: string; shards?: [string, number][] };
  try { meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(skeleton.subarray(4, 4 + n))); } catch { throw tfError(file, 'skeleton header is not valid JSON'); }
  if (meta.skeleton !== SKELETON_MAGIC || !Array.isArray(meta.shards) || typeof meta.modelJson !== 'string') throw tfError(file, 'not a TF.js skeleton');
  const bytes = skeleton.subarray(4 + n);
  const manifest = parseTfjsModelJson(bytes, meta.modelJson);
  const shards = new Map(meta.shards);
  for (const g of manifest.groups) {
    let sum = 0;
    for (const p of g.paths) {
      const s = shards.get(p);
      if (!Number.isSafeInteger(s) || s! < 0) throw tfError(file, `skeleton has no size for shard ${JSON.stringify(p)}`);
      sum += s!;
    }
    if (sum !== g.byteLength) throw tfError(file, `skeleton shard sizes add up to ${sum}, the group's weights to ${g.byteLength}`);
  }
  return { modelJson: checkShardPath(meta.modelJson, file), shards, bytes, manifest };
}

/**
 * Write model.json and every shard: `sinkFor(path)` gives a sink for each file (paths relative to
 * model.json; model.json under its original name); each sink is closed when its file is complete.
 */
export async function rebuildTfjs(skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sinkFor: (path: string) => Promise<ByteSink>): Promise<void> {
  const { modelJson, shards, bytes, manifest } = decodeSkeleton(skeleton);
  const m = await sinkFor(modelJson);
  await m.write(bytes);
  await m.close();
  for (const g of manifest.groups) {
    let si = -1;
    let left = 0;
    let sink: ByteSink | undefined;
    const write = async (b: Uint8Array) => {
      let at = 0;
      while (at < b.length) {
        while (left === 0) {
          if (sink) await sink.close();
          si++;
          sink = await sinkFor(g.paths[si]);
          left = shards.get(g.paths[si])!;
        }
        const take = Math.min(left, b.length - at);
        await sink!.write(b.subarray(at, at + take));
        at += take;
        left -= take;
      }
    };
    for (const w of g.weights) {
      let got = 0;
      for await (const p of tensor(w.name)) {
        got += p.length;
        if (got > w.byteLength) throw tfError('<skeleton>', `got more than the ${w.byteLength} bytes the manifest needs`, w.name);
        await write(p);
      }
      if (got !== w.byteLength) throw tfError('<skeleton>', `got ${got} bytes but the manifest needs ${w.byteLength}`, w.name);
    }
    if (sink) await sink.close();
    // Shards after the last byte written are empty files.
    for (si++; si < g.paths.length; si++) await (await sinkFor(g.paths[si])).close();
  }
}

export interface TfjsWriteTensor extends TensorToWrite {
  /** data holds uint8/uint16 values (dtype U8/U16) or float16 (F16) quantizing a float32 weight. */
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

const MANIFEST_DTYPE: Partial<Record<DType, string>> = { F32: 'float32', I32: 'int32', BOOL: 'bool' };

/**
 * Write a TF.js weights model: model.json (with `modelTopology` as given, default null) and shards
 * `group1-shard{i}of{n}.bin` of at most `shardBytes`, through `sinkFor`. Deterministic.
 */
export async function writeTfjs(
  tensors: AsyncIterable<TfjsWriteTensor> | Iterable<TfjsWriteTensor>,
  sinkFor: (path: string) => Promise<ByteSink>,
  opts: { shardBytes?: number; modelTopology?: unknown; format?: string; modelJsonName?: string } = {},
): Promise<void> {
  const all: TfjsWriteTensor[] = [];
  for await (const t of tensors) all.push(t);
  const weights = all.map((t) => {
    const size = (d: DType) => (d === 'U16' || d === 'F16' ? 2 : d === 'BOOL' || d === 'U8' ? 1 : 4);
    let entry: Record<string, unknown>;
    if (t.quantization) {
      const want: DType = t.quantization.dtype === 'uint8' ? 'U8' : t.quantization.dtype === 'uint16' ? 'U16' : 'F16';
      if (t.dtype !== want) throw new ArgumentError(`tensor '${t.name}': ${t.quantization.dtype} quantization needs ${want} data, got ${t.dtype}`, { tensor: t.name });
      const q: Record<string, unknown> = { dtype: t.quantization.dtype };
      if (t.quantization.dtype !== 'float16') { q.scale = t.quantization.scale; q.min = t.quantization.min; }
      entry = { name: t.name, shape: t.shape, dtype: 'float32', quantization: q };
    } else {
      const d = MANIFEST_DTYPE[t.dtype];
      if (!d) throw new ArgumentError(`tensor '${t.name}': TF.js weights are float32, int32 or bool (or quantized); got ${t.dtype}`, { tensor: t.name });
      entry = { name: t.name, shape: t.shape, dtype: d };
    }
    const n = t.shape.reduce((a, b) => a * b, 1) * size(t.dtype);
    if (!(t.data instanceof Uint8Array) || t.data.length !== n) throw new ArgumentError(`tensor '${t.name}': data has ${t.data?.length} bytes but needs ${n}`, { tensor: t.name });
    return entry;
  });
  const total = all.reduce((a, t) => a + t.data.length, 0);
  const shardBytes = opts.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!Number.isSafeInteger(shardBytes) || shardBytes <= 0) throw new ArgumentError('shardBytes must be a positive integer');
  const n = Math.max(1, Math.ceil(total / shardBytes));
  const paths = Array.from({ length: n }, (_, i) => `group1-shard${i + 1}of${n}.bin`);
  const model = { format: opts.format ?? 'graph-model', generatedBy: 'git-theta', convertedBy: null, modelTopology: opts.modelTopology ?? null, weightsManifest: [{ paths, weights }] };
  const json = new TextEncoder().encode(JSON.stringify(model));
  const shards: [string, number][] = paths.map((p, i) => [p, Math.min(shardBytes, total - i * shardBytes)]);
  const meta = new TextEncoder().encode(JSON.stringify({ skeleton: SKELETON_MAGIC, modelJson: opts.modelJsonName ?? 'model.json', shards }));
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, meta.length, true);
  const byName = new Map(all.map((t) => [t.name, t]));
  await rebuildTfjs(concat([head, meta, json]), (name) => (async function* () { yield byName.get(name)!.data; })(), sinkFor);
}

function sniff(head: Uint8Array, fileName?: string): boolean {
  let i = 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x09)) i++;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(head);
  // a bare weights manifest: [{"paths": [...], "weights": [...]}, ...]
  if (head[i] === 0x5b) return /^\s*\[\s*\{\s*"(paths|weights)"/.test(text) || (!!fileName && /weights_manifest\.json$/i.test(fileName));
  if (head[i] !== 0x7b) return false;
  if (text.includes('"weightsManifest"') || text.includes('"modelTopology"')) return true;
  return !!fileName && /(^|[/\\])model\.json$/i.test(fileName);
}

export interface TfjsFormat extends CheckpointFormat {
  open(reader: ByteReader, opts?: OpenOptions): Promise<TfjsReader>;
  /** Multi-file writing: model.json and shards through a sink factory. */
  writeFiles(tensors: AsyncIterable<TensorToWrite> | Iterable<TensorToWrite>, sinkFor: (path: string) => Promise<ByteSink>): Promise<void>;
  rebuildFiles: typeof rebuildTfjs;
}

export const tfjs: TfjsFormat = {
  id: TFJS_FORMAT_ID,
  extensions: ['.json'],
  sniff,
  open: (reader, opts) => openTfjs(reader, opts as TfjsOpenOptions),
  /** Writes model.json only (the single sink); use `rebuildTfjs`/`rebuildFiles` for the shards too. */
  async rebuild(skeleton, _tensor, sink) {
    const { bytes } = decodeSkeleton(skeleton);
    await sink.write(bytes);
  },
  async write() {
    throw new ArgumentError('a TF.js model is several files (model.json and weight shards); use writeTfjs(tensors, sinkFor) or convertCheckpoint with opts.sinkFor');
  },
  writeFiles: (tensors, sinkFor) => writeTfjs(tensors, sinkFor),
  rebuildFiles: rebuildTfjs,
};

