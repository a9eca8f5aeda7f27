// Tensors holding infinities, NaN and values near float32's limit (attention masks of -inf,
// diverged weights) are stored and
// given back exactly: their metadata stays valid JSON that parses again (no signature for them,
// since inf has no distance), and the next version is stored against them as usual.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { cleanCheckpoint } from '../../src/theta/clean.ts';
import { diffModels, metadataTensors } from '../../src/theta/diff.ts';
import { parseMetadata, serializeMetadata, type ModelMetadata } from '../../src/theta/metadata.ts';
import { smudgeCheckpoint } from '../../src/theta/smudge.ts';
import { lcgFloats } from './test-data.ts';

const test = suite('non-finite values');

async function file(mask: Float32Array, w: Float32Array): Promise<Uint8Array> {
  const sink = memorySink();
  await safetensors.write([
    { name: 'mask', dtype: 'F32', shape: [mask.length], data: new Uint8Array(mask.buffer) },
    { name: 'w', dtype: 'F32', shape: [w.length], data: new Uint8Array(w.buffer) },
  ], sink);
  return sink.bytes();
}

test('inf and NaN: metadata round-trips through JSON, checkout is exact, the next version stores against it', async () => {
  const kernels = await getKernels();
  const store = createMemoryStore();
  const mask = new Float32Array(4096).map((_, i) => (i % 3 ? -Infinity : 0));
  const w = lcgFloats(4096, 5);
  w[17] = NaN;
  for (let i = 1000; i < 3000; i++) w[i] = 3e38; // finite, but their projections overflow float32
  const clean = async (bytes: Uint8Array, previous: ModelMetadata | null) =>
    parseMetadata(serializeMetadata(await cleanCheckpoint({ reader: await safetensors.open(readerFromBytes(bytes)), previous, store, kernels, fileSize: bytes.length })));
  const v1 = await file(mask, w);
  const m1 = await clean(v1, null);
  // a signature has only finite numbers, or is left out (JSON has no inf: it would be written as null)
  for (const n of ['mask', 'w']) assert.ok(m1.tensors[n].lsh.every(Number.isFinite), `${n}: ${m1.tensors[n].lsh}`);
  assert.equal(m1.tensors.w.lsh, [], 'no signature where the projections overflow');
  const sink = memorySink();
  await smudgeCheckpoint({ metadata: m1, format: safetensors, store, kernels, sink });
  assert.equal(sink.bytes(), v1);

  const w2 = w.slice();
  w2[100] += 1;
  const v2 = await file(mask, w2);
  const m2 = await clean(v2, m1);
  assert.equal(m2.tensors.mask, m1.tensors.mask, 'unchanged entry reused');
  assert.is(m2.tensors.w.update, 'sparse');
  const back = memorySink();
  await smudgeCheckpoint({ metadata: m2, format: safetensors, store, kernels, sink: back });
  assert.equal(back.bytes(), v2);
  // an approximate diff cannot estimate these tensors and says so with nulls
  const rows = (m: ModelMetadata) => metadataTensors(m, async () => new Uint8Array(0));
  const d = await diffModels(rows(m1), rows(m2), { kernels, approx: true });
  const row = d.tensors.find((t) => t.name === 'w')!;
  assert.is(row.status, 'modified');
  assert.is(row.l2, null);
});

test.run();
