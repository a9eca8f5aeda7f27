/**
 * The Node side of a theta repository: where objects live, how the previous version of a file
 * is found, git config settings, and the clean/smudge operations the filter process runs.
 */
import { FormatError, ThetaError } from '../../core/errors.ts';
import { getKernels, type Kernels } from '../../core/kernels.ts';
import { collect, peekChunks, readerFromChunks, type ByteSink } from '../../core/io.ts';
import { getFormat, listFormats, sniffFormat, SNIFF_BYTES } from '../../formats/index.ts';
import type { CheckpointFormat, FileAccess, TensorQuantization } from '../../formats/types.ts';
import type { LocalObjectStore } from '../../store/local.ts';
import { cleanCheckpoint, DEFAULT_CHAIN_CAP, DEFAULT_LSH_SIZE, hashOf, lshOf, parseTolerance, type Tolerance } from '../../theta/clean.ts';
import { diffModels, metadataTensors, type DiffTensor, type ModelDiff } from '../../theta/diff.ts';
import { rebuildTensor } from '../../theta/rebuild.ts';
import { diffQuant } from '../../theta/quantized.ts';
import { looksLikeMetadata, parseMetadata, referencedObjects, serializeMetadata, type ModelMetadata, type TensorEntry } from '../../theta/metadata.ts';
import { smudgeCheckpoint } from '../../theta/smudge.ts';
import { contentCheckedReads } from '../../theta/local-reads.ts';
import type { SideTensor } from '../../updates/types.ts';
import { git, gitCommonDir, gitDir, readBlob } from '../git/git.ts';
import { batchAttribute, batchReadBlob } from '../git/git-batch.ts';
import { join, resolve } from 'node:path';

import { mergeThreeWay, sameLayout, type TensorConflict, type ThreeWayOptions, type ThreeWayResult } from '../../merges/three-way.ts';
import '../../merges/index.ts';
import { openCheckpointFile } from '../files/open-checkpoint.ts';
import { worktreeFiles } from '../files/file-access.ts';
import { TFJS_FORMAT_ID } from '../../formats/tfjs.ts';
import { TFJS_SHARD_FORMAT_ID } from '../../formats/tfjs-shard.ts';
import { sniffOrShard } from '../files/tfjs-locate.ts';
import { noteKeptDeflate } from './clean-notes.ts';
import { openLocalStore } from '../files/store-fs.ts';
import { withRemoteObjects } from '../lfs/remote-objects.ts';
import { whileFetching, type RemoteStoreExtras } from '../../lfs/remote-store.ts';
import { selectNamed, type TensorSelection } from '../../repo/tensor-selection.ts';
import '../../updates/index.ts';
import { inputDigest } from '../../theta/exact.ts';
import { segmentedInput } from '../../theta/segmented-check.ts';
import { parseInlineMax } from '../../theta/inline-objects.ts';
import { cleanWritten, mergedLikeSide, rebuiltByName } from './merge-skeleton.ts';
import { fromPythonBlob, isFromPython, looksLikePyMetadata, notePythonSwitch, samePythonVersion, specPath } from './python-theta.ts';

export interface ThetaSettings {
  chainCap: number;
  tolerance: Tolerance | null;
  /** theta.verifyClean (default true): clean rebuilds the file from its recipe and compares before git records it. */
  verifyClean: boolean;
  /** theta.inlineMax (default INLINE_MAX_BYTES): tensor objects up to this size ride in the metadata; 0 = never. */
  inlineMax: number;
}

export async function readSettings(cwd?: string): Promise<ThetaSettings> {
  // both keys in one git call (names come back lower-cased; the last value of a key wins, as with --get)
  const r = await git(['config', '-z', '--get-regexp', '^theta\\.(maxchainlength|tolerance|verifyclean|inlinemax)$'], { cwd, allowFail: true });
  const values = new Map<string, string>();
  for (const entry of r.stdout.toString().split('\0').filter(Boolean)) {
    const nl = entry.indexOf('\n');
    values.set(nl < 0 ? entry : entry.slice(0, nl), nl < 0 ? '' : entry.slice(nl + 1));
  }
  const cap = values.get('theta.maxchainlength') ?? null;
  const chainCap = cap === null ? DEFAULT_CHAIN_CAP : Number(cap);
  if (!Number.isInteger(chainCap) || chainCap < 1) {
    throw new ThetaError('E_CONFIG', `theta.maxChainLength must be a whole number >= 1 (got '${cap}')`, {});
  }
  const verify = (values.get('theta.verifyclean') ?? 'true').toLowerCase();
  if (!['true', 'false', 'yes', 'no', 'on', 'off', '1', '0'].includes(verify)) {
    throw new ThetaError('E_CONFIG', `theta.verifyClean must be true or false (got '${verify}')`, { key: 'theta.verifyClean' });
  }
  return {
    chainCap, tolerance: parseTolerance(values.get('theta.tolerance') ?? null), verifyClean: ['true', 'yes', 'on', '1'].includes(verify),
    inlineMax: parseInlineMax(values.get('theta.inlinemax') ?? null),
  };
}

