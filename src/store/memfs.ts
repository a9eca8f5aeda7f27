/**
 * A small in-memory file system with the promise API isomorphic-git asks of `fs` (readFile,
 * writeFile, unlink, readdir, mkdir, rmdir, stat, lstat, readlink, symlink, chmod) plus rename,
 * so the same repository code runs in browsers, Deno and tests with no disk. Errors carry Node's
 * `code` strings (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, ELOOP), which is how isomorphic-git
 * and our StoreFs adapter tell "missing" from real failures.
 *
 * Paths are POSIX: absolute, '/'-separated; relative paths are taken from '/'. Symbolic links are
 * followed in every component except the last for lstat/readlink/unlink/symlink.
 *
 * The one in-memory file system: repositories run on it directly (openRemote, browsers, tests),
 * and object stores through the StoreFs adapter (promise-fs.ts), which streams through `open`'s
 * positional handles; store/memory.ts is that pairing. A handle keeps its file after unlink or
 * rename, as on POSIX.
 */

/** Longest chain of symbolic links followed before ELOOP (Linux uses 40). */
export const MAX_SYMLINK_HOPS = 40;

export class MemFsError extends Error {
  readonly code: string;
  readonly path: string;
  constructor(code: string, op: string, path: string) {
    super(`${code}: ${op} '${path}'`);
    this.name = 'MemFsError';
    this.code = code;
    this.path = path;
  }
}

interface Base {
  ino: number;
  mode: number;
  mtimeMs: number;
  ctimeMs: number;
}
interface FileNode extends Base { type: 'file'; data: Uint8Array }
interface DirNode extends Base { type: 'dir'; children: Map<string, Node> }
interface LinkNode extends Base { type: 'symlink'; target: string }
type Node = FileNode | DirNode | LinkNode;

export interface MemStats {
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  ino: number;
  dev: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  ctimeMs: number;
  mtime: Date;
  ctime: Date;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** The part of node:fs/promises' FileHandle that the store adapter uses. */
export interface MemFileHandle {
  stat(): Promise<{ size: number }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Uint8Array, offset?: number, length?: number): Promise<{ bytesWritten: number }>;
  close(): Promise<void>;
}

type Encoding = 'utf8' | 'utf-8' | undefined;
type ReadOptions = Encoding | { encoding?: Encoding | null } | undefined;
type WriteOptions = Encoding | { encoding?: Encoding | null; mode?: number; flag?: string } | undefined;

function encodingOf(o: ReadOptions | WriteOptions): Encoding {
  const e = typeof o === 'string' ? o : o?.encoding ?? undefined;
  if (e !== undefined && e !== 'utf8' && e !== 'utf-8') throw new TypeError(`memfs: unsupported encoding '${e}'`);
  return e;
}

function split(path: string): string[] {
  const parts: string[] = [];
  for (const s of String(path).split('/')) {
    if (!s || s === '.') continue;
    if (s === '..') parts.pop();
    else parts.push(s);
  }
  return parts;
}

/** The in-memory file system. `fs.promises` is the same object, so it can be passed where node:fs is expected. */
export interface MemFs {
  readFile(path: string, options?: ReadOptions): Promise<Uint8Array | string>;
  writeFile(path: string, data: Uint8Array | string, options?: WriteOptions): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string, options?: { recursive?: boolean; mode?: number } | number): Promise<void>;
  rmdir(path: string): Promise<void>;
  stat(path: string): Promise<MemStats>;
  lstat(path: string): Promise<MemStats>;
  readlink(path: string, options?: ReadOptions): Promise<string>;
  symlink(target: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Open for positional reads ('r') or for appending to a new file ('wx'), like node:fs/promises' open. */
  open(path: string, flags: 'r' | 'wx', mode?: number): Promise<MemFileHandle>;
  /** writeFile, done before returning (tests use it to damage stored objects). */
  writeFileSync(path: string, data: Uint8Array | string, options?: WriteOptions): void;
  readonly promises: MemFs;
  /** Every regular file's path, sorted (tests). */
  files(): string[];
}

