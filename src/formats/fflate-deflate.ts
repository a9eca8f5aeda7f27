/**
 * fflate's raw deflate streams as the zip layer and its users (npz, PyTorch) need them: bounded
 * inflation (inflateChunks stops at the declared size, so a zip bomb costs one push), a
 * deterministic deflater (FixedDeflater), and the check that re-deflating a member reproduces it
 * (DeflateVerifier; zlib's own deflate is in zlib-deflate.ts). fflate is imported on first use
 * (deflate-libs.ts): constructing a FixedDeflater needs `await loadFflate()` first.
 */
import type { Deflate } from 'fflate';
import { ArgumentError, FormatError } from '../core/errors.ts';
import { fflate, loadFflate } from './deflate-libs.ts';
import { ReproductionCheck } from './zlib-deflate.ts';
import { zipError } from './zip-error.ts';

/** Compressed bytes handed to the inflater per step: bounds one step's output to ~MAX_DEFLATE_RATIO × this. */
export const INFLATE_PUSH_BYTES = 16 << 10;

/**
 * The writer (and every re-deflation check) feeds fflate's Deflate fixed pieces of this size,
 * because fflate's output depends on how its input is pushed; fixing the pieces makes the
 * compressed bytes a pure function of (content, level, this size).
 */
export const DEFLATE_PUSH_BYTES = 64 << 10;

function flateMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Inflate a raw deflate stream given in pieces, yielding the output as it comes. Stops with a
 * FormatError as soon as the output exceeds `expectedSize` (a zip bomb never gets further than one
 * push of INFLATE_PUSH_BYTES input), and when the stream ends short of it.
 */
export async function* inflateChunks(compressed: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: { expectedSize: number; fileName?: string; entry?: string }): AsyncGenerator<Uint8Array> {
  const file = opts.fileName ?? '<zip>';
  let out: Uint8Array[] = [];
  let total = 0;
  const { Inflate } = await loadFflate();
  const inf = new Inflate((chunk) => {
    total += chunk.length;
    if (total > opts.expectedSize) throw zipError(file, `inflates to more than its declared ${opts.expectedSize} bytes (a zip bomb or a corrupt header); stopped`, opts.entry, { reason: 'zip-bomb' });
    if (chunk.length) out.push(chunk);
  });
  const push = (piece: Uint8Array, final: boolean) => {
    try {
      inf.push(piece, final);
    } catch (e) {
      if (e instanceof FormatError) throw e;
      throw zipError(file, `deflate data is corrupt (${flateMessage(e)})`, opts.entry, { reason: 'deflate' });
    }
  };
  for await (const part of compressed) {
    for (let i = 0; i < part.length; i += INFLATE_PUSH_BYTES) {
      // copy: fflate may keep a reference to unconsumed input, and callers reuse their buffers
      push(part.slice(i, i + INFLATE_PUSH_BYTES), false);
      if (out.length) { const o = out; out = []; yield* o; }
    }
  }
  push(new Uint8Array(0), true);
  if (out.length) { const o = out; out = []; yield* o; }
  if (total !== opts.expectedSize) throw zipError(file, `inflates to ${total} bytes but its header declares ${opts.expectedSize}`, opts.entry, { reason: 'size' });
}

/**
 * A deterministic deflater (after `await loadFflate()`): content pushed in any pieces is re-cut into DEFLATE_PUSH_BYTES pieces
 * before fflate sees it, so the compressed bytes depend only on the content and the level.
 */
export class FixedDeflater {
  private readonly d: Deflate;
  private readonly buf = new Uint8Array(DEFLATE_PUSH_BYTES);
  private fill = 0;
  private out: Uint8Array[] = [];
  constructor(readonly level: number) {
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new ArgumentError(`deflate level must be 0..9, got ${level}`);
    this.d = new (fflate().Deflate)({ level: level as 0 }, (chunk) => { if (chunk.length) this.out.push(chunk); });
  }
  /** Push content; returns the compressed bytes produced so far (possibly none). */
  push(bytes: Uint8Array): Uint8Array[] {
    let i = 0;
    while (i < bytes.length) {
      const take = Math.min(bytes.length - i, DEFLATE_PUSH_BYTES - this.fill);
      this.buf.set(bytes.subarray(i, i + take), this.fill);
      this.fill += take;
      i += take;
      if (this.fill === DEFLATE_PUSH_BYTES) {
        this.d.push(this.buf.slice(), false);
        this.fill = 0;
      }
    }
    return this.take();
  }
  /** End the stream; returns the remaining compressed bytes. */
  finish(): Uint8Array[] {
    this.d.push(this.buf.slice(0, this.fill), true);
    this.fill = 0;
    return this.take();
  }
  private take(): Uint8Array[] {
    const o = this.out;
    this.out = [];
    return o;
  }
}

/** Deflate content deterministically (see FixedDeflater). */
export async function* deflateChunks(content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, level: number): AsyncGenerator<Uint8Array> {
  await loadFflate();
  const d = new FixedDeflater(level);
  for await (const part of content) yield* d.push(part);
  yield* d.finish();
}

/**
 * Checks, while a member is read, that deflating its content again at `level` reproduces its
 * compressed bytes exactly. `push` the content as it is inflated; `matches()` at the end.
 */
export class DeflateVerifier extends ReproductionCheck {
  constructor(compressed: Uint8Array, level: number) {
    super(compressed, new FixedDeflater(level), false);
  }
}
