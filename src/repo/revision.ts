/**
 * Revisions as people type them, resolved with isomorphic-git: a branch, tag, remote branch
 * (`origin/main`), `HEAD`/`@`, a full or abbreviated commit id, each optionally followed by
 * `~N` (N-th first-parent ancestor) and `^N` (N-th parent; `^0` the commit itself) suffixes.
 * isomorphic-git's resolveRef knows only names, so the suffixes are walked here.
 */
import git from 'isomorphic-git';
import { gitArgs, type RepoContext } from './context.ts';
import { RevisionNotFoundError } from './errors.ts';

const SUFFIX_RE = /[~^]\d*/g;
const HEX_RE = /^[0-9a-f]{4,40}$/i;

/** The commit id a revision names (tags peeled), or RevisionNotFoundError. */
export async function resolveRevision(c: RepoContext, rev: string): Promise<string> {
  if (typeof rev !== 'string' || !rev) throw new RevisionNotFoundError(String(rev), 'empty revision');
  const cut = rev.search(/[~^]/);
  const base = cut < 0 ? rev : rev.slice(0, cut);
  const suffixes = cut < 0 ? [] : rev.slice(cut).match(SUFFIX_RE) ?? [];
  if (cut >= 0 && suffixes.join('') !== rev.slice(cut)) throw new RevisionNotFoundError(rev, 'unsupported revision syntax');
  const args = gitArgs(c);

  let oid: string | undefined;
  try {
    oid = await git.resolveRef({ ...args, ref: base === '@' ? 'HEAD' : base });
  } catch {
    // in a clone, other branches exist only as origin/<name>
    oid = await git.resolveRef({ ...args, ref: `refs/remotes/origin/${base}` }).catch(() => undefined);
  }
  if (!oid) {
    if (HEX_RE.test(base)) {
      try {
        oid = await git.expandOid({ ...args, oid: base.toLowerCase() });
      } catch {
        /* reported below */
      }
    }
  }
  if (!oid) throw new RevisionNotFoundError(rev, base === 'HEAD' ? 'the repository has no commits yet' : 'no such branch, tag or commit');

  const commitOf = async (id: string) => {
    try {
      return await git.readCommit({ ...args, oid: id });
    } catch (e) {
      throw new RevisionNotFoundError(rev, `${id} is not a commit (${(e as Error).message})`);
    }
  };
  let cur = await commitOf(oid);
  for (const s of suffixes) {
    const n = s.length > 1 ? Number(s.slice(1)) : 1;
    if (s[0] === '^') {
      if (n === 0) continue;
      const parent = cur.commit.parent[n - 1];
      if (!parent) throw new RevisionNotFoundError(rev, `${cur.oid.slice(0, 10)} has no parent number ${n}`);
      cur = await commitOf(parent);
    } else {
      for (let i = 0; i < n; i++) {
        const parent = cur.commit.parent[0];
        if (!parent) throw new RevisionNotFoundError(rev, `${cur.oid.slice(0, 10)} has no parent`);
        cur = await commitOf(parent);
      }
    }
  }
  return cur.oid;
}
