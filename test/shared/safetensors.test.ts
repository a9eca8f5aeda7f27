// safetensors reading, rebuilding and writing against the fixtures made by real PyTorch/NumPy tooling.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { expectedFixtures, platform, type ExpectedTensor } from './platform.ts';
import { collect, memorySink, readerFromBytes, readerFromChunks, type ByteReader } from '../../src/core/io.ts';
import { safetensors, openSafetensors, encodeSafetensorsHeader, type SafetensorsTensor } from '../../src/formats/safetensors.ts';
import { getFormat, listFormats, sniffFormat } from '../../src/formats/index.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { f16ToNumber, sha256 } from './assertions.ts';

const TORCH_TO_ST: Record<string, string> = {
  float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

/** Values of a tensor as float64, with a plain loop (the independent oracle for the stats). */
function values(dtype: string, bytes: Uint8Array): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  const scratch = new DataView(new ArrayBuffer(4));
  const step: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
  for (let i = 0; i < bytes.length; i += step[dtype]) {
    switch (dtype) {
      case 'F32': out.push(dv.getFloat32(i, true)); break;
      case 'F64': out.push(dv.getFloat64(i, true)); break;
      case 'F16': out.push(f16ToNumber(dv.getUint16(i, true))); break;
      case 'BF16': scratch.setUint32(0, dv.getUint16(i, true) << 16); out.push(scratch.getFloat32(0)); break;
      case 'I64': out.push(Number(dv.getBigInt64(i, true))); break;
      case 'I32': out.push(dv.getInt32(i, true)); break;
      case 'I16': out.push(dv.getInt16(i, true)); break;
      case 'I8': out.push(dv.getInt8(i)); break;
      case 'U8': case 'BOOL': out.push(dv.getUint8(i)); break;
      default: throw new Error(`test cannot decode ${dtype}`);
    }
  }
  return out;
}

function checkStats(where: string, dtype: string, bytes: Uint8Array, want: ExpectedTensor) {
  let sum = 0, sumsq = 0, maxabs = 0, sumabs = 0;
  for (const v of values(dtype, bytes)) {
    sum += v;
    sumsq += v * v;
    sumabs += Math.abs(v);
    maxabs = Math.max(maxabs, Math.abs(v));
  }
  // Summation order differs from the oracle's (pairwise); allow for rounding relative to sum |x|.
  const tol = (scale: number) => 1e-12 + 1e-9 * scale;
  assert.ok(Math.abs(sum - want.sum) <= tol(sumabs), `${where}: sum ${sum} vs ${want.sum}`);
  assert.ok(Math.abs(sumsq - want.sumsq) <= tol(sumsq), `${where}: sumsq ${sumsq} vs ${want.sumsq}`);
  assert.is(maxabs, want.maxabs, `${where}: maxabs`);
}

async function safetensorsFixtures(): Promise<string[]> {
  return Object.keys(await expectedFixtures()).filter((f) => f.endsWith('.safetensors')).sort();
}

/** Read every tensor through `reader`, reading each with bytes() or chunks(chunkBytes). */
async function readAll(reader: ByteReader, name: string, chunkBytes?: number) {
  const r = await safetensors.open(reader, { fileName: name });
  const tensors: { t: SafetensorsTensor; data: Uint8Array }[] = [];
  for await (const t of r.tensors()) {
    const data = chunkBytes === undefined ? await t.bytes() : await collect(t.chunks(chunkBytes));
    tensors.push({ t, data });
  }
  return { r, tensors };
}

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

/** Resolves when `fn` rejects with an error `check` accepts; fails otherwise. */
async function rejects(fn: () => Promise<unknown>, check: RegExp | ((e: any) => boolean), what = '') {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error !== undefined, `expected a rejection ${what}`);
  const ok = typeof check === 'function' ? check(error) : check.test((error as Error).message);
  assert.ok(ok, `unexpected error ${what}: ${(error as any)?.code} ${(error as Error)?.message}`);
}

const fixtures = suite('safetensors: fixtures');

fixtures('the registry knows safetensors and sniffs every fixture as it', async () => {
  assert.ok(listFormats().some((f) => f.id === 'safetensors'));
  assert.is(getFormat('safetensors'), safetensors);
  const files = await safetensorsFixtures();
  assert.ok(files.length >= 7, `expected the 7 safetensors fixtures, found ${files.length}`);
  for (const f of files) {
    const bytes = await platform().readFixture(f);
    assert.is(sniffFormat(bytes.subarray(0, 4096), f), safetensors, f);
    assert.is(sniffFormat(bytes.subarray(0, 4096)), safetensors, `${f} without a name`);
  }
});

