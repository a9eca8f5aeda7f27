/** PyTorch checkpoints: the skeleton (layout + non-tensor bytes) read back, and the exact file rebuilt from it and the tensors. */
import { dtypeSize } from '../../core/dtypes.ts';
import { FormatError } from '../../core/errors.ts';
import type { ByteSink } from '../../core/io.ts';
import { crc32, put32, u32 } from '../pytorch-zip.ts';
import { PYTORCH_FORMAT_ID, SKELETON_MAGIC, type SkeletonDoc } from './common.ts';
import { forEachRun, viewNumel } from './views.ts';

export function parseSkeleton(skeleton: Uint8Array): { doc: SkeletonDoc; blob: Uint8Array } {
  const file = '<skeleton>';
  const bad = (msg: string) => new FormatError(`pytorch skeleton: ${msg}`, { file, format: PYTORCH_FORMAT_ID });
  if (skeleton.length < 12 || new TextDecoder().decode(skeleton.subarray(0, 8)) !== SKELETON_MAGIC) throw bad('bad magic (not a pytorch skeleton)');
  const n = u32(skeleton, 8);
  if (12 + n > skeleton.length) throw bad('JSON length runs past the end');
  let doc: SkeletonDoc;
  try { doc = JSON.parse(new TextDecoder().decode(skeleton.subarray(12, 12 + n))); } catch { throw bad('JSON does not parse'); }
  if (!doc || doc.v !== 1 || !Array.isArray(doc.segments) || !Array.isArray(doc.storages)) throw bad('unknown layout version');
  const blob = skeleton.slice(12 + n);
  for (const s of doc.segments) {
    if (s[0] === 'r' ? !(s[1] >= 0 && s[2] >= 0 && s[1] + s[2] <= blob.length) : !(s[0] === 's' && doc.storages[s[1]])) throw bad('segment out of range');
  }
  return { doc, blob };
}

export async function rebuild(skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void> {
  const { doc, blob } = parseSkeleton(skeleton);
  const queue: [number, number][] = [];
  const flush = async () => {
    for (const [at, len] of queue) await sink.write(blob.subarray(at, at + len));
    queue.length = 0;
  };
  for (const seg of doc.segments) {
    if (seg[0] === 'r') { queue.push([seg[1], seg[2]]); continue; }
    const plan = doc.storages[seg[1]];
    const es = dtypeSize(plan.dtype);
    const buf = new Uint8Array(plan.bytes);
    for (const [off, at, len] of plan.fill) buf.set(blob.subarray(at, at + len), off);
    for (const v of plan.views) {
      const want = viewNumel(v.shape) * es;
      const data = new Uint8Array(want);
      let got = 0;
      for await (const part of tensor(v.name)) {
        if (got + part.length > want) throw new FormatError(`got more than the ${want} bytes its ${plan.dtype} ${JSON.stringify(v.shape)} view needs`, { file: '<skeleton>', tensor: v.name, format: PYTORCH_FORMAT_ID });
        data.set(part, got);
        got += part.length;
      }
      if (got !== want) throw new FormatError(`got ${got} bytes but its ${plan.dtype} ${JSON.stringify(v.shape)} view needs ${want}`, { file: '<skeleton>', tensor: v.name, format: PYTORCH_FORMAT_ID });
      forEachRun(v, es, (src, dst, len) => buf.set(data.subarray(dst, dst + len), src));
    }
    const crc = crc32(buf);
    for (const at of plan.crcAt) put32(blob, at, crc);
    await flush();
    if (buf.length) await sink.write(buf);
  }
  await flush();
}
