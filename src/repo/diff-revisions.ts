/**
 * diffRevisions: what `git theta diff <from> <to> --json` prints, for a whole revision pair:
 * {"files": [...]}, one entry per model whose blob differs between the two revisions (or per
 * given path), in path order.
 */
import { repoContext, required, type RepoOptions } from './context.ts';
import { diffPathAt, type FileDiff } from './diff-model.ts';
import { modelsAt } from './list-models.ts';
import { resolveRevision } from './revision.ts';

export interface DiffRevisionsOptions extends RepoOptions {
  from: string;
  to: string;
  /** Only these paths (each diffed even when unchanged, as the CLI does for paths after `--`). */
  filepaths?: string[];
  approx?: boolean;
  /** Include plain git-lfs `*.safetensors` files (default true; the CLI lists only git-theta files). */
  lfs?: boolean;
}

export interface RevisionsDiff {
  files: FileDiff[];
}

export async function diffRevisions(o: DiffRevisionsOptions): Promise<RevisionsDiff> {
  required('diffRevisions', o as unknown as Record<string, unknown>, ['fs', 'dir', 'from', 'to']);
  const c = await repoContext('diffRevisions', o);
  const from = { ref: o.from, commit: await resolveRevision(c, o.from) };
  const to = { ref: o.to, commit: await resolveRevision(c, o.to) };
  const only = o.filepaths ? new Set(o.filepaths) : null;
  const filter = only ? (p: string) => only.has(p) : undefined;
  const keep = (m: { kind: string }) => o.lfs !== false || m.kind === 'theta';
  const a = new Map((await modelsAt(c, from.commit, from.ref, filter)).filter(keep).map((m) => [m.path, m]));
  const b = new Map((await modelsAt(c, to.commit, to.ref, filter)).filter(keep).map((m) => [m.path, m]));
  const paths = [...new Set([...a.keys(), ...b.keys()])]
    .filter((p) => only || a.get(p)?.blobOid !== b.get(p)?.blobOid)
    .sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const files: FileDiff[] = [];
  for (const p of paths) files.push(await diffPathAt(c, p, from, to, !!o.approx));
  return { files };
}