fixtures('every fixture: dtype, shape, SHA-256 and value statistics match expected.json', async () => {
  const expected = await expectedFixtures();
  for (const f of await safetensorsFixtures()) {
    const bytes = await platform().readFixture(f);
    const { r, tensors } = await readAll(readerFromBytes(bytes, f), f);
    const want = expected[f].tensors;
    assert.equal(tensors.map((x) => x.t.name).sort(), Object.keys(want).sort(), `${f}: tensor names`);
    for (const { t, data } of tensors) {
      const w = want[t.name];
      const where = `${f}:${t.name}`;
      assert.is(t.dtype, TORCH_TO_ST[w.dtype], `${where}: dtype`);
      assert.equal(t.shape, w.shape, `${where}: shape`);
      assert.is(data.length, t.byteLength, `${where}: byteLength`);
      assert.is(await sha256(data), w.sha256_le_bytes, `${where}: sha256`);
      checkStats(where, t.dtype, data, w);
    }
    // yielded in offset order, contiguous from 0
    let cursor = 0;
    for (const { t } of tensors) {
      assert.is(t.dataOffsets[0], cursor, `${f}:${t.name} starts where the previous tensor ended`);
      cursor = t.dataOffsets[1];
    }
    assert.is(8 + r.header.headerLength + cursor, bytes.length, `${f}: tensors cover the buffer`);
    assert.is(r.header.headerOrder.length, tensors.length);
  }
});

fixtures('model.safetensors: __metadata__ and the 0-d tensor', async () => {
  const bytes = await platform().readFixture('model.safetensors');
  const { r, tensors } = await readAll(readerFromBytes(bytes, 'model.safetensors'), 'model.safetensors');
  assert.equal(r.metadata, { format: 'pt' });
  const scale = tensors.find((x) => x.t.name === 'scale')!;
  assert.equal(scale.t.shape, []);
  assert.is(scale.data.length, 4);
  const bf = await readAll(readerFromBytes(await platform().readFixture('model-bf16.safetensors')), 'model-bf16.safetensors');
  assert.is(bf.r.metadata, undefined);
});

fixtures('rebuild(skeleton) gives back every fixture byte for byte; the skeleton is the exact header', async () => {
  for (const f of await safetensorsFixtures()) {
    const bytes = await platform().readFixture(f);
    const { r, tensors } = await readAll(readerFromBytes(bytes, f), f);
    const skeleton = r.skeleton();
    assert.equal(skeleton, bytes.subarray(0, skeleton.length), `${f}: skeleton is the file's first bytes`);
    const byName = new Map(tensors.map((x) => [x.t.name, x.data]));
    const asked: string[] = [];
    const sink = memorySink();
    await safetensors.rebuild(skeleton, (name) => {
      asked.push(name);
      return pieces(byName.get(name)!, 100);
    }, sink);
    assert.equal(asked, tensors.map((x) => x.t.name), `${f}: rebuild asks in offset order`);
    const out = sink.bytes();
    assert.is(out.length, bytes.length, `${f}: length`);
    assert.is(await sha256(out), await sha256(bytes), `${f}: identical bytes`);
  }
});

fixtures('reading over a one-way stream in tiny pieces (1, 7, 4096 bytes) gives the same tensors', async () => {
  for (const f of ['model.safetensors', 'model-bf16.safetensors', 'history-v4-sparse.safetensors']) {
    const bytes = await platform().readFixture(f);
    const reference = await readAll(readerFromBytes(bytes, f), f);
    const refHashes = await Promise.all(reference.tensors.map((x) => sha256(x.data)));
    for (const [piece, chunk] of [[1, undefined], [7, 3], [4096, 1 << 20], [4096, 5]] as const) {
      const reader = readerFromChunks(pieces(bytes, piece), `${f}@${piece}`);
      assert.is(reader.size, undefined);
      const { r, tensors } = await readAll(reader, f, chunk);
      assert.equal(tensors.map((x) => x.t.name), reference.tensors.map((x) => x.t.name), `${f}@${piece}: order`);
      assert.equal(await Promise.all(tensors.map((x) => sha256(x.data))), refHashes, `${f}@${piece}/${chunk}: bytes`);
      assert.equal(r.skeleton(), reference.r.skeleton());
    }
  }
});

