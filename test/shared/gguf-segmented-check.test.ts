// GGUF through clean's recipe check by segments (theta/segmented-check.ts): the header parse's
// read-ahead is given back to the segmented input (`unread`), so the first tensor's bytes count
// as its own and the reader's position before each tensor is that tensor's offset in the file
// (where `readAt` reads a changed tensor again). Float and quantized (Q8_0, Q4_K) tensors, headers
// smaller and larger than the 64 KiB read-ahead, and the cases the segments must not vouch for.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { memorySink, readerFromBytes, type ByteReader } from '../../src/core/io.ts';
import { gguf, encodeGgufHeader, GGML_TYPE_BY_NAME, GGUFValueType, type GGUFKeyValue } from '../../src/formats/gguf.ts';
import type { CheckpointFormat } from '../../src/formats/types.ts';
import { quantizeGgml } from '../../src/core/quantize-ggml.ts';
import { quantizeGgmlK } from '../../src/core/quantize-ggml-k.ts';
import { cleanCheckpoint } from '../../src/theta/clean.ts';
import { inputDigest } from '../../src/theta/exact.ts';
import { entryObjects, type ModelMetadata } from '../../src/theta/metadata.ts';
import { segmentedInput, STRUCTURE_WINDOW } from '../../src/theta/segmented-check.ts';
import { smudgeCheckpoint } from '../../src/theta/smudge.ts';
import { countingStore, lcgFloats } from './test-data.ts';

const test = suite('GGUF: recipe check by segments');

/** ggml type name, dims (ggml order), per tensor; the first in the file is a quantized one. */
const LAYOUT: [string, string, number[]][] = [
  ['blk.0.attn_q.weight', 'Q8_0', [256, 64]],
  ['blk.0.attn_norm.weight', 'F32', [256]],
  ['blk.0.ffn_up.weight', 'Q4_K', [256, 64]],
  ['blk.0.ffn_down.weight', 'F16', [64, 256]],
  ['output.weight', 'F32', [64, 64]],
  ['blk.0.attn_k.weight', 'F16', [256, 32]],
];

/** Valid half floats (no NaN or infinity) from a seed. */
function halfs(n: number, seed: number): Uint8Array {
  const f = lcgFloats(n, seed);
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) h[i] = (f[i] < 0 ? 0x8000 : 0) | ((1 + Math.floor(Math.abs(f[i]) * 56)) << 10) | ((i * 37) & 0x3ff);
  return new Uint8Array(h.buffer);
}

function tensorBytes(type: string, dims: number[], seed: number, changed: boolean): Uint8Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const f = lcgFloats(n, seed);
  if (changed) for (let k = 0; k < n; k += 5) f[k] += 0.25;
  if (type === 'F32') return new Uint8Array(f.buffer);
  if (type === 'F16') {
    const h = halfs(n, seed);
    if (changed) for (let k = 0; k < h.length; k += 11) h[k] ^= 1;
    return h;
  }
  return type === 'Q8_0' ? quantizeGgml(type, f) : quantizeGgmlK(type, f);
}

/**
 * A GGUF file of LAYOUT: a header with `vocab` tokens in a string array (0: a small header; a few
 * thousand: past the 64 KiB the header parse reads at a time), `changed` tensors with other values.
 */
async function file(o: { changed?: string[]; vocab?: number; layout?: typeof LAYOUT } = {}) {
  await getKernels(); // the quantizers run on the kernels
  const layout = o.layout ?? LAYOUT;
  const kv: GGUFKeyValue[] = [{ key: 'general.architecture', type: GGUFValueType.STRING, value: 'llama' }];
  if (o.vocab) {
    kv.push({ key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, value: { type: GGUFValueType.STRING, values: Array.from({ length: o.vocab }, (_, i) => `token-${i}-${'x'.repeat(i % 17)}`) } });
  }
  const specs = layout.map(([name, type, dims]) => ({ name, dims, ggmlType: GGML_TYPE_BY_NAME[type] }));
  const { prefix, offsets, byteLengths } = encodeGgufHeader({ kv, tensors: specs });
  const data = layout.map(([name, type, dims], i) => tensorBytes(type, dims, i + 1, !!o.changed?.includes(name)));
  data.forEach((d, i) => assert.is(d.length, byteLengths[i], layout[i][0]));
  // the file laid out by hand from the header's offsets (zero padding between tensors and after the last)
  const end = offsets[offsets.length - 1] + byteLengths[byteLengths.length - 1];
  const bytes = new Uint8Array(prefix.length + Math.ceil(end / 32) * 32);
  bytes.set(prefix);
  data.forEach((d, i) => bytes.set(d, prefix.length + offsets[i]));
  const at = Object.fromEntries(layout.map(([name], i) => [name, prefix.length + offsets[i]]));
  return { bytes, headerBytes: prefix.length, at };
}

