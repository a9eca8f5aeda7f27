/**
 * Recording stat data in git's index for files git-theta wrote itself (`git theta checkout`).
 *
 * git decides whether a tracked file changed by comparing the file's stat data with what the index
 * recorded. A file written outside `git checkout` has none recorded, so the next `git status` would
 * send the whole checkpoint through the clean filter again. Here the entries of given paths get
 * the stat data of their files, following git's index format (Documentation/gitformat-index.txt,
 * versions 2, 3 and 4) and its lock protocol (write `index.lock`, rename over `index`). Without
 * it, an entry whose recorded size differs from the file's (git wrote the metadata there, then
 * `git theta switch` the checkpoint) would even show as modified: git takes a size change for a
 * content change without comparing.
 */
import { createHash } from 'node:crypto';
import { readFile, stat, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ThetaError } from '../../core/errors.ts';

export async function recordStat(gitDir: string, root: string, paths: string[], hashBytes = 20): Promise<number> {
  const indexPath = join(gitDir, 'index');
  const buf = Buffer.from(await readFile(indexPath));
  if (buf.toString('latin1', 0, 4) !== 'DIRC') throw new ThetaError('E_INDEX', `${indexPath}: not a git index`, {});
  const version = buf.readUInt32BE(4);
  if (version < 2 || version > 4) return 0;
  const count = buf.readUInt32BE(8);
  const wanted = new Set(paths);
  let off = 12;
  let updated = 0;
  let previous = Buffer.alloc(0); // version 4: each path is the previous one with a suffix replaced
  for (let i = 0; i < count; i++) {
    const flags = buf.readUInt16BE(off + 40 + hashBytes);
    const extended = version >= 3 && (flags & 0x4000) !== 0;
    let nameStart = off + 42 + hashBytes + (extended ? 2 : 0);
    let strip = 0;
    if (version === 4) [strip, nameStart] = readOffsetVarint(buf, nameStart);
    const nameEnd = buf.indexOf(0, nameStart);
    if (nameEnd < 0 || strip > previous.length) throw new ThetaError('E_INDEX', `${indexPath}: truncated entry`, {});
    const nameBytes = version === 4 ? Buffer.concat([previous.subarray(0, previous.length - strip), buf.subarray(nameStart, nameEnd)]) : buf.subarray(nameStart, nameEnd);
    previous = nameBytes;
    const name = nameBytes.toString('utf8');
    const stage = (flags >> 12) & 3;
    if (stage === 0 && wanted.has(name)) {
      const st = await stat(join(root, name), { bigint: true });
      const sec = (ns: bigint) => Number((ns / 1000000000n) & 0xffffffffn);
      const nsec = (ns: bigint) => Number(ns % 1000000000n);
      buf.writeUInt32BE(sec(st.ctimeNs), off);
      buf.writeUInt32BE(nsec(st.ctimeNs), off + 4);
      buf.writeUInt32BE(sec(st.mtimeNs), off + 8);
      buf.writeUInt32BE(nsec(st.mtimeNs), off + 12);
      buf.writeUInt32BE(Number(st.dev & 0xffffffffn), off + 16);
      buf.writeUInt32BE(Number(st.ino & 0xffffffffn), off + 20);
      buf.writeUInt32BE(Number(st.uid & 0xffffffffn), off + 28);
      buf.writeUInt32BE(Number(st.gid & 0xffffffffn), off + 32);
      buf.writeUInt32BE(Number(st.size & 0xffffffffn), off + 36);
      updated++;
    }
    if (version === 4) off = nameEnd + 1; // one NUL, no padding
    else off += (nameEnd - off + 8) & ~7; // 1 to 8 NULs pad the entry to a multiple of 8
  }
  if (!updated) return 0;
  const body = buf.subarray(0, buf.length - hashBytes);
  createHash(hashBytes === 32 ? 'sha256' : 'sha1').update(body).digest().copy(buf, buf.length - hashBytes);
  const lock = indexPath + '.lock';
  let fh;
  try {
    fh = await open(lock, 'wx');
  } catch {
    throw new ThetaError('E_INDEX_LOCKED', `${lock} exists: another git process is running (or crashed; remove the file if none is)`, {});
  }
  try {
    await fh.writeFile(buf);
    await fh.close();
    await rename(lock, indexPath);
  } catch (e) {
    await unlink(lock).catch(() => {});
    throw e;
  }
  return updated;
}

/** Git's "offset" varint (varint.c): 7 bits a byte, most significant first, each continuation adding one. */
function readOffsetVarint(buf: Buffer, at: number): [value: number, next: number] {
  let c = buf[at++];
  let value = c & 127;
  while (c & 128) {
    c = buf[at++];
    value = (value + 1) * 128 + (c & 127);
  }
  return [value, at];
}
