/**
 * The CLI on repositories git-lfs stores models in (the Hugging Face layout): a checkpoint at any
 * revision is read whatever git holds for it (git-theta metadata, a git-lfs pointer whose object
 * is the whole file, a sharded safetensors index whose shards are pointers, or a plain blob),
 * through the library's one LFS code path (src/repo/lfs-pointer-model.ts). Objects come from the
 * local git-lfs store or, when missing, the remote's LFS server (ThetaRepo's store).
 */
import { open, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ThetaError } from '../../core/errors.ts';
import { readerFromBytes } from '../../core/io.ts';
import { sniffFormat, SNIFF_BYTES } from '../../formats/registry.ts';
import type { CheckpointReader } from '../../formats/types.ts';
import { isLfsCheckpointPath, lfsRereader, metadataReader, openLfsBlob, openLfsObject, openLfsObjectTracked, prefetchObjects, readerDiffTensors, rereader, tensorHashes, type PartialOpeners, type Rereader } from '../../repo/lfs-pointer-model.ts';
import { openLfsPartial, selectNamed, selectTensors, type TensorSelection } from '../../repo/lfs-partial.ts';
import { MAX_LFS_POINTER_BYTES, parseLfsPointer, type LfsPointer } from '../../repo/model-blob.ts';
import { diffModels, metadataTensors, type DiffTensor } from '../../theta/diff.ts';
import { looksLikeMetadata, parseMetadata, referencedObjects, type ModelMetadata, type ObjectRef, type TensorEntry } from '../../theta/metadata.ts';
import { rebuildTensor } from '../../theta/rebuild.ts';
import { git } from '../git/git.ts';
import { batchReadBlob } from '../git/git-batch.ts';
import { step, type LogEntry } from './log-steps.ts';
import { diffPath, worktreeTensors, type DiffSpec, type PathDiff, type ThetaRepo } from './theta-repo.ts';
import { looksLikePyMetadata } from './python-theta.ts';

/** `rev:path` as git reads it; rev ':' (or '') is the index. */
export function blobSpec(rev: string, path: string): string {
  return `${rev === ':' ? '' : rev}:${path}`;
}

function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** What git holds for a path at a revision. */
export type StoredVersion =
  | { kind: 'theta'; metadata: ModelMetadata }
  | { kind: 'lfs'; pointer: LfsPointer }
  | { kind: 'blob'; blob: Uint8Array }
  | null;

export async function storedVersion(repo: ThetaRepo, rev: string, path: string): Promise<StoredVersion> {
  const spec = blobSpec(rev, path);
  const b = await batchReadBlob(repo.root, spec);
  if (!b) return null;
  if (looksLikeMetadata(b)) return { kind: 'theta', metadata: parseMetadata(b, spec) };
  if (looksLikePyMetadata(u8(b))) {
    // the Python Git-Theta's metadata, read as ours (its update chains followed through history)
    const m = await repo.metadataAt(spec, { batch: true });
    if (m) return { kind: 'theta', metadata: m };
  }
  const pointer = parseLfsPointer(b);
  return pointer ? { kind: 'lfs', pointer } : { kind: 'blob', blob: u8(b) };
}

/** The paths among these a diff reads: tracked by git-theta, or by git-lfs in a format we read. */
export async function modelPathsAmong(repo: ThetaRepo, paths: string[]): Promise<string[]> {
  const a = await repo.attributes(paths);
  return paths.filter((p) => a.get(p)!.filter === 'theta' || (a.get(p)!.filter === 'lfs' && isLfsCheckpointPath(p)));
}

/**
 * The checkpoint `path` holds at `rev` (':' = the index), as a reader: git-theta metadata (tensors
 * rebuilt from their objects), a git-lfs object, a sharded index's shards at the same revision, or
 * a checkpoint committed as a plain blob. null when the path is not there.
 */
export async function openRevisionCheckpoint(repo: ThetaRepo, rev: string, path: string, partial?: PartialOpeners): Promise<CheckpointReader | null> {
  const spec = blobSpec(rev, path);
  const b = await batchReadBlob(repo.root, spec);
  if (!b) return null;
  const blob = u8(b);
  if (looksLikeMetadata(blob)) return metadataReader(parseMetadata(blob, spec), repo.store, repo.kernels);
  if (looksLikePyMetadata(blob)) {
    const m = await repo.metadataAt(spec, { batch: true });
    if (m) return metadataReader(m, repo.store, repo.kernels);
  }
  const sibling = async (p: string) => {
    const x = await batchReadBlob(repo.root, blobSpec(rev, p));
    return x && u8(x);
  };
  const lfs = await openLfsBlob(repo.store, blob, path, sibling, partial);
  if (lfs) return lfs;
  const format = sniffFormat(blob.subarray(0, SNIFF_BYTES), path);
  return format.open(readerFromBytes(blob, spec), { fileName: path });
}

