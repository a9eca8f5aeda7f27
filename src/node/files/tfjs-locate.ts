/**
 * TF.js weight shards found by the manifest that lists them. A shard has no format of its own (its
 * bytes are raw weights, often named `.bin` like a PyTorch file, or `-shard1` with no extension),
 * so a file no format recognises is a TF.js shard when a manifest nearby (`model.json`, a bare
 * `*weights_manifest.json`, any JSON naming it) lists it.
 */
import { join, relative, resolve, sep } from 'node:path';
import { UnknownFormatError } from '../../core/errors.ts';
import { getFormat, sniffFormat } from '../../formats/registry.ts';
import { findTfjsManifest, TFJS_SHARD_FORMAT_ID } from '../../formats/tfjs-shard.ts';
import type { CheckpointFormat, FileAccess } from '../../formats/types.ts';
import { worktreeFiles } from './file-access.ts';

/**
 * The format of `path` (repository-relative, read through `files`): sniffed from its first bytes,
 * or, when nothing recognises them, the TF.js shard format if a manifest lists the file.
 */
export async function sniffOrShard(head: Uint8Array, path: string, files: FileAccess): Promise<CheckpointFormat> {
  try {
    return sniffFormat(head, path);
  } catch (e) {
    if (!(e instanceof UnknownFormatError)) throw e;
    const hit = await findTfjsManifest(path, files).catch(() => null);
    if (hit) return getFormat(TFJS_SHARD_FORMAT_ID);
    throw e;
  }
}

/**
 * The manifest (absolute path) of the TF.js model a file on disk is a shard of, or null. The
 * search runs in the file's directory and a few above it (as for clean), never above `root`
 * (default: the file's own directory's parent chain up to the filesystem root).
 */
export async function manifestOfShardFile(file: string, root = '/'): Promise<string | null> {
  const abs = resolve(file);
  const base = resolve(root);
  const rel = relative(base, abs).split(sep).join('/');
  if (rel.startsWith('..')) return null;
  const hit = await findTfjsManifest(rel, worktreeFiles(base)).catch(() => null);
  return hit ? join(base, hit.path) : null;
}

