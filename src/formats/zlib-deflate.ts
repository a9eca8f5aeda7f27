/**
 * zlib's own deflate, for reproducing streams that zlib wrote: NumPy's `savez_compressed` (through
 * Python's zipfile: zlib, raw deflate, window 15, memory level 8, default strategy, level 6 unless
 * asked otherwise). pako is a faithful port of zlib's deflate, so the same content at the same
 * settings gives the same bytes, whatever pieces the content arrives in (no flush between pieces).
 * fflate, used for everything else, compresses differently.
 */
import type { Deflate } from 'pako';
import { ArgumentError } from '../core/errors.ts';
import { pako } from './deflate-libs.ts';

/**
 * A raw-deflate stream with zlib's defaults at `level`; push content, take compressed bytes.
 * pako is imported on first use (deflate-libs.ts): construct one after `await loadPako()`.
 */
export class ZlibDeflater {
  private readonly d: Deflate;
  private out: Uint8Array[] = [];
  constructor(readonly level: number) {
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new ArgumentError(`deflate level must be 0..9, got ${level}`);
    this.d = new (pako().Deflate)({ level: level as 6, raw: true, windowBits: 15, memLevel: 8, strategy: 0 });
    this.d.onData = (chunk: Uint8Array) => { if (chunk.length) this.out.push(chunk); };
  }
  /** Push content; returns the compressed bytes produced so far (possibly none). */
  push(bytes: Uint8Array): Uint8Array[] {
    // pako may keep the input until the next call: give it a copy callers cannot reuse
    if (bytes.length) this.d.push(bytes.slice(), false);
    return this.take();
  }
  /** End the stream; returns the remaining compressed bytes. */
  finish(): Uint8Array[] {
    this.d.push(new Uint8Array(0), true);
    if (this.d.err) throw new ArgumentError(`zlib deflate failed: ${this.d.msg}`);
    return this.take();
  }
  private take(): Uint8Array[] {
    const o = this.out;
    this.out = [];
    return o;
  }
}

/** Anything that turns pushed content into compressed pieces (ZlibDeflater, zip.ts's FixedDeflater). */
export interface Deflater {
  readonly level: number;
  push(bytes: Uint8Array): Uint8Array[];
  finish(): Uint8Array[];
}

/**
 * Checks, while a member is read, that `deflater` reproduces its compressed bytes exactly; stops
 * working at the first byte that differs. `push` the content as it is inflated; `matches()` at the end.
 */
export class ReproductionCheck {
  private at = 0;
  private ok = true;
  constructor(private readonly compressed: Uint8Array, readonly deflater: Deflater, readonly zlib: boolean) {}
  get level(): number { return this.deflater.level; }
  private check(parts: Uint8Array[]): void {
    for (const p of parts) {
      if (!this.ok) return;
      if (this.at + p.length > this.compressed.length) { this.ok = false; return; }
      for (let i = 0; i < p.length; i++) if (p[i] !== this.compressed[this.at + i]) { this.ok = false; return; }
      this.at += p.length;
    }
  }
  push(content: Uint8Array): void { if (this.ok) this.check(this.deflater.push(content)); }
  matches(): boolean {
    if (this.ok) this.check(this.deflater.finish());
    return this.ok && this.at === this.compressed.length;
  }
}
