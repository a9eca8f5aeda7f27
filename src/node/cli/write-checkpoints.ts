/**
 * The direct path's writer, shared by `git theta checkout`, `switch` and `clone`: each tracked
 * checkpoint is written into the work tree straight from the object store (not streamed through
 * git's smudge pipe), dated two seconds back, and its index entry's stat data recorded so
 * `git status` trusts it without cleaning it again.
 *
 * Every blob is read first (one long-running `git cat-file --batch`), so the objects of all files
 * that are missing locally (after a clone) are downloaded in batched requests; the files are
 * written meanwhile, each read waiting only for its own object (remote-store.ts).
 */
import { dirname, join } from 'node:path';
import { mkdir, utimes } from 'node:fs/promises';
import { batchReadBlob } from '../git/git-batch.ts';
import { recordStat } from '../git/git-index.ts';
import { atomicFileSink } from '../files/fs-source.ts';
import type { ThetaRepo } from '../repo/theta-repo.ts';
import { looksLikePyMetadata } from '../repo/python-theta.ts';
import { looksLikeMetadata, parseMetadata, referencedObjects } from '../../theta/metadata.ts';
import { whileFetching, type RemoteStoreExtras } from '../../lfs/remote-store.ts';
import type { LfsObject } from '../../lfs/client.ts';
import { afterward, workProgress, type WorkProgress } from './progress.ts';
import { patchSafetensors } from './patch-checkpoint.ts';

/** A work-tree path and the blob (its metadata) it is to hold; `from`: the blob it held before (a switch). */
export interface BlobEntry {
  path: string;
  blob: string;
  from?: string;
}

/** The metadata blobs among `entries` (others are not checkpoints: git's own checkout gives them as they are). */
async function metadataBlobs(root: string, entries: BlobEntry[]): Promise<(BlobEntry & { bytes: Uint8Array })[]> {
  const out: (BlobEntry & { bytes: Uint8Array })[] = [];
  for (const e of entries) {
    const bytes = await batchReadBlob(root, e.blob);
    if (bytes && (looksLikeMetadata(bytes) || looksLikePyMetadata(bytes))) out.push({ ...e, bytes });
  }
  return out;
}

/** Every object the metadata names, downloaded in batched requests (nothing to do when all are local). */
async function prefetchAll(repo: ThetaRepo, blobs: { path: string; bytes: Uint8Array }[]): Promise<void> {
  const prefetch = (repo.store as Partial<RemoteStoreExtras>).prefetch;
  if (!prefetch) return;
  const refs = new Map<string, LfsObject>();
  // (Python Git-Theta metadata names its objects differently: its smudge fetches them itself)
  for (const b of blobs) if (looksLikeMetadata(b.bytes)) for (const r of referencedObjects(parseMetadata(b.bytes, b.path))) refs.set(r.oid, r);
  if (refs.size) await prefetch.call(repo.store, [...refs.values()]);
}

/** The whole checkpoint, rebuilt from the object store into a temporary file renamed into place. */
async function writeWhole(repo: ThetaRepo, path: string, blob: Uint8Array, file: string, progress: WorkProgress): Promise<void> {
  const sink = await atomicFileSink(file, { fsync: false }); // git does not fsync work-tree files either
  try {
    await repo.smudge(path, blob, { write: (b) => { progress.bytes(b.length); return sink.write(b); }, close: () => sink.close() });
    await sink.close();
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

/**
 * Write the checkpoints `entries` name (tracked paths only: the caller checked the attributes)
 * and record their stat data in the index. Returns the paths written; entries whose blob is not
 * metadata are left alone. `setIndex` points the index entries at the blobs first (`git theta
 * checkout <rev>`); otherwise the index already names them. `previous` (a switch: work-tree file ->
 * a second name of the file it replaced, see patch-checkpoint.ts) lets a checkpoint whose entry
 * says what it held (`from`) be patched: only its changed tensors written.
 */
export async function writeCheckpointFiles(
  repo: ThetaRepo,
  entries: BlobEntry[],
  o: { setIndex?: (done: BlobEntry[]) => Promise<void>; previous?: Map<string, string> } = {},
): Promise<string[]> {
  const root = repo.root;
  const blobs = await metadataBlobs(root, entries);
  if (!blobs.length) return [];
  // the objects of every file are downloaded (in batches, in the metadata's order) while the files
  // are written: each read waits only for its own object
  const fetching = prefetchAll(repo, blobs);
  const done: BlobEntry[] = [];
  // the download draws its own line: this one starts when the download is over
  const progress = afterward(fetching, () => workProgress('git-theta: checkout', { items: blobs.length }));
  try {
    await whileFetching(fetching, () => writeEach());
  } finally {
    progress.done();
    // the index entries of the files written (also when a later one failed)
    if (done.length && o.setIndex) await o.setIndex(done);
  }
  const paths = done.map((d) => d.path);
  if (paths.length) await recordStat(await repo.gitDir(), root, paths);
  return paths;

  async function writeEach(): Promise<void> {
    for (const e of blobs) {
      const file = join(root, e.path);
      await mkdir(dirname(file), { recursive: true }); // its directory may be gone
      const old = e.from ? o.previous?.get(file) : undefined;
      const oldBlob = old ? await batchReadBlob(root, e.from!) : null;
      const patched = old && oldBlob ? await patchSafetensors(repo, old, file, oldBlob, e.bytes) : null;
      if (patched === null) await writeWhole(repo, e.path, e.bytes, file, progress);
      // git treats a file as possibly changed ("racily clean") when its mtime is not older than the
      // index; date it two seconds back so git can trust the stat data recorded below
      const past = new Date(Date.now() - 2000);
      await utimes(file, past, past);
      done.push({ path: e.path, blob: e.blob });
      progress.item();
    }
  }
}
