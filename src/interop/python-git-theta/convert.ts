/**
 * A Python-written metadata document as our ModelMetadata, held in memory (never committed as
 * such): each parameter becomes a tensor whose chain is its `last_commit` history as
 * `python-git-theta` steps, oldest first (FORMAT.md §7: follow `last_commit` only, reading the
 * metadata blob of the same path at that commit, until a dense entry). Every tensor is rebuilt
 * once to record its content hash and LSH signature, so diffs, merges and the next `git add`
 * compare Python-written tensors with ours exactly (an unchanged tensor stays unchanged across
 * the switch from one tool to the other).
 *
 * Runtime-neutral: git history comes in through `history.readAt` (git cat-file in the CLI,
 * isomorphic-git in the library), objects through the store.
 */
import { dtypeSize, elementCount } from '../../core/dtypes.ts';
import type { Kernels } from '../../core/kernels.ts';
import { memorySink, readerFromBytes } from '../../core/io.ts';
import { getFormat } from '../../formats/registry.ts';
import { writePytorch } from '../../formats/pytorch.ts';
import type { ModelMetadata, ObjectRef, TensorEntry, UpdateStep } from '../../theta/metadata.ts';
import { contentHash } from '../../theta/rebuild.ts';
import { lshOf, DEFAULT_LSH_SIZE } from '../../theta/clean.ts';
import type { UpdateStore } from '../../updates/types.ts';
import { PyThetaFormatError, PyThetaHistoryError } from './errors.ts';
import { looksLikePyMetadata, parsePyMetadata, type PyEntry } from './metadata.ts';
import { applyPyStep, pyStep, PY_KINDS, type PyKind } from './update-type.ts';

/** Longest `last_commit` chain followed; longer ones are refused rather than walked for ever. */
export const MAX_PY_CHAIN = 10000;

export interface PyHistory {
  /**
   * The blob of `path` at `commit`: its bytes; null when the path is absent there; throw (or
   * return 'missing-commit') when the commit itself is not in the repository (a shallow clone).
   */
  readAt(commit: string, path: string): Promise<Uint8Array | null | 'missing-commit'>;
}

export interface ConvertOptions {
  /** The tracked file's path relative to the repository root (chains read this path at earlier commits). */
  path: string;
  history: PyHistory;
  store: UpdateStore & { prefetch?(refs: ObjectRef[]): Promise<unknown> };
  kernels: Kernels;
  /**
   * Make the file layout (skeleton object, stored in `store`) so the result can be checked out or
   * committed as a merge result. Without it, `skeleton` is a placeholder: enough for diff and log.
   */
  skeleton?: boolean;
  where?: string;
}

/** The checkpoint format a Python-written path is read as: its plug-in is not recorded, and PyTorch is the tool's default. */
export function pyCheckpointFormat(path: string): string {
  return /\.safetensors$/i.test(path) ? 'safetensors' : 'pytorch';
}

const PLACEHOLDER: ObjectRef = { oid: '0'.repeat(64), size: 0 };

/** Rebuilt hashes per chain (the objects it names), shared by every conversion in this process. */
const rebuilt = new Map<string, { hash: string; lsh: number[] }>();

