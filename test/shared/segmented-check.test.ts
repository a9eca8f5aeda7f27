// Clean's recipe check by segments (theta/segmented-check.ts): a new version with a few changed
// tensors is checked without reading back the unchanged tensors' objects, and anything the
// segments cannot vouch for falls back to the whole-file rebuild, which still decides.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { memorySink, readerFromBytes, type ByteReader } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { gguf } from '../../src/formats/gguf.ts';
import { npz } from '../../src/formats/numpy.ts';
import { pytorch } from '../../src/formats/pytorch.ts';
import type { CheckpointFormat } from '../../src/formats/types.ts';
import { cleanCheckpoint } from '../../src/theta/clean.ts';
import { inputDigest } from '../../src/theta/exact.ts';
import { entryObjects, type ModelMetadata } from '../../src/theta/metadata.ts';
import { segmentedInput } from '../../src/theta/segmented-check.ts';
import { getUpdateType, registerUpdateType } from '../../src/updates/registry.ts';
import { smudgeCheckpoint } from '../../src/theta/smudge.ts';
import { countingStore, lcgFloats } from './test-data.ts';

const test = suite('recipe check by segments');

// 16 KiB and more per tensor: every one is an object file, not inline in the metadata
const SHAPES: Record<string, number[]> = { 'a.weight': [64, 64], 'b.weight': [64, 80], 'c.bias': [4096], 'd.weight': [32, 128] };

function tensors(changed: Set<string> = new Set()) {
  return Object.entries(SHAPES).map(([name, shape], i) => {
    const f = lcgFloats(shape.reduce((x, y) => x * y, 1), i + 1);
    if (changed.has(name)) for (let k = 0; k < f.length; k += 7) f[k] += 0.5;
    return { name, dtype: 'F32' as const, shape, data: new Uint8Array(f.buffer) };
  });
}

async function file(format: CheckpointFormat, changed?: Set<string>): Promise<Uint8Array> {
  const sink = memorySink();
  await format.write(tensors(changed), sink);
  return sink.bytes();
}


/** Clean as the filter does: the reader wrapped for segments, the input hashed whole for the fallback. */
async function clean(format: CheckpointFormat, bytes: Uint8Array, previous: ModelMetadata | null, store: ReturnType<typeof countingStore>['store'], wrapFormat = format, reread?: Uint8Array) {
  const kernels = await getKernels();
  const segments = segmentedInput(readerFromBytes(bytes), kernels);
  const checks: string[] = [];
  let digests = 0;
  const readsAt: number[] = [];
  const meta = await cleanCheckpoint({
    reader: await format.open(segments.reader), previous, store, kernels, fileSize: bytes.length, format: wrapFormat, segments,
    // the input read again at an offset (as `git theta add` reads its file): changed tensors only
    readAt: async (offset, length) => { readsAt.push(offset); return (reread ?? bytes).slice(offset, offset + length); },
    // the whole input's hash taken only when asked for (as `git theta add` re-reads its file)
    input: async () => ({ size: bytes.length, digest: async () => { digests++; const d = inputDigest(kernels); d.update(bytes); return d.digest(); } }),
    onRecipeCheck: (how) => checks.push(how),
  });
  return { meta, checks, digests, readsAt };
}

async function smudge(meta: ModelMetadata, format: CheckpointFormat, store: ReturnType<typeof countingStore>['store']): Promise<Uint8Array> {
  const sink = memorySink();
  await smudgeCheckpoint({ metadata: meta, format, store, kernels: await getKernels(), sink });
  return sink.bytes();
}

const objectsOf = (meta: ModelMetadata, names: string[]) => new Set(names.flatMap((n) => entryObjects(meta.tensors[n]).map((r) => r.oid)));

for (const format of [safetensors, gguf] as CheckpointFormat[]) {
  test(`${format.id}: a new version is checked without reading back its unchanged tensors' objects`, async () => {
    const { store, reads } = countingStore();
    const v1 = await clean(format, await file(format), null, store);
    assert.equal(v1.checks, ['segments'], 'a first version is stored dense: known by its content hashes');
    assert.equal(reads, [], 'nothing is read back for a first version');
    const changed = new Set(['b.weight']);
    const bytes2 = await file(format, changed);
    reads.length = 0;
    const v2 = await clean(format, bytes2, v1.meta, store);
    assert.equal(v2.checks, ['segments']);
    assert.is(v2.digests, 0, 'the input is not hashed whole when the segments agree');
    const unchanged = objectsOf(v1.meta, ['a.weight', 'c.bias', 'd.weight']);
    assert.is(unchanged.size, 3);
    assert.equal(reads.filter((oid) => unchanged.has(oid)), [], 'no object of an unchanged tensor is read');
    assert.equal(await smudge(v2.meta, format, store), bytes2, 'the version checked by segments comes back exactly');
  });
}

