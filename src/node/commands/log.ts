import type { Command } from 'commander';
import { git } from '../git.ts';
import { ThetaRepo } from '../theta-repo.ts';
import { referencedObjects, type ModelMetadata } from '../../theta/metadata.ts';

export interface LogEntry {
  commit: string;
  subject: string;
  changed: number;
  added: number;
  removed: number;
  tensors: number;
  /** Bytes of objects this commit's version needs that its parent's did not: what it stored. */
  bytesStored: number;
  fileSize: number;
  updates: Record<string, number>;
}

export function versionStep(parent: ModelMetadata | null, m: ModelMetadata | null): Omit<LogEntry, 'commit' | 'subject'> {
  const before = parent?.tensors ?? {};
  const now = m?.tensors ?? {};
  const old = new Set(parent ? referencedObjects(parent).map((r) => r.oid) : []);
  const stored = m ? referencedObjects(m).filter((r) => !old.has(r.oid)).reduce((a, r) => a + r.size, 0) : 0;
  const updates: Record<string, number> = {};
  let changed = 0, added = 0;
  for (const [name, t] of Object.entries(now)) {
    const b = before[name];
    if (!b) added++;
    else if (b.hash !== t.hash || b.dtype !== t.dtype || b.shape.join() !== t.shape.join()) changed++;
    else continue;
    updates[t.update] = (updates[t.update] ?? 0) + 1;
  }
  const removed = Object.keys(before).filter((n) => !(n in now)).length;
  return { changed, added, removed, tensors: Object.keys(now).length, bytesStored: stored, fileSize: m?.size ?? 0, updates };
}

export async function logPath(repo: ThetaRepo, path: string, rev = 'HEAD'): Promise<LogEntry[]> {
  const r = await git(['log', '--format=%H%x09%P%x09%s', rev, '--', path], { cwd: repo.root });
  const out: LogEntry[] = [];
  for (const line of r.stdout.toString().split('\n').filter(Boolean)) {
    const [commit, parents, subject] = line.split('\t');
    const parent = parents.split(' ')[0];
    const m = await repo.metadataAt(`${commit}:${path}`);
    const p = parent ? await repo.metadataAt(`${parent}:${path}`) : null;
    out.push({ commit, subject, ...versionStep(p, m) });
  }
  return out;
}

export function registerLog(program: Command): void {
  program
    .command('log')
    .description('Per commit that touched a tracked checkpoint: tensors changed, bytes stored, update types')
    .argument('<path>', 'tracked checkpoint')
    .option('--json', 'print a JSON array')
    .action(async (path: string, o: { json?: boolean }) => {
      const repo = await ThetaRepo.open();
      const rel = (await git(['ls-files', '--full-name', '--error-unmatch', '--', path], { allowFail: true })).stdout.toString().trim() || path;
      const entries = await logPath(repo, rel);
      if (o.json) {
        process.stdout.write(JSON.stringify(entries) + '\n');
        return;
      }
      for (const e of entries) {
        const kinds = Object.entries(e.updates).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
        process.stdout.write(
          `${e.commit.slice(0, 10)} ${e.subject}\n    ${e.changed} changed, ${e.added} added, ${e.removed} removed of ${e.tensors} tensors; ` +
            `stored ${e.bytesStored} bytes (file ${e.fileSize} bytes); updates: ${kinds}\n`,
        );
      }
    });
}
