// The library's merge-models path in every runtime (Node, Deno, browsers): mergeIntoFirst puts the
// merged tensors into the first model's skeleton — a self-merge is byte-identical, a GGUF's
// key/values and layout are kept, and its Q8_0 tensor is requantized, checked against a
// hand-written Q8_0 decoder in this file.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { getKernels } from '../../src/core/kernels.ts';
import { quantizeGgml } from '../../src/core/quantize-ggml.ts';
import { getFormat } from '../../src/formats/index.ts';
import { gguf, writeGguf, GGUFValueType as V } from '../../src/formats/gguf.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { parseStrategySpec } from '../../src/merges/index.ts';
import { mergeIntoFirst, skeletonOf } from '../../src/merges/merge-into-first.ts';
import type { TensorReport } from '../../src/merges/merge-files.ts';

const t = suite('mergeIntoFirst (library)');

async function mergeBytes(id: string, files: Uint8Array[]): Promise<{ bytes: Uint8Array; reports: TensorReport[] }> {
  const format = getFormat(id);
  const skeleton = await skeletonOf(await format.open(readerFromBytes(files[0], 'a')));
  const readers = await Promise.all(files.map((f, i) => format.open(readerFromBytes(f, `m${i}`))));
  const sink = memorySink();
  const reports: TensorReport[] = [];
  await mergeIntoFirst({ models: readers.map((reader, i) => ({ reader, label: `m${i}` })), choice: parseStrategySpec('average'), kernels: await getKernels(), format, skeleton, sink, onReport: (r) => reports.push(r) });
  return { bytes: sink.bytes(), reports };
}

/** Q8_0 by hand: per 32 values an f16 scale and 32 int8 codes. */
function q8(b: Uint8Array): Float32Array {
  const out = new Float32Array((b.length / 34) * 32);
  for (let k = 0; k < b.length / 34; k++) {
    const h = b[34 * k] | (b[34 * k + 1] << 8);
    const e = (h >> 10) & 31;
    const d = (h & 0x8000 ? -1 : 1) * (e ? (1 + (h & 1023) / 1024) * 2 ** (e - 15) : (h & 1023) * 2 ** -24);
    for (let j = 0; j < 32; j++) out[32 * k + j] = d * ((b[34 * k + 2 + j] << 24) >> 24);
  }
  return out;
}

const vals = (n: number, seed: number, bump: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5 + (i % 3 === 0 ? bump : 0));

async function ggufFile(bump: number): Promise<Uint8Array> {
  const s = memorySink();
  await writeGguf([
    { name: 'w.q8', dtype: 'U8', shape: [2, 68], data: quantizeGgml('Q8_0', vals(128, 1, bump)), ggmlType: 8, dims: [64, 2] },
    { name: 'w.f32', dtype: 'F32', shape: [8], data: new Uint8Array(vals(8, 2, bump).buffer) },
  ] as (TensorToWrite & { ggmlType?: number; dims?: number[] })[], s, { kv: [{ key: 'general.architecture', type: V.STRING, value: 'llama' }, { key: 'llama.block_count', type: V.UINT32, value: 1 }], alignment: 32 });
  return s.bytes();
}

t('a safetensors self-merge is byte-identical, __metadata__ and header order included', async () => {
  const s = memorySink();
  await getFormat('safetensors').write([
    { name: 'z', dtype: 'F16', shape: [4], data: new Uint8Array([0, 60, 0, 61, 0, 62, 0, 63]) },
    { name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) },
  ], s, { metadata: { format: 'pt' } });
  const { bytes, reports } = await mergeBytes('safetensors', [s.bytes(), s.bytes()]);
  assert.equal(bytes, s.bytes());
  assert.equal(reports.map((r) => r.how), ['identical', 'identical']);
});

t('GGUF fine-tunes: the header of the first, Q8_0 requantized within the reported error', async () => {
  const [a, b] = [await ggufFile(0), await ggufFile(0.2)];
  const { bytes, reports } = await mergeBytes('gguf', [a, b]);
  assert.is(bytes.length, a.length);
  const [ha, hm] = [(await gguf.open(readerFromBytes(a, 'a'))).header, (await gguf.open(readerFromBytes(bytes, 'm'))).header];
  assert.equal(hm.kv, ha.kv);
  assert.equal(hm.tensors, ha.tensors);
  const at = hm.dataStart + hm.tensors[0].offset;
  const got = q8(bytes.subarray(at, at + 136));
  const [xa, xb] = [q8(a.subarray(at, at + 136)), q8(b.subarray(at, at + 136))];
  const r = reports.find((x) => x.name === 'w.q8')!;
  assert.is(r.scheme, 'ggml:Q8_0');
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - (xa[i] + xb[i]) / 2));
  assert.ok(max <= r.maxError! + 1e-7 && max > 0 && max < 0.01, `max error ${max}, reported ${r.maxError}`);
});

t.run();