fixtures('chunks() hands out pieces no larger than asked for, and unread tensors are skipped', async () => {
  const bytes = await platform().readFixture('model.safetensors');
  const expected = (await expectedFixtures())['model.safetensors'].tensors;
  const r = await openSafetensors(readerFromChunks(pieces(bytes, 333), 'model.safetensors'));
  let i = 0;
  for await (const t of r.tensors()) {
    if (i++ % 2) continue; // skip every other tensor without reading it
    const parts: Uint8Array[] = [];
    for await (const p of t.chunks(64)) {
      assert.ok(p.length > 0 && p.length <= 64, `piece of ${p.length} bytes`);
      parts.push(p.slice());
    }
    const data = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of parts) { data.set(p, off); off += p.length; }
    assert.is(await sha256(data), expected[t.name].sha256_le_bytes, t.name);
  }
  assert.is(i, 9);
});

fixtures('a tensor half read with chunks() is skipped to its end before the next one', async () => {
  const bytes = await platform().readFixture('history-v1.safetensors');
  const expected = (await expectedFixtures())['history-v1.safetensors'].tensors;
  const r = await safetensors.open(readerFromChunks(pieces(bytes, 1000), 'h1'));
  for await (const t of r.tensors()) {
    if (t.name === '0.weight') {
      for await (const _ of t.chunks(100)) break; // abandon after one piece
      continue;
    }
    assert.is(await sha256(await t.bytes()), expected[t.name].sha256_le_bytes, t.name);
  }
});

fixtures('misuse: reading a tensor twice or after moving on is an ArgumentError', async () => {
  const bytes = await platform().readFixture('model.safetensors');
  const r = await safetensors.open(readerFromBytes(bytes));
  let first: SafetensorsTensor | undefined;
  for await (const t of r.tensors()) {
    if (!first) {
      first = t as SafetensorsTensor;
      await t.bytes();
      await rejects(() => t.bytes(), /already read/);
      continue;
    }
    assert.throws(() => first!.chunks(), (e: any) => e.code === 'E_ARGUMENT' && /after the next tensor/.test(e.message));
    break;
  }
  assert.ok(first);
});

fixtures('header JSON order differs from offset order: tensors come in offset order, both orders reported', async () => {
  const json = '{"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"e":{"dtype":"F32","shape":[0],"data_offsets":[3,3]}}';
  const file = withHeader(json, [10, 11, 12, 20, 21]);
  for (const reader of [readerFromBytes(file, 'x'), readerFromChunks(pieces(file, 2), 'x')]) {
    const r = await safetensors.open(reader);
    const seen: [string, number[], number][] = [];
    for await (const t of r.tensors()) seen.push([t.name, Array.from(await t.bytes()), t.headerIndex]);
    assert.equal(seen, [['a', [10, 11, 12], 1], ['e', [], 2], ['b', [20, 21], 0]]);
    assert.equal(r.header.headerOrder, ['b', 'a', 'e']);
    assert.equal(r.metadata, { k: 'v' });
  }
});

const writer = suite('safetensors: writer');

writer('writer: files without __metadata__ come out identical to the fixtures (sorted names, space padding)', async () => {
  for (const f of ['history-v0.safetensors', 'history-v2.safetensors', 'model-bf16.safetensors']) {
    const bytes = await platform().readFixture(f);
    const { tensors } = await readAll(readerFromBytes(bytes, f), f);
    const toWrite: TensorToWrite[] = tensors.map((x) => ({ name: x.t.name, dtype: x.t.dtype, shape: x.t.shape, data: x.data })).reverse();
    const sink = memorySink();
    await safetensors.write(toWrite, sink);
    assert.is(await sha256(sink.bytes()), await sha256(bytes), `${f}: written bytes equal the fixture`);
  }
});

