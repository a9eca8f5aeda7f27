/**
 * The metadata JSON the Python Git-Theta commits for a tracked file (FORMAT.md §2): nested objects
 * whose leaves (objects with `lfs_metadata`) describe one parameter each. Recognised and parsed
 * here; no git or object access.
 */
import type { DType } from '../../core/dtypes.ts';
import { PyThetaFormatError } from './errors.ts';

export interface PyEntry {
  /** The parameter's key tuple. */
  key: string[];
  /** The tuple joined with '/' (a PyTorch state dict has one key, so this is the state dict key). */
  name: string;
  dtype: DType;
  shape: number[];
  oid: string;
  size: number;
  updateType: string;
  lastCommit: string | null;
  /** The LSH signature the Python tool recorded (int64 values, as parsed). */
  hash: number[];
}

const NUMPY_DTYPES: Record<string, DType> = {
  float16: 'F16', float32: 'F32', float64: 'F64', bfloat16: 'BF16', bool: 'BOOL',
  int8: 'I8', int16: 'I16', int32: 'I32', int64: 'I64', uint8: 'U8', uint16: 'U16', uint32: 'U32', uint64: 'U64',
};

const HEAD_BYTES = 4096;

/**
 * Whether these bytes (the start of a blob is enough) are the Python tool's metadata: a JSON object
 * indented by 4 whose first parameter entry starts with "tensor_metadata" or has "lfs_metadata".
 */
export function looksLikePyMetadata(bytes: Uint8Array): boolean {
  if (bytes.length < 2 || bytes[0] !== 0x7b) return false;
  const s = new TextDecoder().decode(bytes.subarray(0, HEAD_BYTES));
  if (!/^\{\n {4}"/.test(s)) return false;
  return /\n\s+"(tensor_metadata|lfs_metadata)": \{/.test(s);
}

function parseShape(s: unknown, where: string): number[] {
  if (typeof s !== 'string') throw new PyThetaFormatError(`${where}: shape ${JSON.stringify(s)} is not a string`, { where });
  const m = /^\(\s*((?:\d+\s*,\s*)*\d*)\s*,?\s*\)$/.exec(s);
  if (!m) throw new PyThetaFormatError(`${where}: shape ${JSON.stringify(s)} is not a Python tuple of sizes`, { where });
  const dims = m[1].split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!dims.every((d) => Number.isSafeInteger(d))) throw new PyThetaFormatError(`${where}: shape ${s} is too large`, { where });
  return dims;
}

/** Parse the metadata document into its parameter entries, in document order. */
export function parsePyMetadata(bytes: Uint8Array | string, where = 'metadata'): PyEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new PyThetaFormatError(`${where}: not valid JSON (${(e as Error).message})`, { where });
  }
  const out: PyEntry[] = [];
  const walk = (node: unknown, key: string[]) => {
    if (!node || typeof node !== 'object' || Array.isArray(node)) throw new PyThetaFormatError(`${where}: '${key.join('/')}' is neither a group nor a parameter`, { where });
    const o = node as Record<string, any>;
    if (!('lfs_metadata' in o)) {
      for (const [k, v] of Object.entries(o)) walk(v, [...key, k]);
      return;
    }
    const name = key.join('/');
    const at = `${where}: parameter '${name}'`;
    const tm = o.tensor_metadata;
    const lfs = o.lfs_metadata;
    const th = o.theta_metadata;
    if (!tm || !lfs || !th || Array.isArray(lfs)) {
      throw new PyThetaFormatError(`${at}: entry lacks tensor_metadata, lfs_metadata or theta_metadata (an averaging merge of Python Git-Theta 0.2 writes entries it cannot read either)`, { where, tensor: name });
    }
    const dtype = NUMPY_DTYPES[tm.dtype];
    if (!dtype) throw new PyThetaFormatError(`${at}: dtype ${JSON.stringify(tm.dtype)} is not supported`, { where, tensor: name });
    if (typeof lfs.oid !== 'string' || !/^[0-9a-f]{64}$/.test(lfs.oid)) throw new PyThetaFormatError(`${at}: bad LFS oid`, { where, tensor: name });
    const size = Number(lfs.size);
    if (!/^\d+$/.test(String(lfs.size)) || !Number.isSafeInteger(size)) throw new PyThetaFormatError(`${at}: bad LFS size ${JSON.stringify(lfs.size)}`, { where, tensor: name });
    if (typeof th.update_type !== 'string') throw new PyThetaFormatError(`${at}: bad update_type`, { where, tensor: name });
    const last = th.last_commit ?? null;
    if (last !== null && (typeof last !== 'string' || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(last))) {
      throw new PyThetaFormatError(`${at}: bad last_commit ${JSON.stringify(last)}`, { where, tensor: name });
    }
    const hash = Array.isArray(tm.hash) ? tm.hash.filter((x: unknown) => typeof x === 'number') : [];
    out.push({ key, name, dtype, shape: parseShape(tm.shape, at), oid: lfs.oid, size, updateType: th.update_type, lastCommit: last, hash });
  };
  walk(doc, []);
  return out;
}

/** The LFS objects a metadata document names directly (not those of earlier commits in its chains). */
export function pyObjectRefs(bytes: Uint8Array | string): { oid: string; size: number }[] {
  return parsePyMetadata(bytes).map((e) => ({ oid: e.oid, size: e.size }));
}
