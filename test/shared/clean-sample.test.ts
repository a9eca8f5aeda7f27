// `auto` tells a tensor rewritten everywhere (a full fine-tune) from a sparsely changed one by a
// sample of its previous object: rewritten tensors are stored dense without reading the old object,
// sparsely changed ones still get the sparse encoding, and both round-trip exactly.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { readerFromBytes } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { cleanCheckpoint, rewrittenEverywhere, SAMPLE_MIN_BYTES } from '../../src/theta/clean.ts';
import type { ModelMetadata } from '../../src/theta/metadata.ts';
import { rebuildTensor } from '../../src/theta/rebuild.ts';
import { memorySink } from '../../src/core/io.ts';
import { lcgFloats } from './test-data.ts';

const test = suite('clean: rewritten tensors');
const N = (SAMPLE_MIN_BYTES / 4) * 2; // 2 MiB of f32

const floats = (seed: number) => lcgFloats(N, seed);

async function file(w: Float32Array): Promise<Uint8Array> {
  const sink = memorySink();
  await safetensors.write([{ name: 'w', dtype: 'F32', shape: [N], data: new Uint8Array(w.buffer) }], sink);
  return sink.bytes();
}

async function clean(bytes: Uint8Array, previous: ModelMetadata | null, store: ReturnType<typeof createMemoryStore>) {
  const kernels = await getKernels();
  const reader = await safetensors.open(readerFromBytes(bytes));
  const gets: string[] = [];
  const counting = { put: (b: Uint8Array) => store.put(b), get: (oid: string) => { gets.push(oid); return store.get(oid); }, readRanges: store.readRanges!.bind(store) };
  const meta = await cleanCheckpoint({ reader, previous, store: counting, kernels, fileSize: bytes.length });
  return { meta, gets };
}

test('a rewritten tensor is stored dense without reading its old object; a sparse change still reads it and stores sparse', async () => {
  const store = createMemoryStore();
  const kernels = await getKernels();
  const v1 = floats(1);
  const a = await clean(await file(v1), null, store);
  const v2 = floats(2); // every element new
  const b = await clean(await file(v2), a.meta, store);
  assert.is(b.meta.tensors.w.update, 'dense');
  assert.is(b.meta.tensors.w.chain.length, 1);
  assert.equal(b.gets, [], 'the old object was not read');
  const v3 = v2.slice();
  for (let i = 0; i < 100; i++) v3[i * 5000] += 1;
  const c = await clean(await file(v3), b.meta, store);
  assert.is(c.meta.tensors.w.update, 'sparse');
  assert.ok(c.gets.length >= 1, 'the old object was read to find the changed elements');
  const back = await rebuildTensor('w', c.meta.tensors.w, store, kernels);
  assert.ok(new Uint8Array(v3.buffer).every((x, i) => x === back[i]), 'exact');

  // half the elements unchanged: the sample sees them, and sparse is tried (and here wins on size)
  const half = v3.slice();
  for (let i = 0; i < N; i += 2) half[i] += 1;
  assert.is(await rewrittenEverywhere(store, b.meta.tensors.w, new Uint8Array(half.buffer), 4), false);
  assert.is(await rewrittenEverywhere(store, b.meta.tensors.w, new Uint8Array(floats(9).buffer), 4), true);
  assert.is(await rewrittenEverywhere({ put: store.put.bind(store), get: store.get.bind(store) }, b.meta.tensors.w, new Uint8Array(floats(9).buffer), 4), false, 'no partial reads, no sample');
});

test.run();