export class ThetaRepo {
  private constructor(
    readonly cwd: string,
    /** Root of the working tree (paths given to git are relative to it). */
    readonly root: string,
    readonly store: LocalObjectStore,
    readonly kernels: Kernels,
    readonly settings: ThetaSettings,
  ) {}

  /** The work tree, for formats laid out by a neighbouring file (TF.js shards and their model.json). */
  get files(): FileAccess {
    return (this.#files ??= worktreeFiles(this.root));
  }
  #files: FileAccess | undefined;

  static async open(cwd: string = process.cwd()): Promise<ThetaRepo> {
    // one git call for the directories (a bare repository has no top level: then one at a time)
    // (the settings' git call and the kernels' set-up run alongside it)
    const [r, kernels, settings] = await Promise.all([
      git(['rev-parse', '--git-common-dir', '--absolute-git-dir', '--show-toplevel'], { cwd, allowFail: true }), getKernels(), readSettings(cwd),
    ]);
    const lines = r.code === 0 ? r.stdout.toString().split('\n') : [];
    const common = lines.length >= 3 ? resolve(cwd, lines[0]) : await gitCommonDir(cwd);
    const root = lines.length >= 3 ? lines[2] : (await git(['rev-parse', '--show-toplevel'], { cwd, allowFail: true })).stdout.toString().trim() || cwd;
    const repo = new ThetaRepo(cwd, root, withRemoteObjects(openLocalStore(common), cwd), kernels, settings);
    if (lines.length >= 3) repo.#gitDir = lines[1];
    // objects missing locally (after a clone) are downloaded from the remote's LFS server, lazily
    return repo;
  }

  #gitDir: string | undefined;
  /** This worktree's git directory (absolute). */
  async gitDir(): Promise<string> {
    return (this.#gitDir ??= await gitDir(this.cwd));
  }

  #attrs = new Map<string, { filter: string; format: string }>();
  /**
   * The `filter` and `theta-format` attributes of each path, from one `git check-attr` for the
   * paths not asked about before in this command (remembered, also for `formatAttribute`).
   */
  async attributes(paths: string[]): Promise<Map<string, { filter: string; format: string }>> {
    const missing = [...new Set(paths.filter((p) => !this.#attrs.has(p)))];
    if (missing.length) {
      const r = await git(['check-attr', '-z', 'filter', 'theta-format', '--', ...missing], { cwd: this.root });
      const f = r.stdout.toString().split('\0');
      for (let i = 0; i + 2 < f.length; i += 3) {
        const a = this.#attrs.get(f[i]) ?? { filter: 'unspecified', format: 'unspecified' };
        if (f[i + 1] === 'filter') a.filter = f[i + 2];
        else a.format = f[i + 2];
        this.#attrs.set(f[i], a);
      }
    }
    return new Map(paths.map((p) => [p, this.#attrs.get(p) ?? { filter: 'unspecified', format: 'unspecified' }]));
  }

  /** The paths among these that git-theta tracks (filter=theta). */
  async trackedAmong(paths: string[]): Promise<string[]> {
    const a = await this.attributes(paths);
    return paths.filter((p) => a.get(p)!.filter === 'theta');
  }

  /** The metadata git has for a path at a revision (`:path` = the index), or null. */
  async metadataAt(spec: string, o: { batch?: boolean } = {}): Promise<ModelMetadata | null> {
    // `batch`: through the one long-running `git cat-file --batch`, which loads the index once; for
    // commands that do not change the index while they read (diff, log) and for clean's previous
    // version (an older one only costs compactness, never exactness)
    const blob = o.batch ? await batchReadBlob(this.root, spec) : await readBlob(spec, this.cwd);
    // written by the Python Git-Theta: rebuilt from its objects and history (src/interop/python-git-theta)
    if (blob && looksLikePyMetadata(blob)) return fromPythonBlob(this, specPath(spec), blob, { where: spec });
    if (!blob || !looksLikeMetadata(blob)) return null;
    return parseMetadata(blob, spec);
  }

  /** The version a new clean of `path` is stored against: the index's, else HEAD's. */
  async previousMetadata(path: string): Promise<ModelMetadata | null> {
    return (await this.metadataAt(`:${path}`, { batch: true })) ?? (await this.metadataAt(`HEAD:${path}`, { batch: true }));
  }

  /** A `theta-format=<id>` attribute in .gitattributes overrides format detection for a path. */
  async formatAttribute(path: string): Promise<CheckpointFormat | null> {
    const value = this.#attrs.get(path)?.format ?? (await batchAttribute(this.root, 'theta-format', path));
    return value && !['unspecified', 'unset', 'set'].includes(value) ? getFormat(value) : null;
  }

  /** Clean: checkpoint bytes from git in, metadata text out. Metadata given to clean passes through. */
  async clean(
    path: string, content: AsyncIterable<Uint8Array>,
    o: {
      updateType?: string; updateData?: string; format?: string;
      /**
       * The same bytes again (the file `git theta add` reads), whole or at an offset: a clean of a
       * format with verbatim tensors then hashes unchanged tensors without copying them (reading
       * the changed ones again) and hashes the input whole only if the recipe check falls back to
       * the whole file.
       */
      again?: { chunks(): AsyncIterable<Uint8Array>; read(offset: number, length: number): Promise<Uint8Array> };
      /** Return before this clean's object writes finish (clean.ts `leaveWritesPending`): the caller must `flushWrites()` before the metadata reaches git. */
      leaveWritesPending?: boolean;
    },
  ): Promise<Uint8Array> {
    const { head, stream } = await peekChunks(content, SNIFF_BYTES);
    if (looksLikeMetadata(head)) {
      // already clean (a re-add of a metadata blob, e.g. during a conflicted merge): keep as is
      const text = await collect(stream);
      parseMetadata(text, path);
      return text;
    }
    const format = o.format ? getFormat(o.format) : (await this.formatAttribute(path)) ?? (await sniffOrShard(head, path, this.files));
    let size = 0;
    // the whole input's hash, for the whole-file recipe check: taken as it streams past, or (when
    // the segments should do and the bytes can be read again) only if that check has to run
    const later = o.again && format.verbatimTensors ? o.again : null;
    const digest = later ? null : inputDigest(this.kernels);
    const counted = (async function* () {
      for await (const c of stream) {
        size += c.length;
        digest?.update(c);
        yield c;
      }
    })();
    const kernels = this.kernels;
    const digestLater = async () => {
      const d = inputDigest(kernels);
      for await (const c of later!.chunks()) d.update(c);
      return d.digest();
    };
    if (format.id === TFJS_FORMAT_ID) {
      throw new ThetaError('E_TRACK_SHARDS', `${path} is a TF.js model.json: git-theta tracks the weight shards it lists, and model.json stays a normal file; take the pattern that matches it out of .gitattributes, then run 'git theta track ${path}'`, { file: path });
    }
    const bytes = readerFromChunks(counted, path);
    // only formats that promise verbatim tensors are checked by segments (segmented-check.ts): for
    // the others, hashing and holding their structure bytes would be work no check uses
    const segments = format.verbatimTensors ? segmentedInput(bytes, this.kernels) : undefined;
    const reader = await format.open(segments?.reader ?? bytes, { fileName: path, files: this.files });
    // only a TF.js shard says why it was not split; other formats' metadata (a safetensors
    // `__metadata__` key `note`) is the user's, not a message for them
    const note = format.id === TFJS_SHARD_FORMAT_ID ? reader.metadata?.note : undefined;
    if (typeof note === 'string') process.stderr.write(`git-theta: ${path}: stored without splitting by weight: ${note}\n`);
    let previous: ModelMetadata | null = null;
    try {
      previous = await this.previousMetadata(path);
      const meta = await cleanCheckpoint({
        reader,
        previous,
        store: this.store,
        kernels: this.kernels,
        updateType: o.updateType,
        side: o.updateData ? await loadSideData(o.updateData) : undefined,
        chainCap: this.settings.chainCap,
        inlineMax: this.settings.inlineMax,
        tolerance: this.settings.tolerance,
        fileSize: 0,
        fileName: path,
        format,
        verify: this.settings.verifyClean,
        leaveWritesPending: o.leaveWritesPending,
        segments,
        readAt: later ? (offset, length) => later.read(offset, length) : undefined,
        input: async () => {
          // every byte must be accounted for, or checkout could not give the file back exactly
          if ((await bytes.readUpTo(1)).length) {
            throw new FormatError(`unexpected bytes after the end of the ${format.id} data; the file cannot be stored exactly (is it corrupt?)`, { file: path });
          }
          return { size, digest: digest ? digest.digest() : digestLater };
        },
      });
      noteKeptDeflate(path, reader.metadata);
      meta.size = size;
      if (isFromPython(previous)) {
        // the very file the Python tool checks out keeps its Python metadata (a clean work tree for both tools)
        const same = await samePythonVersion(this, path, previous!, meta);
        if (same) return same;
        await notePythonSwitch(this, path);
      }
      return new TextEncoder().encode(serializeMetadata(meta));
    } finally {
      await reader.close();
    }
  }

  /** Wait for the object writes cleans left pending; throws the first that failed. */
  async flushWrites(): Promise<void> {
    await this.store.flush();
  }

  /** Smudge: metadata from git in, the exact checkpoint out. Anything else passes through. */
  async smudge(path: string, blob: Uint8Array, sink: ByteSink): Promise<void> {
    // git writes what smudge gives it into the work tree: sizes remembered for cleans go stale
    this.#files = undefined;
    if (looksLikePyMetadata(blob)) {
      const metadata = await fromPythonBlob(this, path, blob, { skeleton: true });
      await smudgeCheckpoint({ metadata, format: getFormat(metadata.format), store: this.store, kernels: this.kernels, sink });
      return;
    }
    if (!looksLikeMetadata(blob)) {
      await sink.write(blob);
      return;
    }
    const metadata = parseMetadata(blob, path);
    // every object this file needs, fetched in batched requests (no-op when all are local) while
    // the file is rebuilt: each read waits only for its own object
    await whileFetching((this.store as Partial<RemoteStoreExtras>).prefetch?.(referencedObjects(metadata)), async () => {
      // local objects were verified when they came in: checked by content hash here, not SHA-256 again
      const store = contentCheckedReads(this.store, metadata, this.kernels);
      await smudgeCheckpoint({ metadata, format: getFormat(metadata.format), store, kernels: this.kernels, sink });
    });
  }
}

/** Side-loaded update data: every tensor named `<tensor>/<key>` in a checkpoint. */
export async function loadSideData(path: string): Promise<Map<string, Map<string, SideTensor>>> {
  const reader = await openCheckpointFile(path);
  const out = new Map<string, Map<string, SideTensor>>();
  try {
    for await (const t of reader.tensors()) {
      const slash = t.name.lastIndexOf('/');
      if (slash <= 0) continue;
      const target = t.name.slice(0, slash);
      const key = t.name.slice(slash + 1);
      if (!out.has(target)) out.set(target, new Map());
      out.get(target)!.set(key, { dtype: t.dtype, shape: t.shape, data: await t.bytes() });
    }
  } finally {
    await reader.close();
  }
  if (!out.size) throw new ThetaError('E_ARGUMENT', `${path}: no side data found (expected tensors named '<tensor>/R', '<tensor>/C' or '<tensor>/ia3')`, { file: path });
  return out;
}

export interface PathDiff extends ModelDiff {
  path: string;
  format: string;
  from: string;
  to: string;
}

/** Tensors of the working-tree file, read one at a time, as the diff wants them. */
export async function* worktreeTensors(repo: ThetaRepo, path: string, approx: boolean): AsyncGenerator<DiffTensor> {
  const format = (await repo.formatAttribute(path))?.id;
  const reader = await openCheckpointFile(join(repo.root, path), { format, fileName: path, files: repo.files });
  try {
    for await (const t of reader.tensors()) {
      const bytes = await t.bytes();
      yield {
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        hash: hashOf(repo.kernels, bytes),
        ...diffQuant(t, bytes, approx ? (d, b) => lshOf(repo.kernels, d, b, DEFAULT_LSH_SIZE) : null),
        load: async () => bytes,
      };
    }
  } finally {
    await reader.close();
  }
}

export interface DiffSpec {
  /** A revision, ':' for the index, or null for the working tree. */
  from: string;
  to: string | null;
  approx?: boolean;
  /** Only these tensors (`diff --tensor`); null/undefined = all. */
  tensors?: TensorSelection;
}

export async function diffPath(repo: ThetaRepo, path: string, spec: DiffSpec): Promise<PathDiff> {
  const load = (name: string, e: TensorEntry) => rebuildTensor(name, e, repo.store, repo.kernels);
  const old = await repo.metadataAt(`${spec.from === ':' ? '' : spec.from}:${path}`, { batch: true });
  let format = old?.format ?? 'unknown';
  let newer: AsyncIterable<DiffTensor> | Iterable<DiffTensor>;
  if (spec.to === null) {
    newer = worktreeTensors(repo, path, !!spec.approx);
  } else {
    const m = await repo.metadataAt(`${spec.to === ':' ? '' : spec.to}:${path}`, { batch: true });
    if (m) format = m.format;
    newer = metadataTensors(m, load);
  }
  const sel = spec.tensors ?? null;
  const older = metadataTensors(old, load).filter((t) => !sel || sel(t.name));
  const d = await diffModels(older, sel ? selectNamed(newer, sel) : newer, { kernels: repo.kernels, approx: spec.approx });
  return { path, format, from: spec.from === ':' ? 'index' : spec.from, to: spec.to === null ? 'worktree' : spec.to === ':' ? 'index' : spec.to, ...d };
}

export interface RepoMergeResult {
  metadata: ModelMetadata | null;
  conflicts: TensorConflict[];
  actions: ThreeWayResult['actions'];
}

/** The quantized tensors a side's skeleton describes (GGUF), so the merge can requantize them. */
async function quantizationsOf(repo: ThetaRepo, side: ModelMetadata | null): Promise<Record<string, TensorQuantization> | undefined> {
  const format = side && listFormats().find((f) => f.id === side.format);
  if (!format?.quantizations) return undefined;
  return format.quantizations(await repo.store.get(side!.skeleton.oid));
}

/**
 * Merge three versions of a tracked file's metadata. With no conflict left, the result is complete
 * metadata: the file layout of ours (or theirs) when the merged tensors keep it, else a new layout
 * written by the format (tensors sorted by name) and cleaned against the merged entries, so no
 * tensor is stored twice.
 */
export async function mergeMetadata(
  repo: ThetaRepo, path: string, base: ModelMetadata | null, ours: ModelMetadata | null, theirs: ModelMetadata | null,
  choose: ThreeWayOptions['choose'],
): Promise<RepoMergeResult> {
  const quantization = await quantizationsOf(repo, ours ?? theirs);
  const r = await mergeThreeWay({ base, ours, theirs, store: repo.store, kernels: repo.kernels, choose, quantization, inlineMax: repo.settings.inlineMax });
  if (r.conflicts.length) return { metadata: null, conflicts: r.conflicts, actions: r.actions };
  for (const side of [ours, theirs]) {
    if (side && sameLayout(r.tensors, side.tensors)) {
      // a skeleton holding bytes computed from values (zip CRC-32s) is made again for the merged values
      return { metadata: await mergedLikeSide(repo, path, side, r.tensors), conflicts: [], actions: r.actions };
    }
  }
  const like = ours ?? theirs ?? base;
  if (!like) return { metadata: null, conflicts: [], actions: r.actions };
  // a new layout written by the format (tensors sorted by name), cleaned against the merged entries
  const synthetic: ModelMetadata = { format: like.format, skeleton: like.skeleton, ...(like.skeleton_delta ? { skeleton_delta: like.skeleton_delta } : {}), size: 0, tensors: r.tensors };
  const format = getFormat(like.format);
  const metadata = await cleanWritten(repo, path, synthetic, (sink) => format.write(rebuiltByName(r.tensors, repo.store, repo.kernels), sink));
  return { metadata, conflicts: [], actions: r.actions };
}