/** The chain of one parameter, oldest (dense) first. */
async function chainOf(entry: PyEntry, o: ConvertOptions, blobs: Map<string, Promise<PyEntry[] | null>>): Promise<UpdateStep[]> {
  const steps: UpdateStep[] = [];
  const seen = new Set<string>();
  let cur = entry;
  for (;;) {
    if (!PY_KINDS.includes(cur.updateType as PyKind)) {
      throw new PyThetaFormatError(`${o.path}: parameter '${entry.name}' has Python Git-Theta update type '${cur.updateType}', which git-theta cannot read (dense, sparse, low-rank, ia3 are supported)`, { tensor: entry.name });
    }
    steps.push(pyStep(cur.updateType as PyKind, { oid: cur.oid, size: cur.size }));
    if (cur.updateType === 'dense') break;
    const last = cur.lastCommit;
    if (!last) throw new PyThetaHistoryError(`${o.path}: parameter '${entry.name}' is a ${cur.updateType} update with no last_commit, so its previous value is unknown`, { tensor: entry.name });
    if (seen.has(last) || steps.length > MAX_PY_CHAIN) {
      throw new PyThetaHistoryError(`${o.path}: parameter '${entry.name}': its last_commit chain comes back to ${last.slice(0, 12)} (a cycle); the metadata is corrupt`, { tensor: entry.name, commit: last });
    }
    seen.add(last);
    let at = blobs.get(last);
    if (!at) {
      at = (async () => {
        const b = await o.history.readAt(last, o.path);
        if (b === 'missing-commit') {
          throw new PyThetaHistoryError(`${o.path}: parameter '${entry.name}' builds on commit ${last.slice(0, 12)}, which this repository does not have (a shallow clone?); run 'git fetch --unshallow'`, { tensor: entry.name, commit: last });
        }
        if (!b) return null;
        if (!looksLikePyMetadata(b)) throw new PyThetaHistoryError(`${o.path} at ${last.slice(0, 12)} is not Python Git-Theta metadata, but parameter '${entry.name}' builds on it`, { tensor: entry.name, commit: last });
        return parsePyMetadata(b, `${last.slice(0, 12)}:${o.path}`);
      })();
      blobs.set(last, at);
    }
    const prevEntries = await at;
    if (!prevEntries) throw new PyThetaHistoryError(`${o.path}: parameter '${entry.name}' builds on commit ${last.slice(0, 12)}, where the file does not exist`, { tensor: entry.name, commit: last });
    const prev = prevEntries.find((e) => e.name === entry.name);
    if (!prev) throw new PyThetaHistoryError(`${o.path}: parameter '${entry.name}' builds on commit ${last.slice(0, 12)}, whose metadata has no such parameter`, { tensor: entry.name, commit: last });
    if (prev.dtype !== entry.dtype || prev.shape.join() !== entry.shape.join()) {
      throw new PyThetaFormatError(`${o.path}: parameter '${entry.name}' changes dtype or shape within its update chain (at ${last.slice(0, 12)})`, { tensor: entry.name });
    }
    cur = prev;
  }
  return steps.reverse();
}

export async function convertPyMetadata(bytes: Uint8Array, o: ConvertOptions): Promise<ModelMetadata> {
  const where = o.where ?? o.path;
  const entries = parsePyMetadata(bytes, where);
  const blobs = new Map<string, Promise<PyEntry[] | null>>();
  const chains = new Map<string, UpdateStep[]>();
  for (const e of entries) chains.set(e.name, await chainOf(e, o, blobs));
  const refs = [...chains.values()].flat().map((s) => s.object as ObjectRef);
  if (refs.length && o.store.prefetch) await o.store.prefetch(refs);

  const tensors: Record<string, TensorEntry> = {};
  const values = new Map<string, Uint8Array>();
  for (const e of entries) {
    const chain = chains.get(e.name)!;
    const key = `${e.dtype}:${e.shape.join(',')}:${chain.map((s) => `${s.kind}:${(s.object as ObjectRef).oid}`).join('/')}`;
    let known = rebuilt.get(key);
    if (!known || o.skeleton) {
      let value: Uint8Array | null = null;
      const ctx = { name: e.name, dtype: e.dtype, shape: e.shape, store: o.store, kernels: o.kernels };
      for (const step of chain) value = await applyPyStep(step, value, ctx);
      if (value!.length !== elementCount(e.shape) * dtypeSize(e.dtype)) {
        throw new PyThetaFormatError(`${where}: parameter '${e.name}' rebuilds to ${value!.length} bytes, not a ${e.dtype} ${JSON.stringify(e.shape)}`, { tensor: e.name });
      }
      values.set(e.name, value!);
      known ??= { hash: contentHash(o.kernels, value!), lsh: lshOf(o.kernels, e.dtype, value!, DEFAULT_LSH_SIZE) };
      rebuilt.set(key, known);
    }
    tensors[e.name] = {
      dtype: e.dtype, shape: e.shape, bytes: elementCount(e.shape) * dtypeSize(e.dtype), hash: known.hash, lsh: known.lsh,
      update: e.updateType, chain,
    };
  }
  const format = pyCheckpointFormat(o.path);
  if (!o.skeleton) return { format, skeleton: PLACEHOLDER, size: 0, tensors };
  // the layout the Python tool's checkout writes: torch.save of a dict in metadata order
  const sink = memorySink();
  const list = entries.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: values.get(e.name)! }));
  if (format === 'pytorch') await writePytorch(list, sink, { archiveName: 'archive', container: 'dict' });
  else await getFormat(format).write(list, sink);
  const file = sink.bytes();
  const reader = await getFormat(format).open(readerFromBytes(file, o.path), { fileName: o.path });
  try {
    for await (const t of reader.tensors()) await t.bytes();
    const skeleton = await o.store.put(reader.skeleton());
    return { format, skeleton, size: file.length, tensors };
  } finally {
    await reader.close();
  }
}
