// Small objects are carried in the metadata (theta/inline-objects.ts): a model of many tiny tensors
// costs a few object files instead of one per tensor, and everything reads them back exactly.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { sha256Hex } from '../../src/core/sha256.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { cleanCheckpoint } from '../../src/theta/clean.ts';
import {
  entryObjects, METADATA_VERSION, METADATA_VERSION_INLINE, parseMetadata, referencedObjects, serializeMetadata, type ModelMetadata, type ObjectRef,
} from '../../src/theta/metadata.ts';
import { fromBase64, INLINE_MAX_BYTES, toBase64 } from '../../src/theta/inline-objects.ts';
import { rebuildTensor } from '../../src/theta/rebuild.ts';
import { mergeThreeWay } from '../../src/merges/three-way.ts';
import { parseStrategySpec } from '../../src/merges/registry.ts';
import { smudgeCheckpoint } from '../../src/theta/smudge.ts';
import { lcgFloats } from './test-data.ts';

const test = suite('inline objects');

// element counts: 1 (4 B), 64 (256 B), exactly INLINE_MAX_BYTES, one element past it, 16 KiB
const SIZES: Record<string, number> = { scalar: 1, bias: 64, edge: INLINE_MAX_BYTES / 4, over: INLINE_MAX_BYTES / 4 + 1, kernel: 4096 };

function tensors(seed: number, change: (name: string, f: Float32Array) => void = () => {}) {
  return Object.entries(SIZES).map(([name, n], i) => {
    const f = lcgFloats(n, seed * 10 + i);
    change(name, f);
    return { name, dtype: 'F32' as const, shape: [n], data: new Uint8Array(f.buffer) };
  });
}

async function file(ts: ReturnType<typeof tensors>): Promise<Uint8Array> {
  const sink = memorySink();
  await safetensors.write(ts, sink);
  return sink.bytes();
}

async function clean(bytes: Uint8Array, previous: ModelMetadata | null, store: ReturnType<typeof createMemoryStore>, inlineMax?: number) {
  const kernels = await getKernels();
  return cleanCheckpoint({ reader: await safetensors.open(readerFromBytes(bytes)), previous, store, kernels, fileSize: bytes.length, inlineMax });
}

async function smudge(meta: ModelMetadata, store: ReturnType<typeof createMemoryStore>): Promise<Uint8Array> {
  const sink = memorySink();
  await smudgeCheckpoint({ metadata: meta, format: safetensors, store, kernels: await getKernels(), sink });
  return sink.bytes();
}

async function storedIds(store: ReturnType<typeof createMemoryStore>): Promise<string[]> {
  const out: string[] = [];
  for await (const oid of store.list()) out.push(oid);
  return out.sort();
}

const denseRef = (meta: ModelMetadata, name: string) => meta.tensors[name].chain[0].object as ObjectRef;

test('tensors of at most INLINE_MAX_BYTES are carried in the metadata, the rest are objects; the file comes back exactly', async () => {
  const store = createMemoryStore();
  const bytes = await file(tensors(1));
  const meta = await clean(bytes, null, store);
  for (const name of ['scalar', 'bias', 'edge']) {
    const ref = denseRef(meta, name);
    assert.type(ref.data, 'string', `${name} is inline`);
    assert.equal(fromBase64(ref.data!), tensors(1).find((t) => t.name === name)!.data, `${name}'s inline bytes`);
    assert.is(ref.oid, await sha256Hex(fromBase64(ref.data!)), 'an inline reference keeps its SHA-256');
  }
  for (const name of ['over', 'kernel']) assert.is(denseRef(meta, name).data, undefined, `${name} is an object`);
  // the store holds the skeleton and the two larger tensors only
  const expected = [meta.skeleton.oid, denseRef(meta, 'over').oid, denseRef(meta, 'kernel').oid].sort();
  assert.equal(await storedIds(store), expected);
  assert.equal(referencedObjects(meta).map((r) => r.oid).sort(), expected, 'push, fetch, gc and fsck ask for stored objects only');
  assert.equal(entryObjects(meta.tensors.bias), []);

  const text = serializeMetadata(meta);
  assert.ok(text.startsWith(`{\n "git-theta": ${METADATA_VERSION_INLINE},`), 'a document with inline objects has version 3');
  const back = parseMetadata(text);
  assert.equal(await smudge(back, store), bytes, 'byte-identical after a serialize/parse round trip');
});

