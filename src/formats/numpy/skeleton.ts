/**
 * The .npy/.npz skeleton: what `rebuild` needs besides the tensors to give the identical file.
 */
import { concat, type ByteSink } from '../../core/io.ts';
import type { DType } from '../../core/dtypes.ts';
import { FixedDeflater, crc32 } from '../zip.ts';
import { ZlibDeflater } from '../zlib-deflate.ts';
import { loadFflate, loadPako } from '../deflate-libs.ts';
import { byteSwap, npyError, reorder } from './header.ts';

const SKELETON_MAGIC = 'theta-numpy-skeleton/1';

// ---------------------------------------------------------------------------------------------
// Skeleton: a JSON list of parts plus the raw bytes they refer to, in order.
//   {raw: n}                                   n bytes from the blob area
//   {tensor, shape, dtype, item, swap, fortran, bytes}   a tensor, written back in its file layout
//   {deflate: {level, size, crc[, zlib]}, parts}  the parts' bytes, deflated with FixedDeflater(level)
//                                              (fflate), or with zlib's deflate when `zlib` is true

export type Part =
  | { raw: number }
  | { tensor: string; dtype: DType; shape: number[]; item: number; swap: boolean; fortran: boolean; bytes: number }
  | { deflate: { level: number; size: number; crc: number; zlib?: true }; parts: Part[] };

export class SkeletonBuilder {
  readonly parts: Part[] = [];
  readonly blobs: Uint8Array[] = [];
  raw(b: Uint8Array, into: Part[] = this.parts): void {
    if (!b.length) return;
    this.blobs.push(b.slice());
    const last = into[into.length - 1];
    if (last && 'raw' in last) last.raw += b.length;
    else into.push({ raw: b.length });
  }
  encode(format: string): Uint8Array {
    const json = new TextEncoder().encode(JSON.stringify({ skeleton: SKELETON_MAGIC, format, parts: this.parts }));
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, json.length, true);
    return concat([head, json, ...this.blobs]);
  }
}

function decodeSkeleton(skeleton: Uint8Array, format: string): { parts: Part[]; blob: Uint8Array } {
  const fail = (m: string) => npyError('<skeleton>', m);
  if (skeleton.length < 4) throw fail('skeleton is too short');
  const n = new DataView(skeleton.buffer, skeleton.byteOffset, 4).getUint32(0, true);
  if (4 + n > skeleton.length) throw fail('skeleton JSON runs past its end');
  let meta: { skeleton?: string; format?: string; parts?: Part[] };
  try { meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(skeleton.subarray(4, 4 + n))); } catch { throw fail('skeleton JSON is invalid'); }
  if (meta.skeleton !== SKELETON_MAGIC || meta.format !== format || !Array.isArray(meta.parts)) throw fail(`not a ${format} skeleton`);
  return { parts: meta.parts, blob: skeleton.subarray(4 + n) };
}

async function writeParts(
  parts: Part[],
  blob: { bytes: Uint8Array; at: number },
  tensor: (name: string) => AsyncIterable<Uint8Array>,
  out: (b: Uint8Array) => Promise<void>,
): Promise<void> {
  const fail = (m: string, t?: string) => npyError('<skeleton>', m, t);
  for (const p of parts) {
    if ('raw' in p) {
      if (blob.at + p.raw > blob.bytes.length) throw fail('skeleton blob area is shorter than its parts');
      await out(blob.bytes.subarray(blob.at, blob.at + p.raw));
      blob.at += p.raw;
    } else if ('tensor' in p) {
      let got = 0;
      const check = (n: number) => {
        got += n;
        if (got > p.bytes) throw fail(`got more than the ${p.bytes} bytes its header needs`, p.tensor);
      };
      if (p.fortran) {
        const parts: Uint8Array[] = [];
        for await (const c of tensor(p.tensor)) { check(c.length); parts.push(c.slice()); }
        if (got !== p.bytes) throw fail(`got ${got} bytes but its header needs ${p.bytes}`, p.tensor);
        const f = reorder(concat(parts, got), p.shape, p.item, false);
        if (p.swap) byteSwap(f, p.item);
        await out(f);
      } else {
        let carry = new Uint8Array(0);
        for await (const c of tensor(p.tensor)) {
          check(c.length);
          if (!p.swap) { if (c.length) await out(c); continue; }
          const all = carry.length ? concat([carry, c]) : c.slice();
          const whole = all.length - (all.length % p.item);
          carry = all.slice(whole);
          if (whole) await out(byteSwap(all.subarray(0, whole), p.item));
        }
        if (got !== p.bytes) throw fail(`got ${got} bytes but its header needs ${p.bytes}`, p.tensor);
      }
    } else if ('deflate' in p) {
      await (p.deflate.zlib ? loadPako() : loadFflate());
      const d = p.deflate.zlib ? new ZlibDeflater(p.deflate.level) : new FixedDeflater(p.deflate.level);
      let size = 0;
      let crc = 0;
      const emit = async (cs: Uint8Array[]) => { for (const c of cs) { size += c.length; crc = crc32(c, crc); await out(c); } };
      await writeParts(p.parts, blob, tensor, async (b) => emit(d.push(b)));
      await emit(d.finish());
      if (size !== p.deflate.size || crc !== p.deflate.crc) {
        throw fail(`re-deflating a member at level ${p.deflate.level} gave different bytes than when the file was added (the deflate library changed?); the output is not the original file`);
      }
    } else {
      throw fail('skeleton has an unknown part');
    }
  }
}

export async function rebuildFrom(format: string, skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void> {
  const { parts, blob } = decodeSkeleton(skeleton, format);
  const b = { bytes: blob, at: 0 };
  await writeParts(parts, b, tensor, (x) => sink.write(x));
  if (b.at !== blob.length) throw npyError('<skeleton>', `${blob.length - b.at} skeleton bytes are not used by any part`);
}
