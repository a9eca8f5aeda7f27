/**
 * A switch between two versions of a safetensors checkpoint with the same skeleton (the same
 * header: tensor names, dtypes, shapes and order) writes only the tensors whose content hash
 * differs. Before git replaces the file, `keepOldFiles` gives each old checkpoint a second name
 * (a hard link beside it, named like the atomic sink's temporary files); afterwards
 * `patchSafetensors` overwrites the changed tensors' byte ranges in that file (copied first by the
 * kernel if anything else still links to it) and renames it into place. Only for work-tree files
 * known to hold the old version (`git status` found them clean); anything else takes the whole
 * rebuild (`patchSafetensors` answers null and leaves the path alone).
 */
import { copyFile, link, open, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { ThetaRepo } from '../repo/theta-repo.ts';
import { looksLikeMetadata, parseMetadata } from '../../theta/metadata.ts';
import { readSkeleton } from '../../theta/skeleton.ts';
import { rebuildTensor } from '../../theta/rebuild.ts';
import { contentCheckedReads } from '../../theta/local-reads.ts';
import { parseSafetensorsHeader, SAFETENSORS_FORMAT_ID } from '../../formats/safetensors.ts';

const tempBeside = (file: string) => join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

/** Below this a whole rebuild costs about as little as a patch. */
const MIN_PATCH_BYTES = 1 << 20;

/** A second name for each of these work-tree files of 1 MiB or more (absolute path -> link); files that cannot be linked are left out. */
export async function keepOldFiles(files: string[]): Promise<Map<string, string>> {
  const kept = new Map<string, string>();
  for (const f of files) {
    const st = await stat(f).catch(() => null);
    if (!st?.isFile() || st.size < MIN_PATCH_BYTES) continue;
    const l = tempBeside(f);
    if (await link(f, l).then(() => true, () => false)) kept.set(f, l);
  }
  return kept;
}

/** Remove the second names that were not used. */
export async function dropOldFiles(kept: Map<string, string>): Promise<void> {
  for (const l of kept.values()) await rm(l, { force: true });
  kept.clear();
}

/**
 * Make `file` the checkpoint `newBlob` describes from `old` (a file holding the one `oldBlob`
 * describes) by writing only the changed tensors; `old` is renamed onto `file`. Returns the number
 * of tensors written, or null when the two versions do not qualify (then nothing was touched).
 */
export async function patchSafetensors(repo: ThetaRepo, old: string, file: string, oldBlob: Uint8Array, newBlob: Uint8Array): Promise<number | null> {
  if (!looksLikeMetadata(oldBlob) || !looksLikeMetadata(newBlob)) return null;
  const om = parseMetadata(oldBlob, file);
  const nm = parseMetadata(newBlob, file);
  if (om.format !== SAFETENSORS_FORMAT_ID || nm.format !== SAFETENSORS_FORMAT_ID || typeof om.size !== 'number' || om.size !== nm.size) return null;
  const st = await stat(old).catch(() => null);
  if (!st?.isFile() || st.size !== om.size) return null;
  const [os, ns] = await Promise.all([readSkeleton(om, repo.store, repo.kernels), readSkeleton(nm, repo.store, repo.kernels)]);
  if (!sameBytes(os, ns) || ns.length < 8) return null;
  const n = Number(Buffer.from(ns.buffer, ns.byteOffset, 8).readBigUInt64LE(0));
  if (ns.length !== 8 + n) return null;
  const header = parseSafetensorsHeader(ns.subarray(8));
  // where `rebuild` puts each tensor: the skeleton, then the tensors in offset order, back to back
  const changed: { name: string; at: number }[] = [];
  let at = ns.length;
  for (const e of header.entries) {
    const o = om.tensors[e.name];
    const t = nm.tensors[e.name];
    if (!t || !o || t.bytes !== e.byteLength || o.bytes !== e.byteLength) return null;
    if (o.hash !== t.hash) changed.push({ name: e.name, at });
    at += e.byteLength;
  }
  if (at !== nm.size) return null;
  const store = contentCheckedReads(repo.store, nm, repo.kernels);
  // the old inode is ours alone once git has replaced the work-tree file; otherwise write a copy
  const target = st.nlink > 1 ? tempBeside(file) : old;
  try {
    if (target !== old) await copyFile(old, target);
    const fh = await open(target, 'r+');
    try {
      for (const c of changed) {
        const bytes = await rebuildTensor(c.name, nm.tensors[c.name], store, repo.kernels);
        for (let off = 0; off < bytes.length; ) off += (await fh.write(bytes, off, bytes.length - off, c.at + off)).bytesWritten;
      }
    } finally {
      await fh.close();
    }
    await rename(target, file);
  } catch (e) {
    await rm(target, { force: true });
    throw e;
  }
  if (target !== old) await rm(old, { force: true });
  return changed.length;
}