export function createMemFs(): MemFs {
  let nextIno = 1;
  const now = () => Date.now();
  const mk = <T extends Node['type']>(type: T, mode: number): Base & { type: T } => {
    const t = now();
    return { type, ino: nextIno++, mode, mtimeMs: t, ctimeMs: t };
  };
  const root: DirNode = { ...mk('dir', 0o40755), children: new Map() };

  /**
   * Walk to `path`. Symlinks in leading components are always followed; the last one only when
   * `follow`. Returns the parent directory, the last name and the node (undefined if absent).
   */
  function walk(path: string, op: string, follow: boolean): { parent: DirNode; name: string; node: Node | undefined; parts: string[] } {
    let parts = split(path);
    let hops = 0;
    restart: for (;;) {
      if (!parts.length) return { parent: root, name: '', node: root, parts };
      let dir: DirNode = root;
      for (let i = 0; i < parts.length; i++) {
        const name = parts[i];
        const node = dir.children.get(name);
        const last = i === parts.length - 1;
        if (node?.type === 'symlink' && (!last || follow)) {
          if (++hops > MAX_SYMLINK_HOPS) throw new MemFsError('ELOOP', op, path);
          const base = node.target.startsWith('/') ? [] : parts.slice(0, i);
          parts = split([...base, node.target, ...parts.slice(i + 1)].join('/'));
          continue restart;
        }
        if (last) return { parent: dir, name, node, parts };
        if (!node) throw new MemFsError('ENOENT', op, path);
        if (node.type !== 'dir') throw new MemFsError('ENOTDIR', op, path);
        dir = node;
      }
    }
  }

  function existing(path: string, op: string, follow = true): Node {
    const { node } = walk(path, op, follow);
    if (!node) throw new MemFsError('ENOENT', op, path);
    return node;
  }

  function statsOf(n: Node): MemStats {
    const size = n.type === 'file' ? n.data.length : n.type === 'symlink' ? new TextEncoder().encode(n.target).length : 0;
    return {
      type: n.type,
      mode: n.mode,
      size,
      ino: n.ino,
      dev: 1,
      uid: 1,
      gid: 1,
      mtimeMs: n.mtimeMs,
      ctimeMs: n.ctimeMs,
      mtime: new Date(n.mtimeMs),
      ctime: new Date(n.ctimeMs),
      isFile: () => n.type === 'file',
      isDirectory: () => n.type === 'dir',
      isSymbolicLink: () => n.type === 'symlink',
    };
  }

  const fs: MemFs = {
    async readFile(path, options) {
      const n = existing(path, 'open');
      if (n.type === 'dir') throw new MemFsError('EISDIR', 'read', path);
      const data = (n as FileNode).data;
      return encodingOf(options) ? new TextDecoder().decode(data) : data.slice();
    },
    async writeFile(path, data, options) {
      fs.writeFileSync(path, data, options);
    },
    writeFileSync(path, data, options) {
      const { parent, name, node } = walk(path, 'open', true);
      if (!name) throw new MemFsError('EISDIR', 'open', path);
      if (node?.type === 'dir') throw new MemFsError('EISDIR', 'open', path);
      const flag = typeof options === 'object' && options ? options.flag : undefined;
      if (flag === 'wx' && node) throw new MemFsError('EEXIST', 'open', path);
      const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
      if (node?.type === 'file') {
        node.data = bytes;
        node.mtimeMs = node.ctimeMs = now();
        return;
      }
      const mode = typeof options === 'object' && options?.mode !== undefined && (options.mode & 0o111) ? 0o100755 : 0o100644;
      parent.children.set(name, { ...mk('file', mode), data: bytes });
      parent.mtimeMs = now();
    },
    async open(path, flags, mode) {
      if (flags === 'wx') fs.writeFileSync(path, new Uint8Array(0), { flag: 'wx', mode });
      else if (flags !== 'r') throw new TypeError(`memfs: unsupported open flags '${String(flags)}'`);
      const n = existing(path, 'open');
      if (n.type === 'dir') throw new MemFsError('EISDIR', 'open', path);
      const file = n as FileNode;
      let closed = false;
      let buf = file.data; // when writing: grows by doubling, so n writes cost O(total bytes)
      const check = (op: string) => {
        if (closed) throw new MemFsError('EBADF', op, path);
      };
      return {
        async stat() {
          check('fstat');
          return { size: file.data.length };
        },
        async read(buffer, offset, length, position) {
          check('read');
          const got = file.data.subarray(position, Math.min(file.data.length, position + length));
          buffer.set(got, offset);
          return { bytesRead: got.length };
        },
        async write(buffer, offset = 0, length = buffer.length - offset) {
          check('write');
          if (flags !== 'wx') throw new MemFsError('EBADF', 'write', path);
          const len = file.data.length;
          if (file.data.buffer !== buf.buffer || len + length > buf.length) {
            const next = new Uint8Array(Math.max(len + length, buf.length * 2, 1024));
            next.set(file.data);
            buf = next;
          }
          buf.set(buffer.subarray(offset, offset + length), len);
          file.data = buf.subarray(0, len + length);
          file.mtimeMs = now();
          return { bytesWritten: length };
        },
        async close() {
          closed = true;
        },
      };
    },
    async unlink(path) {
      const { parent, name, node } = walk(path, 'unlink', false);
      if (!node) throw new MemFsError('ENOENT', 'unlink', path);
      if (node.type === 'dir') throw new MemFsError('EISDIR', 'unlink', path);
      parent.children.delete(name);
      parent.mtimeMs = now();
    },
    async readdir(path) {
      const n = existing(path, 'scandir');
      if (n.type !== 'dir') throw new MemFsError('ENOTDIR', 'scandir', path);
      return [...n.children.keys()].sort();
    },
    async mkdir(path, options) {
      const recursive = typeof options === 'object' && !!options?.recursive;
      if (recursive) {
        let cur = '';
        for (const part of split(path)) {
          cur += '/' + part;
          const { parent, name, node } = walk(cur, 'mkdir', true);
          if (!node) parent.children.set(name, { ...mk('dir', 0o40755), children: new Map() });
          else if (node.type !== 'dir') throw new MemFsError('EEXIST', 'mkdir', cur);
        }
        return;
      }
      const { parent, name, node } = walk(path, 'mkdir', false);
      if (node) throw new MemFsError('EEXIST', 'mkdir', path);
      parent.children.set(name, { ...mk('dir', 0o40755), children: new Map() });
      parent.mtimeMs = now();
    },
    async rmdir(path) {
      const { parent, name, node } = walk(path, 'rmdir', false);
      if (!node) throw new MemFsError('ENOENT', 'rmdir', path);
      if (node.type !== 'dir') throw new MemFsError('ENOTDIR', 'rmdir', path);
      if (node === root) throw new MemFsError('EBUSY', 'rmdir', path);
      if (node.children.size) throw new MemFsError('ENOTEMPTY', 'rmdir', path);
      parent.children.delete(name);
    },
    async stat(path) {
      return statsOf(existing(path, 'stat', true));
    },
    async lstat(path) {
      return statsOf(existing(path, 'lstat', false));
    },
    async readlink(path, options) {
      const n = existing(path, 'readlink', false);
      if (n.type !== 'symlink') throw new MemFsError('EINVAL', 'readlink', path);
      void encodingOf(options);
      return n.target;
    },
    async symlink(target, path) {
      const { parent, name, node } = walk(path, 'symlink', false);
      if (node) throw new MemFsError('EEXIST', 'symlink', path);
      parent.children.set(name, { ...mk('symlink', 0o120777), target: String(target) });
    },
    async chmod(path, mode) {
      const n = existing(path, 'chmod');
      n.mode = (n.mode & ~0o7777) | (mode & 0o7777);
      n.ctimeMs = now();
    },
    async rename(from, to) {
      const a = walk(from, 'rename', false);
      if (!a.node || a.node === root) throw new MemFsError('ENOENT', 'rename', from);
      const b = walk(to, 'rename', false);
      if (b.node?.type === 'dir' && a.node.type !== 'dir') throw new MemFsError('EISDIR', 'rename', to);
      if (b.node?.type === 'dir' && b.node.children.size) throw new MemFsError('ENOTEMPTY', 'rename', to);
      if (a.node.type === 'dir' && b.parts.join('/').startsWith(a.parts.join('/') + '/')) throw new MemFsError('EINVAL', 'rename', to);
      a.parent.children.delete(a.name);
      b.parent.children.set(b.name, a.node);
    },
    get promises() {
      return fs;
    },
    files() {
      const out: string[] = [];
      const visit = (d: DirNode, prefix: string) => {
        for (const [name, n] of d.children) {
          if (n.type === 'dir') visit(n, `${prefix}/${name}`);
          else if (n.type === 'file') out.push(`${prefix}/${name}`);
        }
      };
      visit(root, '');
      return out.sort();
    },
  };
  return fs;
}