writer('round trip: sorted by name, padded to 8 with spaces, metadata kept, values unchanged', async () => {
  const bytes = await platform().readFixture('model.safetensors');
  const { tensors } = await readAll(readerFromBytes(bytes), 'model.safetensors');
  async function* source(): AsyncGenerator<TensorToWrite> {
    for (const x of tensors.slice().reverse()) yield { name: x.t.name, dtype: x.t.dtype, shape: x.t.shape, data: x.data };
  }
  const sink = memorySink();
  await safetensors.write(source(), sink, { metadata: { z: 'last', format: 'pt', 'ü': 'ünïcode' } });
  const out = sink.bytes();
  const n = Number(new DataView(out.buffer, out.byteOffset).getBigUint64(0, true));
  assert.is(n % 8, 0, 'header length is a multiple of 8');
  const text = new TextDecoder().decode(out.subarray(8, 8 + n));
  assert.ok(/^\{"__metadata__":\{"format":"pt","z":"last","ü":"ünïcode"\},/.test(text), text.slice(0, 80));
  assert.ok(/\}\s*$/.test(text) && /^[^ ]*\} *$/.test(text.replace(/"[^"]*"/g, '""')), 'only trailing spaces pad the header');
  const back = await readAll(readerFromBytes(out, 'written'), 'written');
  assert.equal(back.r.metadata, { format: 'pt', z: 'last', 'ü': 'ünïcode' });
  const names = back.tensors.map((x) => x.t.name);
  assert.equal(names, tensors.map((x) => x.t.name).sort());
  for (const x of back.tensors) {
    const orig = tensors.find((o) => o.t.name === x.t.name)!;
    assert.equal(x.data, orig.data, x.t.name);
    assert.is(x.t.dtype, orig.t.dtype);
    assert.equal(x.t.shape, orig.t.shape);
  }
  // The same bytes in every runtime (pinned: a change here changes every file the writer makes).
  assert.is(await sha256(out), 'af75b41032500bdf4b1cf08fca2d4cb08695db39e0c2c368e8ee877a41ef0035');
});

writer('writer is deterministic: same tensors in any order, metadata in any order, give the same bytes', async () => {
  const a = { name: 'α', dtype: 'F16' as const, shape: [2], data: new Uint8Array([1, 2, 3, 4]) };
  const b = { name: 'b', dtype: 'I8' as const, shape: [1, 1], data: new Uint8Array([9]) };
  const c = { name: '\u{1F600}', dtype: 'U8' as const, shape: [0], data: new Uint8Array(0) };
  const d = { name: '\uFF21', dtype: 'U8' as const, shape: [1], data: new Uint8Array([7]) };
  const s1 = memorySink();
  const s2 = memorySink();
  await safetensors.write([a, b, c, d], s1, { metadata: { x: '1', y: '2' } });
  await safetensors.write([d, c, b, a], s2, { metadata: { y: '2', x: '1' } });
  assert.equal(s1.bytes(), s2.bytes());
  const back = await readAll(readerFromBytes(s1.bytes()), 'det');
  // code point (UTF-8 byte) order: 'b' < 'α' < U+FF21 < U+1F600 (UTF-16 order would put the emoji first)
  assert.equal(back.tensors.map((x) => x.t.name), ['b', 'α', '\uFF21', '\u{1F600}']);
  assert.is(await sha256(s1.bytes()), 'd953e84eca37b8e23558cc1c456f8f1dbcdcf5770fd23d8bed881992b96ad86d', 'pinned bytes, identical in every runtime');
});

writer('writer rejects bad input with ArgumentError naming the tensor', async () => {
  const ok = { name: 'a', dtype: 'F32' as const, shape: [2], data: new Uint8Array(8) };
  const cases: [TensorToWrite[], RegExp, Record<string, string>?][] = [
    [[ok, { ...ok }], /'a' is given twice/],
    [[{ ...ok, data: new Uint8Array(7) }], /tensor 'a': data has 7 bytes/],
    [[{ ...ok, dtype: 'F7' as any }], /tensor 'a': unknown dtype "F7"/],
    [[{ ...ok, shape: [-2] }], /tensor 'a': shape/],
    [[{ ...ok, name: '__metadata__' }], /reserved/],
    [[ok], /metadata value of 'k' must be a string/, { k: 5 as any }],
  ];
  for (const [tensors, re, metadata] of cases) {
    await rejects(() => safetensors.write(tensors, memorySink(), { metadata }), (e: any) => e.code === 'E_ARGUMENT' && re.test(e.message), String(re));
  }
});

writer('encodeSafetensorsHeader + rebuild write a file from streamed tensor bytes', async () => {
  const skeleton = encodeSafetensorsHeader([{ name: 'w', dtype: 'F32', shape: [3, 1000] }, { name: 'b', dtype: 'F64', shape: [5] }]);
  const sink = memorySink();
  await safetensors.rebuild(skeleton, (name) => (async function* () {
    const len = name === 'w' ? 12000 : 40;
    for (let i = 0; i < len; i += 1024) yield new Uint8Array(Math.min(1024, len - i)).fill(name === 'w' ? 1 : 2);
  })(), sink);
  const { tensors } = await readAll(readerFromBytes(sink.bytes()), 'enc');
  assert.equal(tensors.map((x) => [x.t.name, x.data.length, x.data[0]]), [['b', 40, 2], ['w', 12000, 1]]);
});

fixtures.run();
writer.run();

/** A file from raw header text and buffer bytes (header padded to 8 with spaces). */
function withHeader(json: string, buffer: number[]): Uint8Array {
  const j = new TextEncoder().encode(json);
  const n = Math.ceil(j.length / 8) * 8;
  const out = new Uint8Array(8 + n + buffer.length).fill(0x20, 8, 8 + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(j, 8);
  out.set(buffer, 8 + n);
  return out;
}
