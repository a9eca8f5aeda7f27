/**
 * `git theta fsck [--all] [--repair]`: checks every object that the index, HEAD (every ref with
 * `--all`) and the stash need — present, of the recorded size, and hashing to its name; the
 * skeleton's delta steps and the objects carried inline in the metadata too — and
 * reports each damaged one by file, revision and tensor. `--repair` moves damaged objects aside,
 * downloads them again from the LFS remote (verified by SHA-256 on the way in) and rewrites the
 * work-tree files of the index that need them (`git checkout` leaves such a file deleted when an
 * object is missing).
 */
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ThetaError, quoteName } from '../../../core/errors.ts';
import { isInline, looksLikeMetadata, parseMetadata, stepRefs, type ModelMetadata, type ObjectRef } from '../../../theta/metadata.ts';
import { fromBase64, inlineBytes, InlineObjectError } from '../../../theta/inline-objects.ts';
import type { RemoteStoreExtras } from '../../../lfs/remote-store.ts';
import { git } from '../../git/git.ts';
import { MAX_METADATA_BYTES } from '../../lfs/lfs-node.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { fastCheckout } from './checkout.ts';

export type Damage = 'missing' | 'size' | 'corrupt';

/** Where an object is needed: a file at a revision ('index' for the index), and what in it. */
export interface Use {
  path: string;
  rev: string;
  /** A tensor name, or null for the file's skeleton. */
  tensor: string | null;
}

export interface DamagedObject {
  oid: string;
  size: number;
  damage: Damage;
  /** Carried in the metadata (base64), not a store file: no download can repair it. */
  inline?: boolean;
  /** The size on disk, for 'size'. */
  actual?: number;
  uses: Use[];
  repaired?: boolean;
}

export interface FsckResult {
  /** Metadata blobs read (distinct). */
  files: number;
  objects: number;
  damaged: DamagedObject[];
  /** Work-tree files rewritten by --repair. */
  restored: string[];
}

interface Entry { rev: string; path: string; blob: string }

/** The revisions to check: HEAD (or every ref) and the stash's work-tree and index commits. */
async function revisions(root: string, all: boolean): Promise<string[]> {
  const revs: string[] = [];
  const ok = async (spec: string) => (await git(['rev-parse', '--verify', '-q', `${spec}^{commit}`], { cwd: root, allowFail: true })).code === 0;
  if (all) {
    const refs = (await git(['for-each-ref', '--format=%(refname)'], { cwd: root })).stdout.toString().split('\n').filter(Boolean);
    for (const r of refs) if (r !== 'refs/stash' && (await ok(r))) revs.push(r);
  }
  if (!revs.includes('HEAD') && (await ok('HEAD'))) revs.unshift('HEAD');
  if (await ok('refs/stash')) {
    revs.push('stash@{0}');
    if (await ok('stash@{0}^2')) revs.push('stash@{0}^2'); // the index the stash saved
  }
  return revs;
}

async function entriesOf(root: string, revs: string[]): Promise<Entry[]> {
  const out: Entry[] = [];
  const idx = (await git(['ls-files', '-s', '-z'], { cwd: root })).stdout.toString('utf8');
  for (const rec of idx.split('\0').filter(Boolean)) {
    const m = /^(\d{6}) ([0-9a-f]+) (\d)\t(.*)$/s.exec(rec);
    if (m && m[1].startsWith('100')) out.push({ rev: m[3] === '0' ? 'index' : `index (stage ${m[3]})`, path: m[4], blob: m[2] });
  }
  for (const rev of revs) {
    const t = (await git(['ls-tree', '-r', '-z', '--full-tree', rev], { cwd: root })).stdout.toString('utf8');
    for (const rec of t.split('\0').filter(Boolean)) {
      const m = /^(\d{6}) blob ([0-9a-f]+)\t(.*)$/s.exec(rec);
      if (m && m[1].startsWith('100')) out.push({ rev, path: m[3], blob: m[2] });
    }
  }
  return out;
}

