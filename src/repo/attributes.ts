/**
 * Enough of .gitattributes to know which filter a path is bound to, and to bind one path to
 * git-theta: patterns (with `*`, `?`, `[...]`, `**`, backslash escapes and C-style quoting),
 * set/unset/unspecified/value attributes, files in the root and in the path's parent
 * directories, last match wins. Macros (`[attr]`) are skipped: they never define `filter`.
 */
import type { PromiseFsLike } from '../store/promise-fs.ts';
import { joinPath } from '../store/promise-fs.ts';

export type AttrValue = string | true | false | null;

export interface AttrLine {
  pattern: string;
  attrs: Map<string, AttrValue>;
}

/** The line `saveModel` appends to bind a file to git-theta (same attributes as `git theta track`). */
export const THETA_ATTRIBUTES = 'filter=theta diff=theta merge=theta';

function unquote(s: string): { value: string; rest: string } {
  // s starts with '"'
  let out = '';
  let i = 1;
  for (; i < s.length && s[i] !== '"'; i++) {
    if (s[i] === '\\' && i + 1 < s.length) {
      const n = s[++i];
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n;
    } else {
      out += s[i];
    }
  }
  return { value: out, rest: s.slice(i + 1) };
}

export function parseAttributes(text: string): AttrLine[] {
  const lines: AttrLine[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let pattern: string;
    let rest: string;
    if (line.startsWith('"')) {
      ({ value: pattern, rest } = unquote(line));
    } else {
      const m = /^(\S+)(.*)$/.exec(line)!;
      pattern = m[1];
      rest = m[2];
    }
    if (pattern.startsWith('[attr]')) continue;
    const attrs = new Map<string, AttrValue>();
    for (const tok of rest.split(/\s+/).filter(Boolean)) {
      if (tok.startsWith('-')) attrs.set(tok.slice(1), false);
      else if (tok.startsWith('!')) attrs.set(tok.slice(1), null);
      else if (tok.includes('=')) attrs.set(tok.slice(0, tok.indexOf('=')), tok.slice(tok.indexOf('=') + 1));
      else attrs.set(tok, true);
    }
    lines.push({ pattern, attrs });
  }
  return lines;
}

const escapeRe = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A gitattributes glob as a RegExp over a '/'-separated path. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let i = 0;
  while (i < glob.length) {
    const ch = glob[i];
    if (ch === '\\' && i + 1 < glob.length) {
      re += escapeRe(glob[i + 1]);
      i += 2;
    } else if (ch === '*' && glob[i + 1] === '*') {
      const atStart = i === 0 || glob[i - 1] === '/';
      const atEnd = i + 2 === glob.length || glob[i + 2] === '/';
      if (atStart && atEnd) {
        if (i + 2 === glob.length) re += '.*';
        else re += '(?:.*/)?';
        i += i + 2 === glob.length ? 2 : 3;
      } else {
        re += '[^/]*';
        i += 2;
      }
    } else if (ch === '*') {
      re += '[^/]*';
      i++;
    } else if (ch === '?') {
      re += '[^/]';
      i++;
    } else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        i++;
        continue;
      }
      let body = glob.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end + 1;
    } else {
      re += escapeRe(ch);
      i++;
    }
  }
  return new RegExp(`^${re}$`);
}

/** Whether a pattern from a .gitattributes in directory `base` ('' = root) matches `filepath`. */
export function patternMatches(pattern: string, base: string, filepath: string): boolean {
  if (pattern.endsWith('/')) return false; // directory-only patterns never match a file
  const rel = base ? (filepath.startsWith(base + '/') ? filepath.slice(base.length + 1) : null) : filepath;
  if (rel === null) return false;
  const hasSlash = pattern.replace(/^\//, '').includes('/') || pattern.startsWith('/');
  if (!hasSlash) return globToRegExp(pattern).test(rel.slice(rel.lastIndexOf('/') + 1));
  return globToRegExp(pattern.replace(/^\//, '')).test(rel);
}

async function readText(pfs: PromiseFsLike, path: string): Promise<string | null> {
  try {
    const b = await pfs.readFile(path);
    return typeof b === 'string' ? b : new TextDecoder().decode(b);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
    throw e;
  }
}

/** The value of attribute `name` for `filepath` from the working tree's .gitattributes files. */
export async function attributeOf(pfs: PromiseFsLike, dir: string, filepath: string, name: string): Promise<AttrValue> {
  const parts = filepath.split('/');
  let value: AttrValue = null;
  for (let depth = 0; depth < parts.length; depth++) {
    const base = parts.slice(0, depth).join('/');
    const text = await readText(pfs, joinPath(dir, base, '.gitattributes'));
    if (text === null) continue;
    for (const line of parseAttributes(text)) {
      if (line.attrs.has(name) && patternMatches(line.pattern, base, filepath)) value = line.attrs.get(name)!;
    }
  }
  return value;
}

/** A pattern matching exactly `filepath` from the root (glob characters escaped, quoted if needed). */
export function exactPattern(filepath: string): string {
  const escaped = '/' + filepath.replace(/[\\*?[]/g, '\\$&');
  if (!/[\s"]/.test(escaped)) return escaped;
  return '"' + escaped.replace(/["\\]/g, '\\$&').replace(/\n/g, '\\n').replace(/\t/g, '\\t') + '"';
}

/**
 * Make sure `filepath` is bound to filter=theta: nothing to do when it is; when it is bound to
 * another filter, the caller is told (returns that filter); otherwise a line is appended to the
 * root .gitattributes and `'added'` is returned.
 */
export async function bindToTheta(pfs: PromiseFsLike, dir: string, filepath: string): Promise<'already' | 'added' | { other: string }> {
  const filter = await attributeOf(pfs, dir, filepath, 'filter');
  if (filter === 'theta') return 'already';
  if (typeof filter === 'string') return { other: filter };
  const path = joinPath(dir, '.gitattributes');
  const text = (await readText(pfs, path)) ?? '';
  const sep = text && !text.endsWith('\n') ? '\n' : '';
  await pfs.writeFile(path, `${text}${sep}${exactPattern(filepath)} ${THETA_ATTRIBUTES}\n`);
  return 'added';
}
