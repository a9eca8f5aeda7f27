/**
 * FileAccess (src/formats/types.ts) over the places a Node command looks at files: the work tree on
 * disk, and a revision or the index through git. Paths are '/'-separated and relative to the
 * repository root; nothing outside the root is reachable ('..' segments and absolute paths are
 * refused). Work-tree reads are cached by path, size and mtime, so the shards of one model read and
 * parse their model.json once per command; work-tree sizes are cached for the command.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileAccess } from '../../formats/types.ts';
import { git } from '../git/git.ts';
import { batchReadBlob } from '../git/git-batch.ts';

function inside(path: string): boolean {
  return !path.startsWith('/') && !path.split('/').some((s) => s === '..') && !path.includes('\0');
}

/**
 * The work tree under `root`. Sizes are remembered for the life of this object (one git command:
 * a TF.js model's N shards each ask for the sizes of the shards before them, N²/2 in all).
 */
export function worktreeFiles(root: string): FileAccess {
  const cache = new Map<string, { size: number; mtime: number; bytes: Uint8Array }>();
  const sizes = new Map<string, number | null>();
  return {
    async list(dir) {
      if (!inside(dir)) return [];
      const entries = await readdir(join(root, dir), { withFileTypes: true }).catch(() => []);
      return entries.filter((e) => e.isFile()).map((e) => e.name);
    },
    async read(path, maxBytes) {
      if (!inside(path)) return null;
      const st = await stat(join(root, path)).catch(() => null);
      if (!st?.isFile() || st.size > maxBytes) return null;
      const hit = cache.get(path);
      if (hit && hit.size === st.size && hit.mtime === st.mtimeMs) return hit.bytes;
      const bytes = new Uint8Array(await readFile(join(root, path)));
      cache.set(path, { size: st.size, mtime: st.mtimeMs, bytes });
      return bytes;
    },
    async size(path) {
      if (!inside(path)) return null;
      if (!sizes.has(path)) {
        const st = await stat(join(root, path)).catch(() => null);
        sizes.set(path, st?.isFile() ? st.size : null);
      }
      return sizes.get(path)!;
    },
  };
}

/**
 * The files git holds at a revision (`rev`), or in the index (`rev` = ':'), in the repository at
 * `root`. Blobs are what git stores: a tracked checkpoint reads as its metadata.
 */
export function revisionFiles(root: string, rev: string): FileAccess {
  const cache = new Map<string, Uint8Array | null>();
  const spec = (path: string) => (rev === ':' ? `:${path}` : `${rev}:${path}`);
  return {
    async list(dir) {
      if (!inside(dir)) return [];
      const prefix = dir ? `${dir}/` : '';
      if (rev === ':') {
        const r = await git(['ls-files', '-z', '--', prefix || '.'], { cwd: root, allowFail: true });
        return r.stdout.toString().split('\0').filter((p) => p.startsWith(prefix) && p.length > prefix.length && !p.slice(prefix.length).includes('/'))
          .map((p) => p.slice(prefix.length));
      }
      const r = await git(['ls-tree', '-z', `${rev}:${dir}`], { cwd: root, allowFail: true });
      if (r.code !== 0) return [];
      return r.stdout.toString().split('\0').filter(Boolean).flatMap((line) => {
        const tab = line.indexOf('\t');
        return line.split(' ')[1] === 'blob' ? [line.slice(tab + 1)] : [];
      });
    },
    async read(path, maxBytes) {
      if (!inside(path)) return null;
      if (!cache.has(path)) {
        const b = await batchReadBlob(root, spec(path));
        cache.set(path, b ? new Uint8Array(b.buffer, b.byteOffset, b.length) : null);
      }
      const bytes = cache.get(path)!;
      return bytes && bytes.length <= maxBytes ? bytes : null;
    },
    async size(path) {
      if (!inside(path)) return null;
      const r = await git(['cat-file', '-s', spec(path)], { cwd: root, allowFail: true });
      return r.code === 0 ? Number(r.stdout.toString().trim()) : null;
    },
  };
}
