// Checkout's reads of local objects (src/theta/local-reads.ts): a single-dense tensor's object is
// read without SHA-256 but still checked, by the content hash its metadata records; anything else
// (objects not local, chains, skeletons) goes through the store's verified get.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { contentCheckedReads } from '../../src/theta/local-reads.ts';
import type { ModelMetadata } from '../../src/theta/metadata.ts';
import type { UpdateStore } from '../../src/updates/types.ts';

const test = suite('local reads');

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

async function setup() {
  const kernels = await getKernels();
  const mem = createMemoryStore();
  const data = bytes(4096, 7);
  const ref = await mem.put(data);
  const skeleton = await mem.put(bytes(16, 3));
  const metadata: ModelMetadata = {
    format: 'safetensors', skeleton, size: 4112,
    tensors: { w: { dtype: 'U8', shape: [4096], bytes: 4096, hash: kernels.contentHash(data), lsh: [], update: 'dense', chain: [{ update: 'dense', object: ref }] } },
  };
  const calls = { get: [] as string[], ranges: [] as string[] };
  // a store that hands out `served` on ranged reads and records which path each read took
  let served: Uint8Array | null = data;
  const store: UpdateStore = {
    put: (b) => mem.put(b),
    get: (oid) => { calls.get.push(oid); return mem.get(oid); },
    readRanges: async (oid, r) => {
      calls.ranges.push(oid);
      if (!served) throw Object.assign(new Error('not here'), { code: 'E_OBJECT_MISSING' });
      return r.map(({ offset, length }) => served!.subarray(offset, offset + length));
    },
  };
  return { kernels, data, ref, skeleton, metadata, calls, store, serve: (b: Uint8Array | null) => { served = b; } };
}

test('a dense tensor object is read by range (no SHA-256 pass) and comes back whole', async () => {
  const s = await setup();
  const got = await contentCheckedReads(s.store, s.metadata, s.kernels).get(s.ref.oid);
  assert.equal([...got], [...s.data]);
  assert.equal(s.calls.ranges, [s.ref.oid]);
  assert.equal(s.calls.get, [], 'the verified (SHA-256) read was not needed');
});

test('changed bytes in a local object are E_OBJECT_CORRUPT naming the tensor and the object', async () => {
  const s = await setup();
  const bad = s.data.slice();
  bad[100] ^= 0x40;
  s.serve(bad);
  try {
    await contentCheckedReads(s.store, s.metadata, s.kernels).get(s.ref.oid);
    assert.unreachable('a corrupt object was accepted');
  } catch (e) {
    const err = e as { code?: string; message: string };
    assert.is(err.code, 'E_OBJECT_CORRUPT');
    assert.match(err.message, /'w'/);
    assert.match(err.message, s.ref.oid);
  }
});

test('an object that is not local, or a skeleton, takes the verified path', async () => {
  const s = await setup();
  s.serve(null);
  const reads = contentCheckedReads(s.store, s.metadata, s.kernels);
  const got = await reads.get(s.ref.oid);
  assert.equal([...got], [...s.data]);
  assert.equal(s.calls.get, [s.ref.oid], 'fell back to the store\'s verified get');
  await reads.get(s.skeleton.oid);
  assert.equal(s.calls.get, [s.ref.oid, s.skeleton.oid]);
});

test.run();
