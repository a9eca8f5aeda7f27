/**
 * saveModel: commit a model from memory (the reference's save_to_git), with isomorphic-git and
 * no git binary. It does what `git theta add` + `git commit` do:
 *
 *   1. writes the checkpoint into the working tree (the format's writer, or the bytes given);
 *   2. cleans it against the metadata committed at HEAD: unchanged tensors reuse their entries
 *      and objects, changed ones are stored with the update type (default `auto`);
 *   3. writes the metadata blob, points the index entry for the path at it, binds the path to
 *      `filter=theta` in .gitattributes if nothing binds it yet (staging that file too);
 *   4. commits.
 *
 * The index entry carries no file stats (isomorphic-git's updateIndex with an oid), so the real
 * git re-runs the theta clean filter the next time it looks at the file; that gives the same
 * metadata, and `git status` is clean. isomorphic-git's own statusMatrix has no filters and will
 * report such files as modified.
 */
import { inputDigest } from '../theta/exact.ts';
import { segmentedInput } from '../theta/segmented-check.ts';
import git from 'isomorphic-git';
import { ArgumentError } from '../core/errors.ts';
import { memorySink, readerFromBytes } from '../core/io.ts';
import type { DType } from '../core/dtypes.ts';
import { getFormat, sniffFormat, SNIFF_BYTES } from '../formats/index.ts';
import type { TensorToWrite } from '../formats/types.ts';
import { cleanCheckpoint, DEFAULT_CHAIN_CAP, parseTolerance, type Tolerance } from '../theta/clean.ts';
import { serializeMetadata, type ModelMetadata } from '../theta/metadata.ts';
import { parseInlineMax } from '../theta/inline-objects.ts';
import type { SideTensor } from '../updates/types.ts';
import { bindToTheta } from './attributes.ts';
import { gitArgs, repoContext, required, type RepoContext, type RepoOptions } from './context.ts';
import { TrackedByOtherFilterError } from './errors.ts';
import { joinPath, mkdirp } from '../store/promise-fs.ts';
import { readModelBlob } from './model-blob.ts';
import '../updates/index.ts';

export interface GitIdentity {
  name: string;
  email: string;
  /** Seconds since the epoch (default: now). */
  timestamp?: number;
  /** Minutes, as isomorphic-git takes it (default: the local zone). */
  timezoneOffset?: number;
}

export type TensorsInput =
  | Iterable<TensorToWrite>
  | AsyncIterable<TensorToWrite>
  | Record<string, { dtype: DType; shape: number[]; data: Uint8Array }>;

export interface SaveModelOptions extends RepoOptions {
  /** Path of the checkpoint in the working tree, relative to `dir`. */
  filepath: string;
  /** The tensors to save (written with the format's writer). Give this or `checkpoint`. */
  tensors?: TensorsInput;
  /** Or: the exact bytes of a checkpoint file, committed byte for byte. */
  checkpoint?: Uint8Array;
  /** Format id for `tensors` (default 'safetensors'). */
  format?: string;
  /** Format-level metadata for the writer (safetensors `__metadata__`). */
  formatMetadata?: Record<string, string>;
  message: string;
  /** Default: user.name / user.email from the repository's git config (as isomorphic-git does). */
  author?: GitIdentity;
  committer?: GitIdentity;
  /** 'auto' (default: smallest exact of dense and sparse), 'dense', 'sparse', 'low-rank', 'ia3'. */
  updateType?: string;
  /** Side-loaded update data: tensor name -> ('R' | 'C' | 'ia3' -> tensor). */
  side?: Map<string, Map<string, SideTensor>>;
  /** Bind the path to filter=theta in .gitattributes when nothing binds it (default true). */
  track?: boolean;
  /** Default: theta.maxChainLength from git config, else 8. */
  chainCap?: number;
  /** Default: theta.tolerance from git config, else exact. */
  tolerance?: Tolerance | null;
  /** Tensor objects of at most this many bytes ride in the metadata (0: none). Default: theta.inlineMax, else 1024. */
  inlineMax?: number;
}

export interface SaveModelResult {
  /** The new commit. */
  commit: string;
  /** The metadata blob committed for the path. */
  blob: string;
  metadata: ModelMetadata;
  /** Tensors whose entries (and objects) were reused from HEAD's version. */
  reused: string[];
  /** Tensors stored anew in this commit. */
  stored: string[];
  /** Whether .gitattributes was changed to bind the path to git-theta. */
  tracked: boolean;
}

function isRecord(x: unknown): x is Record<string, { dtype: DType; shape: number[]; data: Uint8Array }> {
  return !!x && typeof x === 'object' && !(Symbol.iterator in x) && !(Symbol.asyncIterator in x);
}

function tensorList(t: TensorsInput): Iterable<TensorToWrite> | AsyncIterable<TensorToWrite> {
  if (!isRecord(t)) return t;
  return Object.entries(t).map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape, data: v.data }));
}