/** The metadata among these blobs (others are skipped), read through one `git cat-file --batch`. */
async function metadataOf(root: string, blobs: string[]): Promise<Map<string, ModelMetadata>> {
  const res = new Map<string, ModelMetadata>();
  if (!blobs.length) return res;
  const check = await git(['cat-file', '--batch-check=%(objectname) %(objecttype) %(objectsize)'], { cwd: root, input: blobs.join('\n') + '\n' });
  const small = check.stdout.toString().split('\n').map((l) => l.split(' ')).filter(([, type, size]) => type === 'blob' && +size >= 16 && +size <= MAX_METADATA_BYTES).map(([id]) => id);
  if (!small.length) return res;
  const out = (await git(['cat-file', '--batch'], { cwd: root, input: small.join('\n') + '\n' })).stdout;
  let off = 0;
  for (const id of small) {
    const nl = out.indexOf(0x0a, off);
    const size = Number(out.subarray(off, nl).toString().split(' ')[2]);
    const bytes = out.subarray(nl + 1, nl + 1 + size);
    off = nl + 1 + size + 1;
    if (looksLikeMetadata(bytes)) res.set(id, parseMetadata(bytes, `blob ${id}`));
  }
  return res;
}

/** SHA-256 and size of a file, streamed. */
async function hashFile(path: string): Promise<{ oid: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { oid: h.digest('hex'), size };
}

async function checkObject(path: string, oid: string, size: number): Promise<{ damage: Damage; actual?: number } | null> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return { damage: 'missing' };
  }
  if (st.size !== size) return { damage: 'size', actual: st.size };
  const h = await hashFile(path);
  return h.oid === oid ? null : { damage: 'corrupt' };
}

export async function fsck(repo: ThetaRepo, o: { all?: boolean; repair?: boolean; log?: (s: string) => void } = {}): Promise<FsckResult> {
  const root = repo.root;
  const entries = await entriesOf(root, await revisions(root, !!o.all));
  const metas = await metadataOf(root, [...new Set(entries.map((e) => e.blob))]);
  const needs = new Map<string, { size: number; uses: Use[] }>();
  const need = (oid: string, size: number, use: Use) => {
    const n = needs.get(oid) ?? needs.set(oid, { size, uses: [] }).get(oid)!;
    if (!n.uses.some((u) => u.path === use.path && u.rev === use.rev && u.tensor === use.tensor)) n.uses.push(use);
  };
  // objects carried in the metadata: checked against their size and SHA-256 like store files
  const inline = new Map<string, { ref: ObjectRef & { data: string }; uses: Use[] }>();
  const refer = (r: ObjectRef, use: Use) => {
    if (!isInline(r)) return need(r.oid, r.size, use);
    const key = `${r.oid} ${r.size} ${r.data}`;
    const n = inline.get(key) ?? inline.set(key, { ref: r, uses: [] }).get(key)!;
    if (!n.uses.some((u) => u.path === use.path && u.rev === use.rev && u.tensor === use.tensor)) n.uses.push(use);
  };
  for (const e of entries) {
    const m = metas.get(e.blob);
    if (!m) continue;
    const layout: Use = { path: e.path, rev: e.rev, tensor: null };
    refer(m.skeleton, layout);
    for (const r of stepRefs(m.skeleton_delta?.chain ?? [])) refer(r, layout);
    for (const [name, t] of Object.entries(m.tensors)) for (const r of stepRefs(t.chain)) refer(r, { path: e.path, rev: e.rev, tensor: name });
  }
  const damaged: DamagedObject[] = [];
  for (const [oid, n] of needs) {
    const bad = await checkObject(repo.store.objectPath(oid), oid, n.size);
    if (bad) damaged.push({ oid, size: n.size, ...bad, uses: n.uses });
  }
  for (const { ref, uses } of inline.values()) {
    try {
      await inlineBytes(ref);
    } catch (e) {
      if (!(e instanceof InlineObjectError)) throw e;
      let actual: number | undefined;
      try { actual = fromBase64(ref.data).length; } catch { /* not base64: corrupt */ }
      const wrongSize = actual !== undefined && actual !== ref.size;
      damaged.push({ oid: ref.oid, size: ref.size, damage: wrongSize ? 'size' : 'corrupt', ...(wrongSize ? { actual } : {}), inline: true, uses });
    }
  }
  const restored: string[] = [];
  if (o.repair && damaged.length) {
    // a damaged object is moved aside (never deleted: it may be the only copy someone wants to look at)
    const aside = join(repo.store.lfsDir, 'bad');
    for (const d of damaged) {
      if (d.damage === 'missing' || d.inline) continue;
      await mkdir(aside, { recursive: true });
      await rename(repo.store.objectPath(d.oid), join(aside, `${d.oid}.${Date.now()}`));
    }
    const remote = repo.store as unknown as Partial<RemoteStoreExtras>;
    if (remote.prefetch) {
      try {
        await remote.prefetch(damaged.filter((d) => !d.inline).map((d) => ({ oid: d.oid, size: d.size })));
      } catch (e) {
        o.log?.(`git-theta fsck: downloading failed: ${(e as Error).message}`);
      }
    }
    for (const d of damaged) d.repaired = !d.inline && !(await checkObject(repo.store.objectPath(d.oid), d.oid, d.size));
    // work-tree files of the index whose objects are all good again, and that are missing or were damaged
    const fixed = new Set(damaged.filter((d) => d.repaired).map((d) => d.oid));
    const stillBad = new Set(damaged.filter((d) => !d.repaired).map((d) => d.oid));
    const paths = new Set<string>();
    for (const d of damaged) for (const u of d.uses) if (u.rev === 'index' && fixed.has(d.oid)) paths.add(u.path);
    for (const d of damaged) for (const u of d.uses) if (stillBad.has(d.oid)) paths.delete(u.path);
    const toRestore = [];
    for (const p of paths) if (!existsSync(join(root, p)) || (await worktreeDiffers(root, p))) toRestore.push(p);
    if (toRestore.length) restored.push(...(await fastCheckout(repo, null, toRestore)));
  }
  return { files: metas.size, objects: needs.size + inline.size, damaged, restored };
}