test('the same metadata as without segments, and a re-add of the same bytes reads no tensor object', async () => {
  const kernels = await getKernels();
  const { store, reads } = countingStore();
  const v1 = await clean(safetensors, await file(safetensors), null, store);
  const bytes2 = await file(safetensors, new Set(['a.weight', 'd.weight']));
  const withSegments = await clean(safetensors, bytes2, v1.meta, store);
  const plain = await cleanCheckpoint({ reader: await safetensors.open(readerFromBytes(bytes2)), previous: v1.meta, store, kernels, fileSize: bytes2.length });
  assert.equal(withSegments.meta, plain);
  // a.weight and d.weight changed: only they are read again, at their offsets in the file
  const header = 8 + Number(new DataView(bytes2.buffer, bytes2.byteOffset).getBigUint64(0, true));
  assert.equal(withSegments.readsAt, [header, header + (64 * 64 + 64 * 80 + 4096) * 4]);
  reads.length = 0;
  const again = await clean(safetensors, bytes2, withSegments.meta, store);
  assert.equal(again.checks, ['segments']);
  assert.equal(reads.filter((oid) => objectsOf(withSegments.meta, Object.keys(SHAPES)).has(oid)), []);
});

test('formats the segments cannot vouch for are checked whole, and still come back exactly', async () => {
  // numpy byte-swaps big-endian arrays; zips compute CRC-32s over the tensors' bytes
  for (const format of [npz, pytorch] as CheckpointFormat[]) {
    const { store } = countingStore();
    const v1 = await clean(format, await file(format), null, store);
    const bytes2 = await file(format, new Set(['c.bias']));
    const v2 = await clean(format, bytes2, v1.meta, store);
    assert.equal(v2.checks, ['whole'], format.id);
    assert.equal(await smudge(v2.meta, format, store), bytes2, `${format.id} comes back exactly`);
  }
});

test('a changed tensor whose bytes read again are not the ones that streamed past is E_CHANGED_WHILE_READ', async () => {
  const { store, v1, bytes2 } = await twoVersions(['b.weight']);
  const other = bytes2.slice();
  other[other.length - 1] ^= 1; // the file as it is when read again: d.weight's last byte written meanwhile
  const ok = await clean(safetensors, bytes2, v1.meta, store, safetensors, other);
  assert.equal(ok.readsAt.length, 1, 'b.weight read again, from a part that did not change');
  const v3 = await file(safetensors, new Set(['d.weight']));
  const later = v3.slice();
  later[later.length - 1] ^= 1;
  const e = await clean(safetensors, v3, v1.meta, store, safetensors, later).then(() => null, (x) => x);
  assert.is(e?.code, 'E_CHANGED_WHILE_READ');
  assert.match(e.message, /tensor 'd\.weight' changed while it was being read/);
});

test('a step type whose rebuild is wrong fails the check: only dense and unchanged tensors are taken on trust', async () => {
  // encodes like dense but gives back other bytes: a bug in an update type's arithmetic
  registerUpdateType({
    name: 'test-off-by-one', incremental: false, description: 'test only',
    async encode(ctx) { return { update: 'test-off-by-one', object: await ctx.store.put(ctx.next) }; },
    async apply(step, _prev, ctx) { const b = (await ctx.store.get((step.object as { oid: string }).oid)).slice(); b[0] ^= 1; return b; },
  });
  const kernels = await getKernels();
  const { store } = countingStore();
  const v1 = await clean(safetensors, await file(safetensors), null, store);
  const bytes = await file(safetensors, new Set(['b.weight']));
  const segments = segmentedInput(readerFromBytes(bytes), kernels);
  const e = await cleanCheckpoint({
    reader: await safetensors.open(segments.reader), previous: v1.meta, store, kernels, fileSize: bytes.length, format: safetensors, segments,
    updateType: 'test-off-by-one',
    input: async () => { const d = inputDigest(kernels); d.update(bytes); return { size: d.size, digest: d.digest() }; },
  }).then(() => null, (x) => x);
  assert.is(e?.code, 'E_NOT_EXACT');
});

