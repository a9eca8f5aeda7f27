/**
 * The Node side of reading Python Git-Theta repositories: metadata blobs the Python tool committed
 * are converted (src/interop/python-git-theta) with git history read through `git cat-file`, and
 * the one-line notice that new commits use git-theta's own metadata.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { looksLikePyMetadata, pyObjectRefs } from '../../interop/python-git-theta/metadata.ts';
import type { ModelMetadata } from '../../theta/metadata.ts';
import { git, gitCommonDir } from '../git/git.ts';
import { batchReadBlob } from '../git/git-batch.ts';
import type { Kernels } from '../../core/kernels.ts';
import type { LocalObjectStore } from '../../store/local.ts';

/** What these helpers need of a ThetaRepo (named structurally: theta-repo.ts imports this file). */
interface ThetaRepo {
  readonly root: string;
  readonly store: LocalObjectStore;
  readonly kernels: Kernels;
}

export { looksLikePyMetadata };

/** Metadata converted from the Python tool's, so callers can tell (e.g. for the notice). */
const converted = new WeakSet<ModelMetadata>();

export function isFromPython(m: ModelMetadata | null): boolean {
  return !!m && converted.has(m);
}

/** Our view of a Python-written metadata blob of `path`; `skeleton` when it will be checked out or merged. */
export async function fromPythonBlob(repo: ThetaRepo, path: string, blob: Uint8Array, o: { skeleton?: boolean; where?: string } = {}): Promise<ModelMetadata> {
  // the converter (msgpack, zarr) is imported for the Python tool's blobs only: every filter,
  // merge driver and hook process imports this file through theta-repo.ts
  const { convertPyMetadata } = await import('../../interop/python-git-theta/convert.ts');
  const m = await convertPyMetadata(blob, {
    path,
    where: o.where,
    skeleton: o.skeleton,
    store: repo.store,
    kernels: repo.kernels,
    history: {
      async readAt(commit, p) {
        const b = await batchReadBlob(repo.root, `${commit}:${p}`);
        if (b) return b;
        const exists = await git(['cat-file', '-e', `${commit}^{commit}`], { cwd: repo.root, allowFail: true });
        return exists.code === 0 ? null : 'missing-commit';
      },
    },
  });
  converted.add(m);
  sources.set(m, blob);
  return m;
}

/** The path part of a `<rev>:<path>` or `:<path>` blob spec. */
export function specPath(spec: string): string {
  const m = /^(?::[0-3]:|[^:]*:)(.*)$/.exec(spec);
  return m ? m[1] : spec;
}

/** The LFS objects a Python metadata blob names (for gc and push), or null for other blobs. */
export function pythonBlobObjects(blob: Uint8Array): { oid: string; size: number }[] | null {
  if (!looksLikePyMetadata(blob)) return null;
  try {
    return pyObjectRefs(blob);
  } catch {
    return null;
  }
}

const NOTICE_FILE = 'theta-python-notice';

/** Once per repository, on stderr: a file the Python tool wrote is now stored in git-theta's own format. */
export async function notePythonSwitch(repo: ThetaRepo, path: string): Promise<void> {
  const marker = join(await gitCommonDir(repo.root), NOTICE_FILE);
  if (existsSync(marker)) return;
  process.stderr.write(
    `git-theta: ${path} was written by the Python Git-Theta; new commits store git-theta's own metadata (unchanged tensors keep their Python objects), which the Python tool cannot read\n`,
  );
  await writeFile(marker, `noted for ${path}\n`).catch(() => {});
}

/** The Python blob each converted metadata came from (for samePythonVersion). */
const sources = new WeakMap<ModelMetadata, Uint8Array>();

/**
 * When a clean of a Python-written file reused every tensor of its previous version and gives the
 * very bytes the Python tool's checkout writes, the previous Python blob itself (git then sees no
 * change); otherwise null.
 */
export async function samePythonVersion(repo: ThetaRepo, path: string, previous: ModelMetadata, next: ModelMetadata): Promise<Uint8Array | null> {
  const source = sources.get(previous);
  if (!source) return null;
  const a = Object.keys(previous.tensors);
  const b = Object.keys(next.tensors);
  if (a.length !== b.length || !b.every((n) => previous.tensors[n] === next.tensors[n])) return null;
  const laidOut = await fromPythonBlob(repo, path, source, { skeleton: true });
  return laidOut.skeleton.oid === next.skeleton.oid && laidOut.size === next.size ? source : null;
}