async function worktreeDiffers(root: string, path: string): Promise<boolean> {
  const r = await git(['diff', '--quiet', '--', path], { cwd: root, allowFail: true });
  return r.code !== 0;
}

function describe(d: DamagedObject): string {
  const what = d.damage === 'missing' ? 'missing' : d.damage === 'size' ? `wrong size (${d.actual} bytes, expected ${d.size})` : 'corrupt (its bytes do not hash to its name)';
  const where = d.inline ? ' (inline in the metadata: no download repairs it; re-add the file, or restore the metadata blob from another copy of the repository)' : '';
  const uses = d.uses.slice(0, 5).map((u) => `${u.path} at ${u.rev}: ${u.tensor === null ? 'the file layout (skeleton)' : `tensor ${quoteName(u.tensor)}`}`);
  const more = d.uses.length > 5 ? `; and ${d.uses.length - 5} more` : '';
  const fix = d.repaired === undefined ? '' : d.repaired ? ' — repaired' : ' — NOT repaired';
  return `${what} ${d.inline ? 'inline object' : 'object'} ${d.oid} (${d.size} bytes), needed by ${uses.join('; ')}${more}${where}${fix}`;
}

export function registerFsck(program: Command): void {
  program
    .command('fsck')
    .description('Check every object the index, HEAD (every ref with --all) and the stash need: present, of the right size, SHA-256 equal to its name; report each damaged one by file, revision and tensor')
    .option('--all', 'check every ref (branches, tags, remotes), not only HEAD')
    .option('--repair', 'move damaged objects aside (.git/lfs/bad), download them again from the LFS remote (verified), and rewrite the work-tree files that need them')
    .option('--json', 'print the result as JSON')
    .action(async (o: { all?: boolean; repair?: boolean; json?: boolean }) => {
      const repo = await ThetaRepo.open();
      const r = await fsck(repo, { ...o, log: (s) => process.stderr.write(`${s}\n`) });
      if (o.json) process.stdout.write(JSON.stringify(r, null, 1) + '\n');
      else {
        for (const d of r.damaged) process.stdout.write(`${describe(d)}\n`);
        for (const p of r.restored) process.stdout.write(`restored ${p}\n`);
      }
      const left = r.damaged.filter((d) => !d.repaired).length;
      process.stderr.write(`git-theta fsck: ${r.objects} objects of ${r.files} metadata files checked; ${r.damaged.length} damaged${o.repair ? `, ${r.damaged.length - left} repaired` : ''}\n`);
      if (left) {
        throw new ThetaError('E_FSCK', o.repair
          ? `${left} damaged objects could not be repaired (not on the LFS remote, or no remote); re-add the files that produced them`
          : `${left} damaged objects; run 'git theta fsck --repair' to download them again from the LFS remote`, { damaged: left });
      }
    });
}
