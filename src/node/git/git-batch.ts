/**
 * Long-running git helpers for commands that read many blobs or attributes (a TF.js model's
 * hundreds of shards, a diff between revisions): one `git cat-file --batch` and one
 * `git check-attr --stdin -z` per repository and process, asked one question at a time, instead of
 * a process per question. Both children are unref'd (they never keep Node alive) and end when
 * their stdin closes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ThetaError } from '../../core/errors.ts';

/** Reads exactly what the child writes, handing out byte counts and lines on demand. */
class OutputReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private waiting: (() => void) | null = null;
  private ended: Error | null = null;

  constructor(child: ChildProcess, what: string) {
    child.stdout!.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
      this.waiting?.();
    });
    const end = (why: string) => {
      this.ended ??= new ThetaError('E_GIT', `${what} ended unexpectedly (${why})`, {});
      this.waiting?.();
    };
    child.on('close', (code) => end(`exit ${code}`));
    child.on('error', (e) => end(e.message));
  }

  private async more(): Promise<void> {
    if (this.ended) throw this.ended;
    await new Promise<void>((r) => (this.waiting = r));
    this.waiting = null;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  /** Bytes up to (not including) the next `sep`. */
  async until(sep: number): Promise<Buffer> {
    for (;;) {
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
      this.chunks = all.length ? [all] : [];
      const i = all.indexOf(sep);
      if (i >= 0) {
        const out = Buffer.from(this.take(i + 1).subarray(0, i));
        return out;
      }
      await this.more();
    }
  }

  async bytes(n: number): Promise<Buffer> {
    while (this.length < n) await this.more();
    return Buffer.from(this.take(n));
  }
}

interface Batch {
  child: ChildProcess;
  out: OutputReader;
  queue: Promise<unknown>;
}

type Handle = { ref?(): void; unref?(): void };

/** Keep Node alive only while a question is open: an idle helper must not hold the process. */
function hold(child: ChildProcess, on: boolean): void {
  for (const h of [child, child.stdout, child.stdin] as unknown as Handle[]) (on ? h?.ref : h?.unref)?.call(h);
}

function start(args: string[], cwd: string, what: string): Batch {
  const child = spawn('git', args, { cwd, stdio: ['pipe', 'pipe', 'ignore'] });
  hold(child, false);
  child.stdin!.on('error', () => {});
  return { child, out: new OutputReader(child, what), queue: Promise.resolve() };
}

function serial<T>(b: Batch, job: () => Promise<T>): Promise<T> {
  const p = b.queue.then(async () => {
    hold(b.child, true);
    try {
      return await job();
    } finally {
      hold(b.child, false);
    }
  });
  b.queue = p.catch(() => {});
  return p;
}

const catFiles = new Map<string, Batch>();
const checkAttrs = new Map<string, Batch>();

/** A blob's bytes by any revision spec git understands (`HEAD:path`, `:path`, an id), or null when there is none. */
export function batchReadBlob(cwd: string, spec: string): Promise<Buffer | null> {
  if (/[\n]/.test(spec)) return Promise.resolve(null);
  let b = catFiles.get(cwd);
  if (!b || b.child.exitCode !== null) catFiles.set(cwd, (b = start(['cat-file', '--batch'], cwd, 'git cat-file --batch')));
  const batch = b;
  return serial(batch, async () => {
    batch.child.stdin!.write(`${spec}\n`);
    const header = (await batch.out.until(0x0a)).toString();
    // "<oid> <type> <size>", or "<spec> missing" / "<spec> ambiguous"
    const m = /^[0-9a-f]{40,64} (\w+) (\d+)$/.exec(header);
    if (!m) return null;
    const body = await batch.out.bytes(Number(m[2]) + 1);
    return m[1] === 'blob' ? body.subarray(0, body.length - 1) : null;
  });
}

/** One attribute's value for a path (`unspecified`, `set`, `unset` or the value). */
export function batchAttribute(cwd: string, name: string, path: string): Promise<string> {
  const key = `${cwd}\0${name}`;
  let b = checkAttrs.get(key);
  if (!b || b.child.exitCode !== null) checkAttrs.set(key, (b = start(['check-attr', '--stdin', '-z', name], cwd, 'git check-attr --stdin')));
  const batch = b;
  return serial(batch, async () => {
    batch.child.stdin!.write(`${path}\0`);
    await batch.out.until(0); // the path
    await batch.out.until(0); // the attribute
    return (await batch.out.until(0)).toString();
  });
}