/** A work-tree file that is a git-lfs pointer (git-lfs did not smudge it: object not fetched, GIT_LFS_SKIP_SMUDGE). */
export async function worktreePointer(file: string): Promise<LfsPointer | null> {
  const st = await stat(file).catch(() => null);
  if (!st?.isFile() || st.size > MAX_LFS_POINTER_BYTES) return null;
  const h = await open(file, 'r');
  try {
    const buf = Buffer.alloc(st.size);
    await h.read(buf, 0, st.size, 0);
    return parseLfsPointer(buf);
  } finally {
    await h.close();
  }
}

export class ApproxNeedsMetadataError extends ThetaError {
  constructor(path: string, rev: string) {
    super('E_APPROX_NEEDS_METADATA', `--approx cannot answer for ${path} at ${rev}: git-lfs stores it as one file, with none of the per-tensor signatures --approx reads; run the diff without --approx (it reads the files), or store it per tensor with 'git theta migrate'`, { path, rev });
    this.name = 'ApproxNeedsMetadataError';
  }
}

type Side = { format: string | null; tensors: AsyncIterable<DiffTensor> | Iterable<DiffTensor> };

/**
 * One diff side, whatever git holds. `rev` null = the work tree. `needAll` = the other side is a
 * git-lfs file, so every tensor of a git-theta side may be compared (its objects fetched in one batch).
 */
async function sideOf(repo: ThetaRepo, rev: string | null, path: string, v: StoredVersion, approx: boolean, needAll: boolean, keep?: Rereader[], select: TensorSelection = null): Promise<Side> {
  const load = (name: string, e: TensorEntry) => rebuildTensor(name, e, repo.store, repo.kernels);
  if (rev === null) {
    const pointer = await worktreePointer(join(repo.root, path));
    if (!pointer) return { format: null, tensors: selectNamed(worktreeTensors(repo, path, approx), select) };
    v = { kind: 'lfs', pointer };
  }
  if (!v) return { format: null, tensors: [] };
  if (v.kind === 'theta') {
    const meta = select ? { ...v.metadata, tensors: Object.fromEntries(Object.entries(v.metadata.tensors).filter(([n]) => select(n))) } : v.metadata;
    if (needAll && !approx) await prefetchObjects(repo.store, referencedObjects(meta).filter((r) => !select || r.oid !== meta.skeleton.oid));
    return { format: meta.format, tensors: metadataTensors(meta, load) };
  }
  if (approx) throw new ApproxNeedsMetadataError(path, rev ?? 'the work tree');
  if (select && v.kind === 'lfs') {
    // only some tensors: the object is read by Range requests when it is not local (header + those
    // tensors), and the selected tensors' bytes are kept for the comparison (no second read)
    const reader = selectTensors(await openLfsPartial(repo.store, v.pointer, path), select);
    return { format: reader.format, tensors: readerDiffTensors(repo.kernels, reader, approx) };
  }
  const blob = v.kind === 'blob' ? v.blob : null;
  const open = async () => selectTensors(await (v!.kind === 'lfs'
    ? openLfsObject(repo.store, v!.pointer, path)
    : sniffFormat(blob!.subarray(0, SNIFF_BYTES), path).open(readerFromBytes(blob!, path), { fileName: path })), select);
  // the older side is kept as hashes; the bytes of modified tensors are read again when compared
  if (keep && v.kind === 'lfs') {
    const { reader, bytes } = await openLfsObjectTracked(repo.store, v.pointer, path);
    const again = lfsRereader(repo.store, repo.kernels, v.pointer, path, `${rev}:${path}`);
    keep.push(again);
    return { format: reader.format, tensors: readerDiffTensors(repo.kernels, reader, approx, again, bytes) };
  }
  const reader = await open();
  const again = keep ? rereader(open, `${rev}:${path}`) : undefined;
  if (again) keep?.push(again);
  return { format: reader.format, tensors: readerDiffTensors(repo.kernels, reader, approx, again) };
}

/**
 * `git theta diff` of one path. When neither side is a git-lfs pointer this is diffPath (git-theta
 * metadata on both sides, or the work tree); otherwise each side is read as what it is, so git-lfs
 * versions diff with each other and with git-theta versions (after `git theta migrate`).
 */
export async function diffModelPath(repo: ThetaRepo, path: string, spec: DiffSpec): Promise<PathDiff> {
  const a = await storedVersion(repo, spec.from, path);
  const b = spec.to === null ? null : await storedVersion(repo, spec.to, path);
  const wtPointer = spec.to === null ? await worktreePointer(join(repo.root, path)) : null;
  const lfsSides = [a, b].filter((v) => v?.kind === 'lfs').length + (wtPointer ? 1 : 0);
  if (!lfsSides) return diffPath(repo, path, spec);
  const select = spec.tensors ?? null;
  // every tensor compared: both git-lfs objects are read whole anyway, so they are downloaded whole
  // (verified, kept locally) in one batch; with a selection, parts are read by Range requests instead
  if (!select) await prefetchObjects(repo.store, [a, b].flatMap((v) => (v?.kind === 'lfs' ? [v.pointer] : [])).concat(wtPointer ? [wtPointer] : []));
  const approx = !!spec.approx;
  const rereaders: Rereader[] = [];
  try {
    const older = await sideOf(repo, spec.from === ':' ? ':' : spec.from, path, a, approx, true, rereaders, select);
    const olderList: DiffTensor[] = [];
    for await (const t of older.tensors) olderList.push(t);
    const newer = await sideOf(repo, spec.to, path, b, approx, true, undefined, select);
    const d = await diffModels(olderList, newer.tensors, { kernels: repo.kernels, approx });
    const label = (r: string | null) => (r === null ? 'worktree' : r === ':' ? 'index' : r);
    return { path, format: newer.format ?? older.format ?? 'unknown', from: label(spec.from), to: label(spec.to), ...d };
  } finally {
    for (const r of rereaders) await r.close();
  }
}

