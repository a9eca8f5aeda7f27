/**
 * The committed metadata: what git stores in place of a tracked checkpoint. A deterministic,
 * human-readable JSON document (same model, same bytes, on every runtime):
 *
 *   {
 *    "git-theta": 1,                          format version of this document
 *    "format": "safetensors",                 checkpoint format (never guessed again on checkout)
 *    "skeleton": {"oid": "...", "size": 96},  non-tensor bytes of the file (object)
 *    "size": 26544,                           size of the checkpoint file
 *    "tensors": {                             sorted by name, one tensor per line
 *     "0.weight": {"dtype":"F32","shape":[64,32],"bytes":8192,"hash":"<128-bit hex>","lsh":[...16 numbers],
 *                  "update":"sparse","chain":[{"update":"dense","object":{"oid":"..","size":8192}},
 *                                             {"update":"sparse","indices":{..},"values":{..},"count":40}]}
 *    }
 *   }
 *
 * `chain` is the whole recipe for the tensor's bytes: a dense step followed by incremental steps
 * (sparse, low-rank, ia3, ...). An object of at most 1 KiB is carried in the step itself,
 * `{"oid":..,"size":16,"data":"<base64>"}` (inline-objects.ts; such documents have version 3). Rebuilding a tensor needs only this document and the objects it
 * names, never git history, so renames, rebases, squashes and shallow clones keep working. The
 * chain length is capped; past the cap the tensor is stored dense again.
 */
import { isDType, type DType, dtypeSize, elementCount } from '../core/dtypes.ts';
import { ThetaError } from '../core/errors.ts';
import type { QuantInfo } from '../formats/dequantize.ts';

export const METADATA_VERSION = 1;
/** The version of documents whose skeleton is stored as a delta (`skeleton_delta`). */
export const METADATA_VERSION_DELTA = 2;
/** The version of documents that carry small objects inline (inline-objects.ts); may also have a skeleton delta. */
export const METADATA_VERSION_INLINE = 3;
const SUPPORTED_VERSIONS = [METADATA_VERSION, METADATA_VERSION_DELTA, METADATA_VERSION_INLINE];
export const METADATA_KEY = 'git-theta';

export interface ObjectRef {
  oid: string;
  size: number;
  /** A small object carried here as base64 instead of in the object store (see inline-objects.ts). */
  data?: string;
}

/** One step of a tensor's recipe. `update` names the update type; the rest is that type's data. */
export interface UpdateStep {
  update: string;
  [key: string]: unknown;
}

export interface TensorEntry {
  dtype: DType;
  shape: number[];
  /**
   * For quantized tensors (GGUF Q8_0, Q4_K, ..., TF.js uint8/uint16): what the stored bytes stand
   * for, so diffs compute on the dequantized values (see formats/dequantize.ts). `dtype`/`shape`
   * stay the bytes' container (U8 [rows, bytes per row]).
   */
  quant?: QuantInfo;
  bytes: number;
  /** Fast 128-bit content hash of the tensor's bytes (change detection; not an object id). */
  hash: string;
  /** LSH signature (random projections) for approximate distances without reading objects. */
  lsh: number[];
  /** Update type of the last step (what this commit stored for the tensor). */
  update: string;
  chain: UpdateStep[];
}

/** A skeleton stored as steps after its dense base `skeleton` (see skeleton.ts). */
export interface SkeletonDelta {
  /** Content hash of the skeleton's bytes (as for tensors). */
  hash: string;
  size: number;
  /** Incremental steps (`sparse` over bytes) applied to the base, in order. */
  chain: UpdateStep[];
}

export interface ModelMetadata {
  format: string;
  /** The skeleton object, or with `skeleton_delta` the dense object its chain starts from. */
  skeleton: ObjectRef;
  skeleton_delta?: SkeletonDelta;
  size: number;
  tensors: Record<string, TensorEntry>;
}

export class MetadataError extends ThetaError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('E_METADATA', message, data);
    this.name = 'MetadataError';
  }
}

const OID_RE = /^[0-9a-f]{64}$/;

function canonical(value: unknown): string {
  // JSON with keys in the order they were inserted; callers build objects in a fixed order.
  return JSON.stringify(value);
}