test('with inlineMax 0 every tensor is an object and the document keeps version 1', async () => {
  const store = createMemoryStore();
  const bytes = await file(tensors(2));
  const meta = await clean(bytes, null, store, 0);
  for (const name of Object.keys(SIZES)) assert.is(denseRef(meta, name).data, undefined);
  assert.is((await storedIds(store)).length, Object.keys(SIZES).length + 1);
  assert.ok(serializeMetadata(meta).startsWith(`{\n "git-theta": ${METADATA_VERSION},`));
  assert.equal(await smudge(meta, store), bytes);
});

test('a changed small tensor: its sparse step carries its objects inline too, and rebuilds exactly', async () => {
  const store = createMemoryStore();
  const kernels = await getKernels();
  const v1 = await clean(await file(tensors(3)), null, store);
  const before = (await storedIds(store)).length;
  const t2 = tensors(3, (name, f) => { if (name === 'edge') f[7] += 1; });
  const bytes2 = await file(t2);
  const v2 = await clean(bytes2, v1, store);
  assert.is(v2.tensors.edge.update, 'sparse');
  const step = v2.tensors.edge.chain[1];
  for (const k of ['indices', 'values']) assert.type((step[k] as ObjectRef).data, 'string', `sparse ${k} inline`);
  // the only new object is the skeleton (unchanged here, so none at all)
  assert.is((await storedIds(store)).length, before, 'no object file for a one-element change of a small tensor');
  assert.equal(await rebuildTensor('edge', parseMetadata(serializeMetadata(v2)).tensors.edge, store, kernels), t2[2].data);
  assert.equal(await smudge(v2, store), bytes2);
});

test('damaged inline data: a wrong length is refused when parsing, wrong bytes when rebuilding', async () => {
  const store = createMemoryStore();
  const kernels = await getKernels();
  const meta = await clean(await file(tensors(4)), null, store);
  const text = serializeMetadata(meta);
  const data = denseRef(meta, 'bias').data!;
  try {
    parseMetadata(text.replace(data, data.slice(4)));
    assert.unreachable('a short inline object was accepted');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_METADATA');
  }
  // same length, other bytes: only the SHA-256 can tell
  const raw = fromBase64(data);
  raw[0] ^= 1;
  const tampered = parseMetadata(text.replace(data, toBase64(raw)));
  try {
    await rebuildTensor('bias', tampered.tensors.bias, store, kernels);
    assert.unreachable('tampered inline bytes were accepted');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_OBJECT_CORRUPT');
    assert.match((e as Error).message, /bias/);
  }
});

test('a merged small tensor is carried inline too, and rebuilds to the merged values', async () => {
  const store = createMemoryStore();
  const kernels = await getKernels();
  const base = await clean(await file(tensors(5)), null, store);
  const ours = await clean(await file(tensors(5, (n, f) => { if (n === 'bias') f[0] = 1; })), base, store);
  const theirs = await clean(await file(tensors(5, (n, f) => { if (n === 'bias') f[1] = 3; })), base, store);
  const before = (await storedIds(store)).length;
  await import('../../src/merges/index.ts');
  const r = await mergeThreeWay({ base, ours, theirs, store, kernels, choose: () => parseStrategySpec('average') });
  const bias = r.tensors.bias;
  assert.type((bias.chain[0].object as ObjectRef).data, 'string', 'inline');
  assert.is((await storedIds(store)).length, before, 'no object file for the merged bias');
  const got = new Float32Array((await rebuildTensor('bias', bias, store, kernels)).buffer);
  const o = new Float32Array((await rebuildTensor('bias', ours.tensors.bias, store, kernels)).buffer);
  const t = new Float32Array((await rebuildTensor('bias', theirs.tensors.bias, store, kernels)).buffer);
  for (let i = 0; i < got.length; i++) {
    const want = (o[i] + t[i]) / 2;
    assert.ok(Math.abs(got[i] - want) <= 1e-6 * Math.abs(want) + 1e-7, `element ${i}: ${got[i]} vs ${want}`);
  }
});

test('base64 helpers round-trip every byte value and lengths around the padding', () => {
  for (const n of [0, 1, 2, 3, 4, 255, 256, 1024, 70000]) {
    const b = new Uint8Array(n).map((_, i) => (i * 37 + n) & 255);
    const s = toBase64(b);
    assert.is(s.length, 4 * Math.ceil(n / 3));
    assert.equal(fromBase64(s), b);
  }
});

test.run();
