/**
 * Temporary files a killed process leaves behind: objects being written (`<lfsDir>/tmp/theta-*.tmp`,
 * `serve-*.tmp`) and work-tree files being written by `git theta checkout` (`.<name>.<12 hex>.tmp`
 * next to a tracked file). `git theta gc` removes those not modified for STALE_TEMP_MS, so a
 * temp file some running process is still writing is never touched.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A temp file untouched for this long belongs to no running write. */
export const STALE_TEMP_MS = 60 * 60 * 1000;

const OBJECT_TEMP = /^(theta|serve)-[0-9a-zA-Z_-]+\.tmp$/;

async function oldEnough(path: string, now: number): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && now - s.mtimeMs >= STALE_TEMP_MS;
  } catch {
    return false;
  }
}

/** Remove stale temp files; returns their paths. `trackedPaths` are work-tree paths relative to `root`. */
export async function removeStaleTemps(o: { lfsDir: string; root: string; trackedPaths: string[]; dryRun?: boolean; now?: number }): Promise<string[]> {
  const now = o.now ?? Date.now();
  const found: string[] = [];
  const tmpDir = join(o.lfsDir, 'tmp');
  for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
    const p = join(tmpDir, name);
    if (OBJECT_TEMP.test(name) && (await oldEnough(p, now))) found.push(p);
  }
  const dirs = new Map<string, Set<string>>();
  for (const rel of o.trackedPaths) {
    const abs = join(o.root, rel);
    const names = dirs.get(dirname(abs)) ?? dirs.set(dirname(abs), new Set()).get(dirname(abs))!;
    names.add(basename(abs));
  }
  for (const [dir, names] of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const m = /^\.(.+)\.[0-9a-f]{12}\.tmp$/.exec(name);
      if (m && names.has(m[1]) && (await oldEnough(join(dir, name), now))) found.push(join(dir, name));
    }
  }
  if (!o.dryRun) for (const p of found) await rm(p, { force: true });
  return found;
}
