// The objects a clean just wrote, kept for its recipe check (theta/recent-objects.ts): handed over
// once without a copy, then read from the store; what a caller does to the bytes it was handed
// never changes what a later read returns; partial reads copy; the budget is respected.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createMemoryStore } from '../../src/store/memory.ts';
import { withRecentObjects } from '../../src/theta/recent-objects.ts';

const test = suite('recent objects');

function counting() {
  const store = createMemoryStore();
  const reads: string[] = [];
  return {
    reads,
    store: {
      put: (b: Uint8Array) => store.put(b),
      get: (oid: string) => { reads.push(oid); return store.get(oid); },
      readRanges: (oid: string, rs: { offset: number; length: number }[]) => { reads.push(oid); return store.readRanges!(oid, rs); },
    },
  };
}

test('a kept object is handed over once, then read from the store; changing it changes nothing stored', async () => {
  const { store, reads } = counting();
  const r = withRecentObjects(store);
  const buf = new Uint8Array([1, 2, 3, 4, 5]);
  const ref = await r.put(buf);
  buf[0] = 99; // the caller reuses its buffer: the kept copy is its own
  const first = await r.get(ref.oid);
  assert.equal([...first], [1, 2, 3, 4, 5]);
  assert.equal(reads, [], 'answered from memory');
  first[1] = 77; // applied in place by an update type
  const second = await r.get(ref.oid);
  assert.equal([...second], [1, 2, 3, 4, 5], 'the store has the bytes that were put');
  assert.equal(reads, [ref.oid], 'the second read went to the store');
});

test('partial ranges are copies and keep the object; a whole-object range hands it over', async () => {
  const { store, reads } = counting();
  const r = withRecentObjects(store);
  const ref = await r.put(new Uint8Array([10, 11, 12, 13]));
  const [part] = await r.readRanges!(ref.oid, [{ offset: 1, length: 2 }]);
  part[0] = 0;
  const [whole] = await r.readRanges!(ref.oid, [{ offset: 0, length: 4 }]);
  assert.equal([...whole], [10, 11, 12, 13]);
  assert.equal(reads, []);
  await r.readRanges!(ref.oid, [{ offset: 0, length: 4 }]);
  assert.equal(reads, [ref.oid]);
});

test('objects past the budget are not kept', async () => {
  const { store, reads } = counting();
  const r = withRecentObjects(store, { maxObject: 4, maxTotal: 6 });
  const a = await r.put(new Uint8Array([1, 2, 3, 4]));
  const big = await r.put(new Uint8Array([1, 2, 3, 4, 5]));
  const b = await r.put(new Uint8Array([5, 6, 7])); // 4 + 3 > 6
  await r.get(a.oid);
  assert.equal(reads, []);
  await r.get(big.oid);
  await r.get(b.oid);
  assert.equal(reads, [big.oid, b.oid]);
});

test.run();
