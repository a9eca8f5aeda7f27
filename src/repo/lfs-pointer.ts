/**
 * Reading a git-lfs pointer (the spec's v1 text: version, oid sha256:..., size). A module of its
 * own, importing nothing: the merge driver and the LFS readers check for pointers without loading
 * model-blob.ts's isomorphic-git.
 */
import type { LfsPointer } from './blob-types.ts';

export type { LfsPointer };

/** git-lfs pointers are at most this long (the spec's limit; git-lfs ignores longer blobs). */
export const MAX_LFS_POINTER_BYTES = 1024;

const LFS_VERSIONS = ['https://git-lfs.github.com/spec/v1', 'https://hawser.github.com/spec/v1'];

/** A git-lfs pointer's object id and size, or null if the bytes are not a pointer. */
export function parseLfsPointer(blob: Uint8Array): LfsPointer | null {
  if (blob.length > MAX_LFS_POINTER_BYTES || blob.length < 20) return null;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(blob);
  } catch {
    return null;
  }
  if (!text.startsWith('version ')) return null;
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sp = line.indexOf(' ');
    if (sp <= 0) return null;
    fields.set(line.slice(0, sp), line.slice(sp + 1));
  }
  if (!LFS_VERSIONS.includes(fields.get('version') ?? '')) return null;
  const oid = /^sha256:([0-9a-f]{64})$/.exec(fields.get('oid') ?? '')?.[1];
  const sizeText = fields.get('size') ?? '';
  const size = Number(sizeText);
  if (!oid || !/^\d+$/.test(sizeText) || !Number.isSafeInteger(size)) return null;
  return { oid, size };
}

