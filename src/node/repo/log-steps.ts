/** One step of a model's log: what changed from one version to the next (git theta log, for theta metadata and git-lfs files alike). */
import type { ModelMetadata, ObjectRef } from '../../theta/metadata.ts';
import { storedObjects } from '../../theta/metadata.ts';

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

type Version = { hash: string; dtype: string; shape: number[]; update?: string };

/**
 * From one version of a model to the next: tensors changed, added and removed (by name), the
 * update types of those stored anew, the bytes of objects the newer version needs that the older
 * one did not (what this commit stored), and the newer version's file size.
 */
export function step(before: Map<string, Version>, now: Map<string, Version>, oldObjects: ObjectRef[], newObjects: ObjectRef[], fileSize: number): Omit<LogEntry, 'commit' | 'subject'> {
  const old = new Set(oldObjects.map((r) => r.oid));
  const fresh = new Map(newObjects.filter((r) => !old.has(r.oid)).map((r) => [r.oid, r.size]));
  const updates: Record<string, number> = {};
  let changed = 0, added = 0;
  for (const [name, t] of now) {
    const b = before.get(name);
    if (!b) added++;
    else if (b.hash !== t.hash || b.dtype !== t.dtype || b.shape.join() !== t.shape.join()) changed++;
    else continue;
    if (t.update) updates[t.update] = (updates[t.update] ?? 0) + 1;
  }
  const removed = [...before.keys()].filter((n) => !now.has(n)).length;
  return { changed, added, removed, tensors: now.size, bytesStored: [...fresh.values()].reduce((a, n) => a + n, 0), fileSize, updates };
}

export function versionStep(parent: ModelMetadata | null, m: ModelMetadata | null): Omit<LogEntry, 'commit' | 'subject'> {
  const tensors = (x: ModelMetadata | null) => new Map(Object.entries(x?.tensors ?? {}));
  const objects = (x: ModelMetadata | null) => (x ? storedObjects(x) : []);
  return step(tensors(parent), tensors(m), objects(parent), objects(m), m?.size ?? 0);
}

