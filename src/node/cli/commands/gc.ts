import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { git } from '../../git/git.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { looksLikeMetadata, parseMetadata, referencedObjects } from '../../../theta/metadata.ts';
import { removeStaleTemps } from '../../files/stale-temp.ts';
import { pythonBlobObjects } from '../../repo/python-theta.ts';

const LFS_POINTER = /^version https:\/\/git-lfs\.github\.com\/spec\/v1\n(?:[^\n]*\n)*?oid sha256:([0-9a-f]{64})\n/;

/** Every blob id in every tree reachable from any ref, the reflogs, or the index. */
async function reachableBlobs(root: string): Promise<Set<string>> {
  const blobs = new Set<string>();
  const objects = await git(['rev-list', '--objects', '--all', '--reflog', '--indexed-objects'], { cwd: root, allowFail: true });
  const ids = objects.stdout.toString().split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
  // keep only blobs: ask cat-file for types in one batch
  const types = await git(['cat-file', '--batch-check=%(objectname) %(objecttype) %(objectsize)'], { cwd: root, input: ids.join('\n') + '\n' });
  for (const line of types.stdout.toString().split('\n')) {
    const [id, type, size] = line.split(' ');
    // metadata and pointers are small; skip big blobs (checkpoints committed without the filter)
    if (type === 'blob' && Number(size) < 256 << 20) blobs.add(id);
  }
  return blobs;
}

/** Read many blobs through one `git cat-file --batch`. */
async function* readBlobs(root: string, ids: string[]): AsyncGenerator<Buffer> {
  const child = spawn('git', ['cat-file', '--batch'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(ids.join('\n') + '\n');
  let buf = Buffer.alloc(0);
  for await (const chunk of child.stdout) {
    buf = Buffer.concat([buf, chunk as Buffer]);
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl < 0) break;
      const [, , size] = buf.subarray(0, nl).toString().split(' ');
      const n = Number(size);
      if (buf.length < nl + 1 + n + 1) break;
      yield buf.subarray(nl + 1, nl + 1 + n);
      buf = buf.subarray(nl + 1 + n + 1);
    }
  }
}

export interface GcResult {
  kept: number;
  removed: string[];
  bytesFreed: number;
  /** Temporary files left by killed processes (see stale-temp.ts). */
  temps: string[];
}

/** Remove local objects that no reachable metadata (nor git-lfs pointer) needs. */
export async function gc(repo: ThetaRepo, o: { dryRun?: boolean } = {}): Promise<GcResult> {
  const needed = new Set<string>();
  const blobs = await reachableBlobs(repo.root);
  for await (const blob of readBlobs(repo.root, [...blobs])) {
    if (looksLikeMetadata(blob)) {
      for (const r of referencedObjects(parseMetadata(blob))) needed.add(r.oid);
    } else if (pythonBlobObjects(blob)) {
      for (const r of pythonBlobObjects(blob)!) needed.add(r.oid); // metadata the Python Git-Theta wrote
    } else {
      const m = LFS_POINTER.exec(blob.subarray(0, 512).toString('latin1'));
      if (m) needed.add(m[1]);
    }
  }
  const removed: string[] = [];
  let bytesFreed = 0;
  let kept = 0;
  for await (const oid of repo.store.list()) {
    if (needed.has(oid)) { kept++; continue; }
    bytesFreed += await repo.store.size(oid);
    removed.push(oid);
    if (!o.dryRun) await repo.store.delete(oid);
  }
  const tracked = (await git(['ls-files', '-z'], { cwd: repo.root, allowFail: true })).stdout.toString('utf8').split('\0').filter(Boolean);
  const temps = await removeStaleTemps({ lfsDir: repo.store.lfsDir, root: repo.root, trackedPaths: await repo.trackedAmong(tracked), dryRun: o.dryRun });
  return { kept, removed, bytesFreed, temps };
}

export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('Remove local objects that no commit, reflog entry, stash or the index needs (git-lfs objects still referenced by pointers are kept), and temporary files a killed git-theta left (untouched for an hour)')
    .option('-n, --dry-run', 'only say what would be removed')
    .action(async (o: { dryRun?: boolean }) => {
      const repo = await ThetaRepo.open();
      const r = await gc(repo, o);
      process.stderr.write(`${o.dryRun ? 'would remove' : 'removed'} ${r.removed.length} objects (${r.bytesFreed} bytes) and ${r.temps.length} stale temporary files; kept ${r.kept}\n`);
    });
}