type Store = ReturnType<typeof countingStore>['store'];

/** Clean as `git theta add` does: segmented input, changed tensors read again at their offsets, the whole hash only when asked for. */
async function clean(bytes: Uint8Array, previous: ModelMetadata | null, store: Store, format: CheckpointFormat = gguf, reread?: Uint8Array) {
  const kernels = await getKernels();
  const segments = segmentedInput(readerFromBytes(bytes), kernels);
  const checks: string[] = [];
  const readsAt: number[] = [];
  let digests = 0;
  const meta = await cleanCheckpoint({
    reader: await gguf.open(segments.reader), previous, store, kernels, fileSize: bytes.length, format, segments,
    readAt: async (offset, length) => { readsAt.push(offset); return (reread ?? bytes).slice(offset, offset + length); },
    input: async () => ({ size: bytes.length, digest: async () => { digests++; const d = inputDigest(kernels); d.update(bytes); return d.digest(); } }),
    onRecipeCheck: (how) => checks.push(how),
  });
  return { meta, checks, readsAt, digests };
}

async function smudge(meta: ModelMetadata, store: Store): Promise<Uint8Array> {
  const sink = memorySink();
  await smudgeCheckpoint({ metadata: meta, format: gguf, store, kernels: await getKernels(), sink });
  return sink.bytes();
}

const objectsOf = (meta: ModelMetadata, names: string[]) => new Set(names.flatMap((n) => entryObjects(meta.tensors[n]).map((r) => r.oid)));
const NAMES = LAYOUT.map(([n]) => n);

for (const [what, vocab] of [['a header smaller than the read-ahead', 0], ['a header larger than the read-ahead', 6000]] as const) {
  test(`${what}: v1 and v2 checked by segments, changed tensors read again at their offsets, both come back exactly`, async () => {
    const { store, reads } = countingStore();
    const one = await file({ vocab });
    assert.ok(vocab ? one.headerBytes > 64 << 10 : one.headerBytes < 4096, `header of ${one.headerBytes} bytes`);
    const v1 = await clean(one.bytes, null, store);
    assert.equal(v1.checks, ['segments']);
    assert.equal(reads, [], 'nothing read back for a first version');
    assert.equal(v1.readsAt, [], 'no tensor of a first version is read again');
    // the first tensor in the file (partly in the header's read-ahead), a quantized one, a float one
    const changed = ['blk.0.attn_q.weight', 'blk.0.ffn_up.weight', 'output.weight'];
    const two = await file({ vocab, changed });
    reads.length = 0;
    const v2 = await clean(two.bytes, v1.meta, store);
    assert.equal(v2.checks, ['segments']);
    assert.is(v2.digests, 0, 'the input is not hashed whole');
    assert.equal(v2.readsAt, changed.map((n) => two.at[n]), 'each changed tensor read again at its offset in the file');
    const unchanged = objectsOf(v1.meta, NAMES.filter((n) => !changed.includes(n)));
    assert.is(unchanged.size, 2, 'the two F16 tensors are objects (the 1 KiB norm is carried inline)');
    assert.equal(reads.filter((oid) => unchanged.has(oid)), [], 'no object of an unchanged tensor is read');
    for (const n of NAMES) assert.is(v2.meta.tensors[n].hash === v1.meta.tensors[n].hash, !changed.includes(n), n);
    assert.is(v2.meta.tensors['blk.0.ffn_up.weight'].dtype, 'U8', 'a quantized tensor is its ggml blocks');
    assert.equal(await smudge(v1.meta, store), one.bytes);
    assert.equal(await smudge(v2.meta, store), two.bytes);
  });
}

test('a file smaller than the read-ahead (every tensor in it) is checked by segments and read again at the right place', async () => {
  const layout: typeof LAYOUT = [['a', 'F32', [64]], ['b', 'Q8_0', [64, 2]], ['c', 'F16', [48]]];
  const { store } = countingStore();
  const one = await file({ layout });
  assert.ok(one.bytes.length < 4096);
  const v1 = await clean(one.bytes, null, store);
  const two = await file({ layout, changed: ['a', 'c'] });
  const v2 = await clean(two.bytes, v1.meta, store);
  assert.equal([v1.checks, v2.checks], [['segments'], ['segments']]);
  assert.equal(v2.readsAt, [two.at.a, two.at.c]);
  assert.equal(await smudge(v2.meta, store), two.bytes);
});