/** Serialize: byte-for-byte deterministic for the same content. */
export function serializeMetadata(m: ModelMetadata): string {
  const names = Object.keys(m.tensors).sort(byCodePoint);
  const lines: string[] = [];
  lines.push('{');
  // a higher version only for documents that need it (inline objects, a skeleton delta), so a
  // git-theta without that feature refuses them instead of misreading them
  const version = hasInlineObjects(m) ? METADATA_VERSION_INLINE : m.skeleton_delta ? METADATA_VERSION_DELTA : METADATA_VERSION;
  lines.push(` "${METADATA_KEY}": ${version},`);
  lines.push(` "format": ${canonical(m.format)},`);
  lines.push(` "skeleton": ${canonical({ oid: m.skeleton.oid, size: m.skeleton.size })},`);
  if (m.skeleton_delta) lines.push(` "skeleton_delta": ${canonical({ hash: m.skeleton_delta.hash, size: m.skeleton_delta.size, chain: m.skeleton_delta.chain })},`);
  lines.push(` "size": ${m.size},`);
  if (!names.length) {
    lines.push(' "tensors": {}');
  } else {
    lines.push(' "tensors": {');
    names.forEach((n, i) => {
      const t = m.tensors[n];
      const entry = {
        dtype: t.dtype,
        shape: t.shape,
        ...(t.quant ? { quant: quantJson(t.quant) } : {}),
        bytes: t.bytes,
        hash: t.hash,
        lsh: t.lsh,
        update: t.update,
        chain: t.chain,
      };
      lines.push(`  ${canonical(n)}: ${canonical(entry)}${i < names.length - 1 ? ',' : ''}`);
    });
    lines.push(' }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** A quant description with its keys in a fixed order (deterministic metadata). */
function quantJson(q: QuantInfo): QuantInfo {
  const out: QuantInfo = { scheme: q.scheme, shape: q.shape };
  if (q.scale !== undefined) out.scale = q.scale;
  if (q.min !== undefined) out.min = q.min;
  return out;
}

export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Quick check before parsing: is this blob our metadata (and not a checkpoint or a pointer)? */
export function looksLikeMetadata(head: Uint8Array): boolean {
  const s = new TextDecoder().decode(head.subarray(0, 64));
  return s.startsWith(`{\n "${METADATA_KEY}": `);
}

export function parseMetadata(text: string | Uint8Array, where = 'metadata'): ModelMetadata {
  const s = typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text);
  let doc: any;
  try {
    doc = JSON.parse(s);
  } catch (e) {
    throw new MetadataError(`${where}: not valid git-theta metadata JSON (${(e as Error).message})`, { where });
  }
  if (!doc || typeof doc !== 'object' || doc[METADATA_KEY] === undefined) {
    throw new MetadataError(`${where}: not git-theta metadata (no "${METADATA_KEY}" key)`, { where });
  }
  if (!SUPPORTED_VERSIONS.includes(doc[METADATA_KEY])) {
    throw new MetadataError(
      `${where}: metadata version ${doc[METADATA_KEY]} is not supported by this git-theta (supports ${SUPPORTED_VERSIONS.join(', ')}); upgrade git-theta`,
      { where },
    );
  }
  if (typeof doc.format !== 'string') throw new MetadataError(`${where}: "format" missing`, { where });
  checkRef(doc.skeleton, `${where}: skeleton`);
  if (doc.skeleton_delta !== undefined) {
    const d = doc.skeleton_delta;
    const ok = d && typeof d.hash === 'string' && /^[0-9a-f]{32}$/.test(d.hash) && Number.isSafeInteger(d.size) && d.size >= 0 &&
      Array.isArray(d.chain) && d.chain.length > 0 && d.chain.every((st: any) => st && typeof st.update === 'string');
    if (!ok) throw new MetadataError(`${where}: bad skeleton_delta`, { where });
    for (const st of d.chain) for (const v of Object.values<any>(st)) if (v && typeof v === 'object' && 'oid' in v) checkRef(v, `${where}: skeleton_delta`);
  }
  if (!Number.isSafeInteger(doc.size) || doc.size < 0) throw new MetadataError(`${where}: bad "size"`, { where });
  if (!doc.tensors || typeof doc.tensors !== 'object') throw new MetadataError(`${where}: "tensors" missing`, { where });
  for (const [name, t] of Object.entries<any>(doc.tensors)) {
    const at = `${where}: tensor '${name}'`;
    if (!isDType(t?.dtype)) throw new MetadataError(`${at}: bad dtype ${JSON.stringify(t?.dtype)}`, { where, tensor: name });
    if (!Array.isArray(t.shape) || !t.shape.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new MetadataError(`${at}: bad shape`, { where, tensor: name });
    }
    if (t.bytes !== elementCount(t.shape) * dtypeSize(t.dtype)) throw new MetadataError(`${at}: byte count does not match dtype and shape`, { where, tensor: name });
    if (t.quant !== undefined) {
      const q = t.quant;
      const okShape = Array.isArray(q?.shape) && q.shape.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0);
      const okNum = (x: unknown) => x === undefined || (typeof x === 'number' && Number.isFinite(x));
      if (typeof q?.scheme !== 'string' || !okShape || !okNum(q.scale) || !okNum(q.min)) throw new MetadataError(`${at}: bad quant`, { where, tensor: name });
    }
    if (typeof t.hash !== 'string' || !/^[0-9a-f]{32}$/.test(t.hash)) throw new MetadataError(`${at}: bad hash`, { where, tensor: name });
    if (!Array.isArray(t.lsh) || !t.lsh.every((x: unknown) => typeof x === 'number')) throw new MetadataError(`${at}: bad lsh`, { where, tensor: name });
    if (!Array.isArray(t.chain) || !t.chain.length || typeof t.update !== 'string') throw new MetadataError(`${at}: bad update chain`, { where, tensor: name });
    for (const step of t.chain) {
      if (!step || typeof step.update !== 'string') throw new MetadataError(`${at}: bad update step`, { where, tensor: name });
      for (const v of Object.values<any>(step)) if (v && typeof v === 'object' && 'oid' in v) checkRef(v, at);
    }
  }
  return doc as ModelMetadata;
}

function checkRef(r: any, where: string): asserts r is ObjectRef {
  if (!r || typeof r.oid !== 'string' || !OID_RE.test(r.oid) || !Number.isSafeInteger(r.size) || r.size < 0) {
    throw new MetadataError(`${where}: bad object reference ${JSON.stringify(r)}`);
  }
  // inline bytes: base64 of exactly `size` bytes (their SHA-256 is checked when they are read)
  if (r.data !== undefined && (typeof r.data !== 'string' || r.data.length !== 4 * Math.ceil(r.size / 3) || !BASE64_RE.test(r.data))) {
    throw new MetadataError(`${where}: bad inline object ${r.oid} (its "data" is not the base64 of ${r.size} bytes)`);
  }
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** A reference whose object is carried in the metadata (inline-objects.ts), not in any store. */
export function isInline(r: ObjectRef): r is ObjectRef & { data: string } {
  return typeof r.data === 'string';
}

/** Every object reference a recipe's steps hold (their object-valued fields), in the store or inline, in order. */
export function stepRefs(steps: readonly UpdateStep[]): ObjectRef[] {
  const out: ObjectRef[] = [];
  for (const step of steps) {
    for (const v of Object.values(step)) if (v && typeof v === 'object' && typeof (v as ObjectRef).oid === 'string') out.push(v as ObjectRef);
  }
  return out;
}

function hasInlineObjects(m: ModelMetadata): boolean {
  return Object.values(m.tensors).some((t) => stepRefs(t.chain).some(isInline));
}

/**
 * The stored objects one tensor's recipe names, in chain order (a step's object-valued fields);
 * inline objects are carried by the metadata itself and left out.
 */
export function entryObjects(e: TensorEntry): ObjectRef[] {
  return stepRefs(e.chain).filter((r) => !isInline(r));
}

/**
 * Every object a version's recipes name, whether in the store or carried inline in the metadata:
 * what a version stored (git theta log's bytes stored), not what to fetch (referencedObjects).
 */
export function storedObjects(m: ModelMetadata): ObjectRef[] {
  const out = new Map<string, ObjectRef>(referencedObjects(m).map((r) => [r.oid, r]));
  for (const t of Object.values(m.tensors)) for (const r of stepRefs(t.chain)) if (isInline(r)) out.set(r.oid, r);
  return [...out.values()];
}

/** Every object a metadata document needs from the store (for gc, push, fetch): inline ones are not. */
export function referencedObjects(m: ModelMetadata): ObjectRef[] {
  const out = new Map<string, ObjectRef>();
  out.set(m.skeleton.oid, m.skeleton);
  for (const r of stepRefs(m.skeleton_delta?.chain ?? [])) out.set(r.oid, r);
  for (const t of Object.values(m.tensors)) for (const r of entryObjects(t)) out.set(r.oid, r);
  return [...out.values()];
}