// ---------------------------------------------------------------- log

type Version = { hash: string; dtype: string; shape: number[]; update?: string };

interface LogVersion {
  tensors: Map<string, Version>;
  objects: ObjectRef[];
  size: number;
  storage: 'theta' | 'lfs' | null;
}

/**
 * `git theta log` of one path, whatever each commit stored: git-theta metadata (counted from the
 * metadata) or a git-lfs pointer (its object read once and hashed tensor by tensor, so versions on
 * both sides of `git theta migrate` compare exactly). Each entry says how that version is stored.
 */
export async function logModelPath(repo: ThetaRepo, path: string, rev = 'HEAD'): Promise<(LogEntry & { storage: 'theta' | 'lfs' | null })[]> {
  const r = await git(['log', '--format=%H%x09%P%x09%s', rev, '--', path], { cwd: repo.root });
  const byOid = new Map<string, Map<string, Version>>();
  const versionAt = async (commit: string): Promise<LogVersion> => {
    const v = await storedVersion(repo, commit, path);
    if (v?.kind === 'theta') {
      return { tensors: new Map(Object.entries(v.metadata.tensors)), objects: referencedObjects(v.metadata), size: v.metadata.size, storage: 'theta' };
    }
    if (v?.kind === 'lfs') {
      let tensors = byOid.get(v.pointer.oid);
      if (!tensors) byOid.set(v.pointer.oid, (tensors = await tensorHashes(repo.kernels, await openLfsObject(repo.store, v.pointer, path))));
      return { tensors, objects: [v.pointer], size: v.pointer.size, storage: 'lfs' };
    }
    return { tensors: new Map(), objects: [], size: 0, storage: null };
  };
  const lines = r.stdout.toString().split('\n').filter(Boolean).map((l) => l.split('\t'));
  // every git-lfs object the log reads, in one batch when they must come from the server
  const pointers: LfsPointer[] = [];
  for (const [commit, parents] of lines) {
    for (const c of [commit, parents.split(' ')[0]]) {
      const v = c ? await storedVersion(repo, c, path) : null;
      if (v?.kind === 'lfs') pointers.push(v.pointer);
    }
  }
  await prefetchObjects(repo.store, pointers);
  const out: (LogEntry & { storage: 'theta' | 'lfs' | null })[] = [];
  for (const [commit, parents, subject] of lines) {
    const parent = parents.split(' ')[0];
    const now = await versionAt(commit);
    const before = parent ? await versionAt(parent) : { tensors: new Map(), objects: [], size: 0, storage: null };
    out.push({ commit, subject, ...step(before.tensors, now.tensors, before.objects, now.objects, now.size), storage: now.storage });
  }
  return out;
}

// ---------------------------------------------------------------- inspect

/**
 * What `inspect` reads: a file (a work-tree file git-lfs left as a pointer is read from its
 * object), or `<rev>:<path>` / `:<path>` (the index) as git names a file at a revision, read
 * whatever git holds for it there.
 */
export async function openInspectTarget(file: string, format?: string, onNote?: (message: string) => void): Promise<CheckpointReader> {
  const { openCheckpointFile } = await import('../files/open-checkpoint.ts');
  const { ThetaRepo } = await import('./theta-repo.ts');
  if (await stat(file).catch(() => null)) {
    const pointer = format ? null : await worktreePointer(file);
    if (!pointer) return openCheckpointFile(file, { format, onNote });
    const repo = await ThetaRepo.open(dirname(resolve(file)));
    return openLfsObject(repo.store, pointer, file);
  }
  const m = /^([^:]*):(.+)$/.exec(file);
  if (!m) return openCheckpointFile(file, { format }); // its own "no such file" error
  const repo = await ThetaRepo.open();
  const rev = m[1] || ':';
  // git's rule: paths after the colon are from the repository root, unless they start with ./ or ../
  const path = /^\.\.?\//.test(m[2]) ? relative(repo.root, resolve(m[2])).split(sep).join('/') : m[2];
  const reader = await openRevisionCheckpoint(repo, rev, path);
  if (!reader) {
    throw new ThetaError('E_NOT_FOUND', `${path} is not in ${rev === ':' ? 'the index' : `revision ${rev}`}; give the path from the repository root (or ./ for the current directory) and a revision git knows`, { file: path, rev });
  }
  return reader;
}
