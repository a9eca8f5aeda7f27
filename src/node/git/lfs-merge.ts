/**
 * The `theta` merge driver on files git-lfs stores (`filter=lfs diff=theta merge=theta`, written by
 * `git theta track --diff-only`): git hands the driver three git-lfs pointers; each version's
 * checkpoint (its LFS object, local or from the LFS server) is split into tensors in the local
 * store, merged tensor by tensor like a git-theta file, and the merged checkpoint is written back
 * as a git-lfs object in `.git/lfs/objects` with its pointer in %A, so git-lfs keeps storing it.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFormat } from '../../formats/registry.ts';
import { lfsPointerText, openLfsObject } from '../../repo/lfs-pointer-model.ts';
import { parseLfsPointer, type LfsPointer } from '../../repo/lfs-pointer.ts';
import { cleanCheckpoint } from '../../theta/clean.ts';
import { looksLikeMetadata, parseMetadata, type ModelMetadata } from '../../theta/metadata.ts';
import { smudgeCheckpoint } from '../../theta/smudge.ts';
import { atomicFileSink, fileChunks } from '../files/fs-source.ts';
import type { ThetaRepo } from '../repo/theta-repo.ts';

/** Whether any of the driver's inputs is a git-lfs pointer (then this module merges). */
export function anyLfsPointer(blobs: (Uint8Array | null)[]): boolean {
  return blobs.some((b) => !!b && b.length > 0 && parseLfsPointer(b) !== null);
}

/**
 * One side as git-theta metadata: a pointer's checkpoint split into dense tensor objects in the
 * local store (objects it already has are not written again); metadata as it is; nothing = null.
 */
export async function sideMetadata(repo: ThetaRepo, path: string, blob: Uint8Array | null, where: string): Promise<ModelMetadata | null> {
  if (!blob || blob.length === 0) return null;
  if (looksLikeMetadata(blob)) return parseMetadata(blob, where);
  const pointer = parseLfsPointer(blob);
  if (!pointer) return null;
  const reader = await openLfsObject(repo.store, pointer, path);
  try {
    return await cleanCheckpoint({ reader, previous: null, store: repo.store, kernels: repo.kernels, updateType: 'dense', fileSize: pointer.size });
  } finally {
    await reader.close();
  }
}

/** Write merged metadata's checkpoint as a git-lfs object (into `.git/lfs/objects`) and give its pointer. */
export async function storeAsLfsObject(repo: ThetaRepo, metadata: ModelMetadata): Promise<{ pointer: LfsPointer; text: string }> {
  const tmp = await mkdtemp(join(tmpdir(), 'git-theta-lfs-merge-'));
  try {
    const file = join(tmp, 'merged');
    const sink = await atomicFileSink(file);
    try {
      await smudgeCheckpoint({ metadata, format: getFormat(metadata.format), store: repo.store, kernels: repo.kernels, sink });
      await sink.close();
    } catch (e) {
      await sink.abort();
      throw e;
    }
    const put = await repo.store.put(fileChunks(file));
    const pointer = { oid: put.oid, size: (await stat(file)).size };
    return { pointer, text: lfsPointerText(pointer) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