/** A first version stored, and the bytes of a second with `changed` tensors changed. */
async function twoVersions(changed: string[], vocab = 0) {
  const { store, reads } = countingStore();
  const v1 = await clean((await file({ vocab })).bytes, null, store);
  return { store, reads, v1, two: await file({ vocab, changed }) };
}

const withRebuild = (rebuild: CheckpointFormat['rebuild']): CheckpointFormat => ({ ...gguf, rebuild });

test('a rebuild that puts a header byte wrong fails the check (E_NOT_EXACT)', async () => {
  const { store, v1, two } = await twoVersions(['output.weight']);
  const broken = withRebuild((skeleton, tensor, sink) => gguf.rebuild(skeleton, tensor, {
    write: (b) => { if (b.buffer === skeleton.buffer && b.byteOffset === skeleton.byteOffset) { const c = b.slice(); c[20] ^= 1; return sink.write(c); } return sink.write(b); },
    close: () => sink.close(),
  }));
  const e = await clean(two.bytes, v1.meta, store, broken).then(() => null, (x) => x);
  assert.is(e?.code, 'E_NOT_EXACT');
});

test('a rebuild that puts two unchanged tensors of the same size in each other\'s place fails the check', async () => {
  // blk.0.ffn_down.weight [64,256] F16 and blk.0.attn_k.weight [256,32] F16: 32 KiB each
  const { store, v1, two } = await twoVersions(['output.weight']);
  const swap: Record<string, string> = { 'blk.0.ffn_down.weight': 'blk.0.attn_k.weight', 'blk.0.attn_k.weight': 'blk.0.ffn_down.weight' };
  const swapped = withRebuild((skeleton, tensor, sink) => gguf.rebuild(skeleton, (n) => tensor(swap[n] ?? n), sink));
  const e = await clean(two.bytes, v1.meta, store, swapped).then(() => null, (x) => x);
  assert.is(e?.code, 'E_NOT_EXACT');
});

test('a rebuild that writes a tensor one byte short fails the check; one that copies pieces falls back to the whole file and passes', async () => {
  const { store, v1, two } = await twoVersions(['blk.0.attn_norm.weight']);
  // output.weight's last piece written a byte short, by both the segments' and the whole file's rebuild
  let cuts = 0;
  const short = withRebuild((skeleton, tensor, sink) => {
    const last = new WeakSet<Uint8Array>();
    const marked = async function* (n: string) {
      let prev: Uint8Array | null = null;
      for await (const p of tensor(n)) { if (prev) yield prev; prev = p; }
      if (prev && n === 'output.weight') last.add(prev);
      if (prev) yield prev;
    };
    return gguf.rebuild(skeleton, marked, {
      write: (b) => { if (last.has(b)) { cuts++; return sink.write(b.subarray(0, b.length - 1)); } return sink.write(b); },
      close: () => sink.close(),
    });
  });
  const e = await clean(two.bytes, v1.meta, store, short).then(() => null, (x) => x);
  assert.is(cuts, 2, 'output.weight was written short, by segments and then whole');
  assert.is(e?.code, 'E_NOT_EXACT');
  const copying = withRebuild((skeleton, tensor, sink) => gguf.rebuild(skeleton, tensor, { write: (b) => sink.write(b.slice()), close: () => sink.close() }));
  const ok = await clean(two.bytes, v1.meta, store, copying);
  assert.equal(ok.checks, ['whole']);
  assert.is(ok.digests, 1);
  assert.equal(await smudge(ok.meta, store), two.bytes);
});

test('readAt on GGUF: a changed tensor whose bytes differ when read again is E_CHANGED_WHILE_READ; a change elsewhere is not read', async () => {
  const { store, v1, two } = await twoVersions(['blk.0.attn_q.weight'], 6000);
  // the file as it is when read again: the last (unchanged) tensor written meanwhile
  const other = two.bytes.slice();
  other[two.at['blk.0.attn_k.weight'] + 7] ^= 1;
  const ok = await clean(two.bytes, v1.meta, store, gguf, other);
  assert.equal(ok.readsAt, [two.at['blk.0.attn_q.weight']]);
  // the first tensor (its start came from the header's read-ahead) changed while being read
  const later = two.bytes.slice();
  later[two.at['blk.0.attn_q.weight'] + 100] ^= 1;
  const e = await clean(two.bytes, v1.meta, store, gguf, later).then(() => null, (x) => x);
  assert.is(e?.code, 'E_CHANGED_WHILE_READ');
  assert.match(e.message, /blk\.0\.attn_q\.weight/);
});