async function settings(c: RepoContext, o: SaveModelOptions): Promise<{ chainCap: number; tolerance: Tolerance | null; inlineMax: number }> {
  const get = async (path: string) => {
    const v = await git.getConfig({ ...gitArgs(c), path });
    return v === undefined || v === null ? null : String(v);
  };
  let chainCap = o.chainCap;
  if (chainCap === undefined) {
    const cap = await get('theta.maxChainLength');
    chainCap = cap === null ? DEFAULT_CHAIN_CAP : Number(cap);
  }
  if (!Number.isInteger(chainCap) || chainCap < 1) throw new ArgumentError(`saveModel: theta.maxChainLength must be a whole number >= 1 (got ${chainCap})`, { chainCap });
  const tolerance = o.tolerance !== undefined ? o.tolerance : parseTolerance(await get('theta.tolerance'));
  const inlineMax = o.inlineMax ?? parseInlineMax(await get('theta.inlineMax'));
  return { chainCap, tolerance, inlineMax };
}

async function headCommit(c: RepoContext): Promise<string | null> {
  try {
    return await git.resolveRef({ ...gitArgs(c), ref: 'HEAD' });
  } catch {
    return null; // no commit yet
  }
}

export async function saveModel(o: SaveModelOptions): Promise<SaveModelResult> {
  required('saveModel', o as unknown as Record<string, unknown>, ['fs', 'dir', 'filepath', 'message']);
  if (o.tensors === undefined && o.checkpoint === undefined) throw new ArgumentError("saveModel: give 'tensors' or 'checkpoint'", { caller: 'saveModel' });
  if (o.tensors !== undefined && o.checkpoint !== undefined) throw new ArgumentError("saveModel: give 'tensors' or 'checkpoint', not both", { caller: 'saveModel' });
  if (o.checkpoint !== undefined && !(o.checkpoint instanceof Uint8Array)) throw new ArgumentError("saveModel: 'checkpoint' must be a Uint8Array", { caller: 'saveModel' });
  const filepath = o.filepath.replace(/^\/+/, '');
  if (!filepath || filepath.split('/').some((p) => p === '' || p === '.' || p === '..' || p === '.git')) {
    throw new ArgumentError(`saveModel: '${o.filepath}' is not a path inside the working tree`, { filepath: o.filepath });
  }
  const c = await repoContext('saveModel', o);
  const args = gitArgs(c);

  // 1. the checkpoint bytes, into the working tree
  let bytes: Uint8Array;
  if (o.checkpoint) {
    bytes = o.checkpoint;
  } else {
    const sink = memorySink();
    await getFormat(o.format ?? 'safetensors').write(tensorList(o.tensors!), sink, { metadata: o.formatMetadata });
    bytes = sink.bytes();
  }
  const { chainCap, tolerance, inlineMax } = await settings(c, o);
  let tracked = false;
  if (o.track !== false) {
    const r = await bindToTheta(c.pfs, c.dir, filepath);
    if (typeof r === 'object') throw new TrackedByOtherFilterError(filepath, r.other);
    tracked = r === 'added';
  }
  const full = joinPath(c.dir, filepath);
  await mkdirp(c.pfs, full.slice(0, full.lastIndexOf('/')) || '/');
  await c.pfs.writeFile(full, bytes);

  // 2. clean against HEAD's version
  const head = await headCommit(c);
  const prev = head ? await readModelBlob(c, 'HEAD', filepath, head) : null;
  const previous = prev?.kind === 'theta' ? prev.metadata : null;
  const format = o.checkpoint ? sniffFormat(bytes.subarray(0, SNIFF_BYTES), filepath) : getFormat(o.format ?? 'safetensors');
  // only formats that promise verbatim tensors are checked by segments (segmented-check.ts): for
  // the others, hashing and holding their structure bytes would be work no check uses
  const input = readerFromBytes(bytes, filepath);
  const segments = format.verbatimTensors ? segmentedInput(input, c.kernels) : undefined;
  const reader = await format.open(segments?.reader ?? input, { fileName: filepath });
  const reused: string[] = [];
  const stored: string[] = [];
  let metadata: ModelMetadata;
  try {
    metadata = await cleanCheckpoint({
      reader, previous, store: c.store, kernels: c.kernels, updateType: o.updateType, side: o.side, chainCap, tolerance, inlineMax,
      fileSize: bytes.length,
      fileName: filepath,
      format,
      segments,
      readAt: async (offset, length) => bytes.slice(offset, offset + length),
      // the bytes are in memory: hashed whole only if the recipe check falls back to the whole file
      input: async () => ({
        size: bytes.length,
        digest: async () => {
          const d = inputDigest(c.kernels);
          d.update(bytes);
          return d.digest();
        },
      }),
      onTensor: (name, _e, wasReused) => (wasReused ? reused : stored).push(name),
    });
  } finally {
    await reader.close();
  }

  // 3. metadata blob, index entry, .gitattributes
  const blob = await git.writeBlob({ ...args, blob: new TextEncoder().encode(serializeMetadata(metadata)) });
  await git.updateIndex({ ...args, filepath, oid: blob, add: true, mode: 0o100644 });
  if (tracked) await git.add({ ...args, filepath: '.gitattributes' });

  // 4. commit
  const commit = await git.commit({ ...args, message: o.message, author: o.author, committer: o.committer });
  return { commit, blob, metadata, reused, stored, tracked };
}
