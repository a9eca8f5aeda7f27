/** PyTorch checkpoints: the sequential zip input (pushback reader from core/io.ts) with PyTorch's errors and limits. */
import { FormatError, TruncatedError } from '../../core/errors.ts';
import { PushbackReader, type ByteReader } from '../../core/io.ts';
import { PYTORCH_FORMAT_ID } from './common.ts';

export class Input extends PushbackReader {
  constructor(reader: ByteReader, readonly file: string) {
    super(reader);
  }

  truncated(wanted: number, got: number, at: number, tensor?: string, entry?: string): TruncatedError {
    const e = new TruncatedError(this.file, wanted, got, at);
    const what = tensor !== undefined ? `tensor '${tensor}'` : entry !== undefined ? `entry '${entry}'` : undefined;
    if (what) e.message = e.message.replace(`${this.file}: `, `${this.file}: ${what}: `);
    if (tensor !== undefined) e.data.tensor = tensor;
    if (entry !== undefined) e.data.entry = entry;
    return e;
  }

  /** Exactly n bytes in a fresh array (safe to keep). */
  async readExactly(n: number, tensor?: string, entry?: string): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    const start = this.pos;
    let off = 0;
    while (off < n) {
      const part = await this.readUpTo(n - off);
      if (!part.length) throw this.truncated(n, off, start, tensor, entry);
      out.set(part, off);
      off += part.length;
    }
    return out;
  }

  async skip(n: number, tensor?: string): Promise<void> {
    const start = this.pos;
    let left = n;
    while (left > 0) {
      const part = await this.readUpTo(Math.min(left, 1 << 20));
      if (!part.length) throw this.truncated(n, n - left, start, tensor);
      left -= part.length;
    }
  }

  /** Everything left, up to `limit` bytes (FormatError past it). */
  async rest(limit: number, what: string): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let have = 0;
    for (;;) {
      const p = await this.readUpTo(1 << 20);
      if (!p.length) break;
      have += p.length;
      if (have > limit) throw new FormatError(`${what} is larger than the ${limit}-byte limit`, { file: this.file, format: PYTORCH_FORMAT_ID });
      parts.push(p.slice());
    }
    const out = new Uint8Array(have);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
}