test('segmentedInput unread: read-ahead given back counts as the next tensor\'s bytes; anything doubtful gives no digest', async () => {
  const kernels = await getKernels();
  const bytes = new Uint8Array(3 << 20).map((_, i) => (i * 7) ^ (i >> 9));
  const h = kernels.contentHash(bytes.subarray(100, 2100));
  const digestOf = async (read: (r: ByteReader, s: ReturnType<typeof segmentedInput>) => Promise<void>) => {
    const s = segmentedInput(readerFromBytes(bytes), kernels);
    await read(s.reader, s);
    return s.digest();
  };
  const rest = async (r: ByteReader) => { while ((await r.readUpTo(1 << 20)).length); };
  const plain = await digestOf(async (r, s) => { await r.readExactly(100); s.beginTensor(); await r.readExactly(2000); s.endTensor(2000, h); await rest(r); });
  assert.type(plain, 'string');
  const pushed = await digestOf(async (r, s) => {
    const head = (await r.readUpTo(1000)).slice();
    r.unread!(head.subarray(100));
    assert.is(r.position, 100, 'position moves back');
    s.beginTensor();
    const a = (await r.readUpTo(5000)).slice();
    assert.is(a.length, 900, 'given-back bytes come first');
    assert.equal(a, bytes.subarray(100, 1000));
    assert.equal(await r.readExactly(1100), bytes.subarray(1000, 2100));
    s.endTensor(2000, h);
    await rest(r);
  });
  assert.is(pushed, plain, 'the same digest as reading without read-ahead');
  const spanning = await digestOf(async (r, s) => {
    r.unread!((await r.readExactly(600)).slice(100));
    s.beginTensor();
    assert.equal(await r.readExactly(2000), bytes.subarray(100, 2100), 'a read across given-back and new bytes');
    s.endTensor(2000, h);
    await rest(r);
  });
  assert.is(spanning, plain);
  const notLatest = await digestOf(async (r, s) => {
    await r.readExactly(1000);
    r.unread!(bytes.slice(0, 900)); // not the bytes just read
    s.beginTensor(); await r.readExactly(2000); s.endTensor(2000, h); await rest(r);
  });
  assert.is(notLatest, null);
  const beyondWindow = await digestOf(async (r, s) => {
    const n = STRUCTURE_WINDOW + (256 << 10);
    r.unread!((await r.readExactly(n)).slice(100));
    s.beginTensor(); await r.readExactly(2000); s.endTensor(2000, h); await rest(r);
  });
  assert.is(beyondWindow, null, 'more given back than the window holds');
  const neverRead = await digestOf(async (r, s) => {
    await r.readExactly(100); s.beginTensor(); await r.readExactly(2000); s.endTensor(2000, h);
    const tail = (await r.readUpTo(1 << 20)).slice();
    r.unread!(tail);
  });
  assert.is(neverRead, null, 'bytes given back and never read again');
  const acrossRun = await digestOf(async (r, s) => {
    await r.readExactly(100); s.beginTensor(); await r.readExactly(2000); s.endTensor(2000, h);
    await r.readExactly(10);
    r.unread!(bytes.slice(2090, 2110)); // into the tensor that ended
    await rest(r);
  });
  assert.is(acrossRun, null, 'a run already recorded cannot be given back');
  const inRun = await digestOf(async (r, s) => {
    await r.readExactly(100); s.beginTensor();
    const part = (await r.readExactly(1000)).slice();
    r.unread!(part.subarray(500)); // a tensor's bytes given back while it is read
    await r.readExactly(1500); s.endTensor(2000, h); await rest(r);
  });
  assert.is(inRun, null, 'nothing is given back during a tensor\'s run');
});

test('GGUF opened on a reader without unread still reads every tensor right (read-ahead served in front)', async () => {
  const { bytes, at } = await file({ vocab: 6000 });
  const r = await gguf.open(readerFromBytes(bytes));
  for await (const t of r.tensors()) {
    const b = await t.bytes();
    assert.equal(b, bytes.subarray(at[t.name], at[t.name] + b.length), t.name);
  }
  const sink = memorySink();
  await gguf.rebuild(r.skeleton(), async function* (n) { yield bytes.subarray(at[n], at[n] + r.header.tensors.find((x) => x.name === n)!.byteLength); }, sink);
  assert.equal(sink.bytes(), bytes);
});

test.run();