test('a plug-in registered under the name dense is not taken on trust', async () => {
  const builtIn = getUpdateType('dense');
  registerUpdateType({ ...builtIn, async apply(step, prev, ctx) { const b = (await builtIn.apply(step, prev, ctx)).slice(); b[1] ^= 1; return b; } });
  try {
    const { store } = countingStore();
    const e = await clean(safetensors, await file(safetensors), null, store).then(() => null, (x) => x);
    assert.is(e?.code, 'E_NOT_EXACT');
  } finally {
    registerUpdateType(builtIn);
  }
});

/** A store holding a first version, and the bytes of a second with `changed` tensors changed. */
async function twoVersions(changed: string[]) {
  const { store } = countingStore();
  const v1 = await clean(safetensors, await file(safetensors), null, store);
  return { store, v1, bytes2: await file(safetensors, new Set(changed)) };
}

/** safetensors with another rebuild (the recipe check runs the format it is given). */
const withRebuild = (rebuild: CheckpointFormat['rebuild']): CheckpointFormat => ({ ...safetensors, rebuild });

test('a rebuild that puts a byte wrong fails the check (E_NOT_EXACT), though every tensor is unchanged', async () => {
  const { store, v1, bytes2 } = await twoVersions(['c.bias']);
  // the rebuild writes one header byte differently: the segments disagree and so does the whole file
  const broken = withRebuild((skeleton, tensor, sink) => safetensors.rebuild(skeleton, tensor, {
    write: (b) => { if (b === skeleton) { const c = b.slice(); c[c.length - 1] ^= 1; return sink.write(c); } return sink.write(b); },
    close: () => sink.close(),
  }));
  const e = await clean(safetensors, bytes2, v1.meta, store, broken).then(() => null, (x) => x);
  assert.is(e?.code, 'E_NOT_EXACT');
});

test('a rebuild that puts two unchanged tensors in each other\'s place fails the check', async () => {
  // a.weight [64,64] and d.weight [32,128] have the same size: swapped, every length still fits
  const { store, v1, bytes2 } = await twoVersions(['b.weight']);
  const swap: Record<string, string> = { 'a.weight': 'd.weight', 'd.weight': 'a.weight' };
  const swapped = withRebuild((skeleton, tensor, sink) => safetensors.rebuild(skeleton, (n) => tensor(swap[n] ?? n), sink));
  const e = await clean(safetensors, bytes2, v1.meta, store, swapped).then(() => null, (x) => x);
  assert.is(e?.code, 'E_NOT_EXACT');
});

test('a rebuild that copies tensor bytes into buffers of its own is right: the whole-file check passes it', async () => {
  const { store, v1, bytes2 } = await twoVersions(['c.bias']);
  const copying = withRebuild((skeleton, tensor, sink) => safetensors.rebuild(skeleton, tensor, { write: (b) => sink.write(b.slice()), close: () => sink.close() }));
  const v2 = await clean(safetensors, bytes2, v1.meta, store, copying);
  assert.equal(v2.checks, ['whole']);
  assert.is(v2.digests, 1, 'the whole input hashed once, for the fallback');
  assert.equal(await smudge(v2.meta, safetensors, store), bytes2);
});

test('segmentedInput: structure and tensor runs; a run whose consumed bytes differ from those handed out gives no digest', async () => {
  const kernels = await getKernels();
  const bytes = new Uint8Array(100).map((_, i) => i);
  const digestOf = async (read: (r: ByteReader, s: ReturnType<typeof segmentedInput>) => Promise<void>) => {
    const s = segmentedInput(readerFromBytes(bytes), kernels);
    await read(s.reader, s);
    return s.digest();
  };
  const h = kernels.contentHash(bytes.subarray(10, 50));
  const a = await digestOf(async (r, s) => { await r.readExactly(10); s.beginTensor(); await r.readExactly(40); s.endTensor(40, h); await r.skip(50); });
  const b = await digestOf(async (r, s) => { await r.readUpTo(10); s.beginTensor(); await r.readExactly(20); await r.readExactly(20); s.endTensor(40, h); await r.readExactly(50); });
  assert.type(a, 'string');
  assert.is(a, b, 'the same segments however the reads are cut');
  const moved = await digestOf(async (r, s) => { await r.readExactly(12); s.beginTensor(); await r.readExactly(38); s.endTensor(38, h); await r.readExactly(50); });
  assert.is.not(moved, a, 'a run at another place is another digest');
  const inflated = await digestOf(async (r, s) => { await r.readExactly(10); s.beginTensor(); await r.readExactly(20); s.endTensor(40, h); await r.readExactly(70); });
  assert.is(inflated, null);
  const open = await digestOf(async (r, s) => { s.beginTensor(); await r.readExactly(5); });
  assert.is(open, null, 'a run that never ended');
});

test.run();
