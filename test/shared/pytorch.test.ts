// PyTorch (torch.save zip) reading, rebuilding and writing against the fixtures made by real
// PyTorch 1.13, plus hand-built checkpoints for naming, views and every bad-input rule.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { deflateSync } from 'fflate';
import { expectedFixtures, platform, type ExpectedTensor } from './platform.ts';
import { collect, memorySink, readerFromBytes, readerFromChunks, type ByteReader } from '../../src/core/io.ts';
import { pytorch, writePytorch, MAX_INFLATED_BYTES, type PytorchTensor } from '../../src/formats/pytorch.ts';
import { unpickle, MAX_CONTAINER_ELEMENTS, MAX_STACK_ITEMS } from '../../src/formats/pickle.ts';
import { crc32, descriptor, torchCentralDirectory, torchLocalHeader, type WrittenEntry } from '../../src/formats/pytorch-zip.ts';
import { getFormat, sniffFormat } from '../../src/formats/index.ts';
import { useFastCrc32 } from '../../src/core/kernels.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { f16ToNumber, sha256 } from './assertions.ts';

const TORCH_TO_ST: Record<string, string> = {
  float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const PT_FIXTURES = ['mlp-f32.pt', 'mlp-bf16.pt', 'mlp-f16.pt', 'convnet.pt', 'shared-storage.pt', 'nested-checkpoint.pt', 'history-v3-lowrank-sidedata.pt'];

/** sum, sum of squares and max |x| with plain loops (bf16/f16 widened here, not by the library). */
function stats(dtype: string, bytes: Uint8Array) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scratch = new DataView(new ArrayBuffer(4));
  const size: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
  let sum = 0, sumsq = 0, maxabs = 0, sumabs = 0;
  for (let i = 0; i < bytes.length; i += size[dtype]) {
    let v: number;
    switch (dtype) {
      case 'F32': v = dv.getFloat32(i, true); break;
      case 'F64': v = dv.getFloat64(i, true); break;
      case 'F16': v = f16ToNumber(dv.getUint16(i, true)); break;
      case 'BF16': scratch.setUint32(0, dv.getUint16(i, true) << 16); v = scratch.getFloat32(0); break;
      case 'I64': v = Number(dv.getBigInt64(i, true)); break;
      case 'I32': v = dv.getInt32(i, true); break;
      case 'I16': v = dv.getInt16(i, true); break;
      case 'I8': v = dv.getInt8(i); break;
      case 'U8': case 'BOOL': v = dv.getUint8(i); break;
      default: throw new Error(`test cannot decode ${dtype}`);
    }
    sum += v; sumsq += v * v; sumabs += Math.abs(v); maxabs = Math.max(maxabs, Math.abs(v));
  }
  return { sum, sumsq, maxabs, sumabs };
}

function checkTensor(where: string, t: PytorchTensor, data: Uint8Array, w: ExpectedTensor, hash: string) {
  assert.is(t.dtype, TORCH_TO_ST[w.dtype], `${where}: dtype`);
  assert.equal(t.shape, w.shape, `${where}: shape`);
  assert.is(data.length, t.byteLength, `${where}: byteLength`);
  assert.is(hash, w.sha256_le_bytes, `${where}: sha256`);
  const s = stats(t.dtype, data);
  const tol = (scale: number) => 1e-12 + 1e-9 * scale;
  assert.ok(Math.abs(s.sum - w.sum) <= tol(s.sumabs), `${where}: sum ${s.sum} vs ${w.sum}`);
  assert.ok(Math.abs(s.sumsq - w.sumsq) <= tol(s.sumsq), `${where}: sumsq ${s.sumsq} vs ${w.sumsq}`);
  assert.is(s.maxabs, w.maxabs, `${where}: maxabs`);
}

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

/** Read every tensor (bytes() or chunks(n)), then rebuild from the skeleton and those bytes. */
async function readAndRebuild(reader: ByteReader, name: string, chunkBytes?: number) {
  const r = await pytorch.open(reader, { fileName: name });
  const tensors: { t: PytorchTensor; data: Uint8Array }[] = [];
  for await (const t of r.tensors()) {
    const data = chunkBytes === undefined ? await t.bytes() : await collect(t.chunks(chunkBytes));
    tensors.push({ t, data });
  }
  const byName = new Map(tensors.map((x) => [x.t.name, x.data]));
  const sink = memorySink();
  await pytorch.rebuild(r.skeleton(), (n) => (async function* () {
    const d = byName.get(n);
    assert.ok(d, `rebuild asked for unknown tensor '${n}'`);
    for (let i = 0; i < d!.length; i += 5) yield d!.subarray(i, i + 5);
    if (!d!.length) yield d!;
  })(), sink);
  return { r, tensors, byName, rebuilt: sink.bytes() };
}

function indexOfSeq(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Resolves when `fn` rejects with a ThetaError of this code whose message matches; fails otherwise. */
async function rejects(fn: () => Promise<unknown>, code: string, message?: RegExp) {
  let error: any;
  try { await fn(); } catch (e) { error = e; }
  assert.ok(error !== undefined, `expected ${code}${message ? ` ${message}` : ''}, but nothing was thrown`);
  assert.is(error.code, code, `expected ${code}, got ${error?.code}: ${error?.message}`);
  if (message) assert.match(error.message, message);
  assert.not.match(error.message, /\n/, 'one-line message');
}

/** Open and drain a file completely (all tensor bytes, skeleton). */
async function drain(bytes: Uint8Array, name = 'bad.pt') {
  const r = await pytorch.open(readerFromBytes(bytes, name), { fileName: name });
  for await (const t of r.tensors()) await t.bytes();
  return r.skeleton();
}

// ---------------------------------------------------------------------------------------------
// Hand-built pickles and archives

const enc = new TextEncoder();
const P = {
  head: [0x80, 0x02],
  str(s: string): number[] { const b = enc.encode(s); return [0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, b.length >>> 24, ...b]; },
  glob(m: string, n: string): number[] { return [0x63, ...enc.encode(`${m}\n${n}\n`)]; },
  int(v: number): number[] {
    if (v >= 0 && v < 256) return [0x4b, v];
    if (v >= 0 && v < 65536) return [0x4d, v & 0xff, v >> 8];
    if (v >= -(2 ** 31) && v < 2 ** 31) return [0x4a, v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff];
    let b = BigInt(v); const out: number[] = [];
    for (;;) { const x = Number(b & 0xffn); out.push(x); b >>= 8n; if ((b === 0n && !(x & 0x80)) || (b === -1n && x & 0x80)) break; }
    return [0x8a, out.length, ...out];
  },
  ints(vs: number[]): number[] { return [0x28, ...vs.flatMap((v) => P.int(v)), 0x74]; },
  /** _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, shape, stride, False, OrderedDict()) */
  tensor(type: string, key: string, numel: number, offset: number, shape: number[], stride: number[]): number[] {
    return [
      ...P.glob('torch._utils', '_rebuild_tensor_v2'), 0x28,
      0x28, ...P.str('storage'), ...P.glob('torch', type), ...P.str(key), ...P.str('cpu'), ...P.int(numel), 0x74, 0x51,
      ...P.int(offset), ...P.ints(shape), ...P.ints(stride), 0x89, ...P.glob('collections', 'OrderedDict'), 0x29, 0x52,
      0x74, 0x52,
    ];
  },
  /** A dict {k: v, ...} from already-pickled values. */
  dict(items: [number[], number[]][]): number[] { return [0x7d, 0x28, ...items.flatMap(([k, v]) => [...k, ...v]), 0x75]; },
  done(body: number[]): Uint8Array { return Uint8Array.from([...P.head, ...body, 0x2e]); },
};

function f32(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** A torch-style archive (descriptors, 64-byte padding, zip64 end records) with these entries in order. */
function torchZip(entries: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  const written: WrittenEntry[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBytes = enc.encode(name);
    const h = torchLocalHeader(nameBytes, offset, data.length);
    const crc = crc32(data);
    const d = descriptor(crc, data.length, false);
    parts.push(h, data, d);
    written.push({ nameBytes, offset, size: data.length, crc });
    offset += h.length + data.length + d.length;
  }
  parts.push(torchCentralDirectory(written, offset));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

interface PlainEntry {
  name: string;
  /** Bytes as stored in the file (compressed for method 8). */
  stored: Uint8Array;
  method?: number;
  size?: number;
  crc?: number;
  flags?: number;
}

/** A plain archive: sizes and CRC in the local headers (no descriptors), classic end record. */
function plainZip(entries: PlainEntry[], tweak?: { cdOffsetDelta?: number; centralOffsetDelta?: number }): Uint8Array {
  const parts: number[] = [];
  const central: number[] = [];
  const le = (v: number, n: number) => Array.from({ length: n }, (_, i) => Math.floor(v / 2 ** (8 * i)) & 0xff);
  for (const e of entries) {
    const name = enc.encode(e.name);
    const size = e.size ?? e.stored.length;
    const crc = e.crc ?? crc32(e.stored);
    const fields = [...le(20, 2), ...le(e.flags ?? 0x800, 2), ...le(e.method ?? 0, 2), 0, 0, 0, 0, ...le(crc, 4), ...le(e.stored.length, 4), ...le(size, 4), ...le(name.length, 2)];
    const offset = parts.length;
    parts.push(...le(0x04034b50, 4), ...fields, 0, 0, ...name, ...e.stored);
    central.push(...le(0x02014b50, 4), ...le(20, 2), ...fields, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...le(offset + (tweak?.centralOffsetDelta ?? 0), 4), ...name);
  }
  const cdOffset = parts.length;
  const n = entries.length;
  const eocd = [...le(0x06054b50, 4), 0, 0, 0, 0, ...le(n, 2), ...le(n, 2), ...le(central.length, 4), ...le(cdOffset + (tweak?.cdOffsetDelta ?? 0), 4), 0, 0];
  return Uint8Array.from([...parts, ...central, ...eocd]);
}

/** {'w': 2x3 F32 tensor} as a torch-style archive. */
function smallCheckpoint(): { bytes: Uint8Array; data: Uint8Array } {
  const data = f32([1, 2, 3, 4, 5, 6]);
  const pkl = P.done(P.dict([[P.str('w'), P.tensor('FloatStorage', '0', 6, 0, [2, 3], [3, 1])]]));
  return { bytes: torchZip([['archive/data.pkl', pkl], ['archive/data/0', data], ['archive/version', enc.encode('3\n')]]), data };
}

// ---------------------------------------------------------------------------------------------
const fixtures = suite('pytorch: fixtures made by PyTorch 1.13');

fixtures('the registry sniffs every .pt fixture as pytorch (with and without a name); safetensors is not', async () => {
  assert.is(getFormat('pytorch'), pytorch);
  for (const f of PT_FIXTURES) {
    const bytes = await platform().readFixture(f);
    assert.ok(pytorch.sniff(bytes.subarray(0, 4096), f), f);
    assert.is(sniffFormat(bytes.subarray(0, 4096), f), pytorch, f);
    assert.is(sniffFormat(bytes.subarray(0, 4096)), pytorch, `${f} without a name`);
  }
  const st = await platform().readFixture('model.safetensors');
  assert.not.ok(pytorch.sniff(st.subarray(0, 4096), 'model.safetensors'));
  const npz = await platform().readFixture('arrays.npz');
  assert.not.ok(pytorch.sniff(npz.subarray(0, 4096), 'arrays.npz'), 'a plain zip (npz) is not a torch checkpoint');
  for (const ext of ['.pt', '.pth', '.bin', '.ckpt']) assert.ok(pytorch.extensions.includes(ext), ext);
});

fixtures('every fixture: each tensor in expected.json has its dtype, shape, SHA-256 and statistics; nothing else is yielded', async () => {
  const expected = await expectedFixtures();
  for (const f of PT_FIXTURES) {
    const bytes = await platform().readFixture(f);
    const { tensors } = await readAndRebuild(readerFromBytes(bytes, f), f);
    const want = expected[f].tensors;
    assert.equal(tensors.map((x) => x.t.name).sort(), Object.keys(want).sort(), `${f}: tensor names`);
    for (const { t, data } of tensors) checkTensor(`${f}:${t.name}`, t, data, want[t.name], await sha256(data));
  }
});

fixtures('every fixture: rebuild from the skeleton gives back the identical file', async () => {
  for (const f of PT_FIXTURES) {
    const bytes = await platform().readFixture(f);
    const { rebuilt, r } = await readAndRebuild(readerFromBytes(bytes, f), f);
    assert.ok(sameBytes(rebuilt, bytes), `${f}: rebuilt ${rebuilt.length} bytes, original ${bytes.length}`);
    assert.ok(r.skeleton().length < bytes.length, `${f}: the skeleton holds less than the file`);
  }
});

fixtures('streaming through tiny chunks (1, 7, 4096 bytes) gives the same tensors and the same rebuild', async () => {
  const expected = await expectedFixtures();
  for (const f of PT_FIXTURES) {
    const bytes = await platform().readFixture(f);
    for (const size of [1, 7, 4096]) {
      const { tensors, rebuilt } = await readAndRebuild(readerFromChunks(pieces(bytes, size), f), f, size === 1 ? 3 : 4096);
      assert.is(tensors.length, Object.keys(expected[f].tensors).length, `${f}/${size}: count`);
      for (const { t, data } of tensors) assert.is(await sha256(data), expected[f].tensors[t.name].sha256_le_bytes, `${f}/${size}:${t.name}`);
      assert.ok(sameBytes(rebuilt, bytes), `${f}/${size}: rebuild identical`);
    }
  }
});

fixtures('shared-storage.pt: tied weights, an offset view and a transposed view of one storage', async () => {
  const bytes = await platform().readFixture('shared-storage.pt');
  const { tensors } = await readAndRebuild(readerFromBytes(bytes), 'shared-storage.pt');
  const t = Object.fromEntries(tensors.map((x) => [x.t.name, x.t]));
  assert.equal(tensors.map((x) => x.t.name), ['embed.weight', 'lm_head.weight', 'slice', 'transposed'], 'pickle order');
  for (const x of tensors) assert.is(x.t.storageKey, '0', `${x.t.name} shares storage 0`);
  assert.is(t['lm_head.weight'].tiedTo, 'embed.weight');
  assert.is(t['embed.weight'].tiedTo, undefined);
  assert.is(t['slice'].storageOffset, 64);
  assert.equal(t['transposed'].stride, [1, 16]);
  const skeleton = await (async () => { const r = await pytorch.open(readerFromBytes(bytes)); for await (const _ of r.tensors()); return r.skeleton(); })();
  assert.ok(skeleton.length < 2048, `storage bytes are all covered by views, so the skeleton (${skeleton.length}) holds none of the 2048 storage bytes`);
});

fixtures('unread tensors are skipped, and skipping does not break the skeleton', async () => {
  const bytes = await platform().readFixture('convnet.pt');
  const r = await pytorch.open(readerFromChunks(pieces(bytes, 100), 'convnet.pt'));
  const names: string[] = [];
  for await (const t of r.tensors()) names.push(t.name); // never read
  assert.is(names.length, 9);
  const full = await readAndRebuild(readerFromBytes(bytes), 'convnet.pt');
  assert.ok(sameBytes(r.skeleton(), full.r.skeleton()), 'same skeleton whether or not bytes were read');
});

fixtures('rebuild with a changed tensor writes the new bytes and a CRC real readers accept', async () => {
  const bytes = await platform().readFixture('mlp-f32.pt');
  const { r, byName } = await readAndRebuild(readerFromBytes(bytes), 'mlp-f32.pt');
  const changed = f32(Array.from({ length: 640 }, (_, i) => i / 7));
  const sink = memorySink();
  await pytorch.rebuild(r.skeleton(), (n) => (async function* () { yield n === 'head.weight' ? changed : byName.get(n)!; })(), sink);
  const out = sink.bytes();
  assert.is(out.length, bytes.length);
  assert.not.ok(sameBytes(out, bytes));
  // Our reader checks each storage's CRC-32 against the descriptor and the central directory.
  const again = await readAndRebuild(readerFromBytes(out), 'changed.pt');
  assert.ok(sameBytes(again.byName.get('head.weight')!, changed));
  assert.ok(sameBytes(again.byName.get('head.bias')!, byName.get('head.bias')!));
});

// ---------------------------------------------------------------------------------------------
const writer = suite('pytorch: writer');

writer('a flat dict written with the fixture\'s archive name is byte-identical to what torch 1.13 wrote', async () => {
  const bytes = await platform().readFixture('mlp-f32.pt');
  const { tensors } = await readAndRebuild(readerFromBytes(bytes), 'mlp-f32.pt');
  const sink = memorySink();
  await writePytorch(tensors.map(({ t, data }) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data })), sink, { archiveName: 'mlp-f32', container: 'dict' });
  assert.ok(sameBytes(sink.bytes(), bytes), 'identical to torch.save output');
});

writer('every dtype, 0-d and empty tensors round-trip through write and our reader, and rebuild identically', async () => {
  const tensors: TensorToWrite[] = [
    { name: 'f32', dtype: 'F32', shape: [2, 3], data: f32([1, -2, 3.5, 4, 5, 6]) },
    { name: 'f64', dtype: 'F64', shape: [2], data: new Uint8Array(Float64Array.from([1e300, -0.5]).buffer) },
    { name: 'f16', dtype: 'F16', shape: [3], data: Uint8Array.from([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]) },
    { name: 'bf16', dtype: 'BF16', shape: [2], data: Uint8Array.from([0x80, 0x3f, 0x00, 0xc0]) },
    { name: 'i64', dtype: 'I64', shape: [], data: new Uint8Array(BigInt64Array.from([-7n]).buffer) },
    { name: 'i32', dtype: 'I32', shape: [1], data: new Uint8Array(Int32Array.from([-3]).buffer) },
    { name: 'i16', dtype: 'I16', shape: [1], data: new Uint8Array(Int16Array.from([300]).buffer) },
    { name: 'i8', dtype: 'I8', shape: [2], data: Uint8Array.from([0xff, 1]) },
    { name: 'u8', dtype: 'U8', shape: [2], data: Uint8Array.from([200, 1]) },
    { name: 'bool', dtype: 'BOOL', shape: [2, 1], data: Uint8Array.from([1, 0]) },
    { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
    { name: 'layers.0.big', dtype: 'F32', shape: [70000], data: new Uint8Array(280000).fill(7) },
  ];
  const sink = memorySink();
  await pytorch.write(tensors, sink);
  const bytes = sink.bytes();
  assert.ok(pytorch.sniff(bytes.subarray(0, 4096)), 'sniffs as pytorch');
  const { r, tensors: back, rebuilt } = await readAndRebuild(readerFromBytes(bytes), 'written.pt');
  assert.is(r.archive, 'archive');
  // Yielded in file order: torch writes storages sorted by key as strings ('0', '1', '10', '11', '2', ...).
  assert.equal(back.map((x) => x.t.name), ['f32', 'f64', 'empty', 'layers.0.big', 'f16', 'bf16', 'i64', 'i32', 'i16', 'i8', 'u8', 'bool'], 'file order');
  const want = new Map(tensors.map((t) => [t.name, t]));
  for (const { t, data } of back) {
    const w = want.get(t.name)!;
    assert.is(t.dtype, w.dtype, t.name);
    assert.equal(t.shape, w.shape, t.name);
    assert.ok(sameBytes(data, w.data), `${t.name} bytes`);
  }
  assert.ok(sameBytes(rebuilt, bytes), 'rebuild identical');
  const root = r.object as any;
  assert.ok(root.ordered, 'an OrderedDict, like module.state_dict()');
});

writer('1001 tensors: memo indices past 255 and SETITEMS batches of 1000 read back', async () => {
  const tensors: TensorToWrite[] = Array.from({ length: 1001 }, (_, i) => ({ name: `t${i}`, dtype: 'F32' as const, shape: [1], data: f32([i]) }));
  const sink = memorySink();
  await pytorch.write(tensors, sink);
  const { tensors: back } = await readAndRebuild(readerFromBytes(sink.bytes()), 'many.pt');
  assert.is(back.length, 1001);
  const last = back.find((x) => x.t.name === 't1000')!;
  assert.ok(last, 't1000 is there');
  assert.equal(new Float32Array(last.data.slice().buffer)[0], 1000);
  assert.equal(new Set(back.map((x) => x.t.name)).size, 1001, 'all names distinct');
});

writer('bad arguments are ArgumentErrors', async () => {
  await rejects(() => pytorch.write([{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(4) }], memorySink()), 'E_ARGUMENT', /needs 8/);
  await rejects(() => pytorch.write([{ name: 'a', dtype: 'F32', shape: [1], data: new Uint8Array(4) }, { name: 'a', dtype: 'F32', shape: [1], data: new Uint8Array(4) }], memorySink()), 'E_ARGUMENT', /twice/);
  await rejects(() => writePytorch([], memorySink(), { archiveName: '../x' }), 'E_ARGUMENT', /archiveName/);
});

// ---------------------------------------------------------------------------------------------
const built = suite('pytorch: hand-built checkpoints (naming, views, values)');

built('a training checkpoint: dotted names through dicts, int keys, lists and tuples; plain values stay in the skeleton', async () => {
  const s = (k: string, n: number, off: number, shape: number[], stride: number[], type = 'FloatStorage') => P.tensor(type, k, n, off, shape, stride);
  const pkl = P.done(P.dict([
    [P.str('epoch'), P.int(3)],
    [P.str('lr'), [0x47, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]],
    [P.str('big'), P.int(2 ** 40)],
    [P.str('blob'), [...P.glob('_codecs', 'encode'), ...P.str('ab\u00ff'), ...P.str('latin1'), 0x86, 0x52]],
    [P.str('model'), [...P.glob('collections', 'OrderedDict'), 0x29, 0x52, 0x28, ...P.str('w'), ...s('0', 4, 0, [2, 2], [2, 1]), 0x75]],
    [P.str('optimizer'), P.dict([
      [P.str('state'), P.dict([[P.int(0), P.dict([[P.str('momentum_buffer'), s('1', 4, 0, [4], [1])]])]])],
      [P.str('param_groups'), [0x5d, 0x28, ...P.dict([[P.str('params'), [0x5d, ...P.int(0), 0x61]]]), 0x65]],
    ])],
    [P.str('pair'), [0x28, ...s('2', 6, 0, [3], [1]), ...s('2', 6, 3, [3], [1]), 0x74]],
    [P.str('flag'), [...P.glob('torch._utils', '_rebuild_parameter'), 0x28, ...s('3', 1, 0, [], [], 'BoolStorage'), 0x88, ...P.glob('collections', 'OrderedDict'), 0x29, 0x52, 0x74, 0x52]],
  ]));
  const st = [f32([1, 2, 3, 4]), f32([5, 6, 7, 8]), f32([9, 10, 11, 12, 13, 14]), Uint8Array.from([1])];
  const bytes = torchZip([['ck/data.pkl', pkl], ...st.map((d, i) => [`ck/data/${i}`, d] as [string, Uint8Array]), ['ck/version', enc.encode('3\n')]]);
  const { r, tensors, rebuilt } = await readAndRebuild(readerFromBytes(bytes), 'ck.pt');
  assert.equal(tensors.map((x) => x.t.name), ['model.w', 'optimizer.state.0.momentum_buffer', 'pair.0', 'pair.1', 'flag']);
  assert.ok(sameBytes(tensors[2].data, f32([9, 10, 11])));
  assert.ok(sameBytes(tensors[3].data, f32([12, 13, 14])));
  assert.is(tensors[4].t.dtype, 'BOOL');
  assert.equal(tensors[4].t.shape, []);
  assert.ok(sameBytes(rebuilt, bytes), 'rebuild identical');
  const root = r.object as any;
  const get = (k: string) => root.entries.find((e: any[]) => e[0] === k)[1];
  assert.is(get('epoch'), 3);
  assert.is(get('lr'), 0.1);
  assert.is(get('big'), 2 ** 40);
  assert.equal(Array.from(get('blob')), [0x61, 0x62, 0xff]);
  const chunked = await readAndRebuild(readerFromChunks(pieces(bytes, 1)), 'ck.pt', 1);
  assert.ok(sameBytes(chunked.rebuilt, bytes), 'rebuild identical through 1-byte chunks');
});

built('a slice that covers part of its storage: the rest is kept in the skeleton; a top-level tensor is named "tensor"', async () => {
  const storage = f32(Array.from({ length: 12 }, (_, i) => i));
  const pkl = P.done(P.tensor('FloatStorage', '0', 12, 5, [2, 2], [1, 3])); // elements 5, 8, 6, 9
  const bytes = torchZip([['a/data.pkl', pkl], ['a/data/0', storage], ['a/version', enc.encode('3\n')]]);
  const { r, tensors, rebuilt } = await readAndRebuild(readerFromBytes(bytes), 'slice.pt');
  assert.equal(tensors.map((x) => x.t.name), ['tensor']);
  assert.ok(sameBytes(tensors[0].data, f32([5, 8, 6, 9])), 'contiguous bytes of the strided view');
  assert.ok(sameBytes(rebuilt, bytes), 'rebuild identical');
  assert.ok(r.skeleton().length > 8 * 4, 'uncovered elements are in the skeleton');
});

built('colliding names get ~2; a deflated data.pkl and extra entries are read and kept exactly', async () => {
  const pkl = P.done(P.dict([
    [P.str('a.b'), P.tensor('FloatStorage', '0', 1, 0, [1], [1])],
    [P.str('a'), P.dict([[P.str('b'), P.tensor('FloatStorage', '1', 1, 0, [1], [1])]])],
  ]));
  const z = deflateSync(pkl);
  const bytes = plainZip([
    { name: 'x/data.pkl', stored: z, method: 8, size: pkl.length, crc: crc32(pkl) },
    { name: 'x/data/0', stored: f32([1]) },
    { name: 'x/data/1', stored: f32([2]) },
    { name: 'x/byteorder', stored: enc.encode('little') },
  ]);
  const { tensors, rebuilt } = await readAndRebuild(readerFromBytes(bytes), 'dup.pt');
  assert.equal(tensors.map((x) => x.t.name), ['a.b', 'a.b~2']);
  assert.ok(sameBytes(rebuilt, bytes), 'rebuild identical (deflated bytes kept as they were)');
});

// ---------------------------------------------------------------------------------------------
const bad = suite('pytorch: bad input');

bad('truncated anywhere: a TruncatedError, never a hang', async () => {
  for (const f of ['mlp-f32.pt', 'shared-storage.pt']) {
    const bytes = await platform().readFixture(f);
    const cuts = [0, 3, 20, 40, 200, 400, 1000, 2600, bytes.length - 200, bytes.length - 100, bytes.length - 60, bytes.length - 30, bytes.length - 1];
    for (const cut of cuts) {
      await rejects(() => drain(bytes.slice(0, cut), f), 'E_TRUNCATED');
      await rejects(async () => {
        const r = await pytorch.open(readerFromChunks(pieces(bytes.slice(0, cut), 7), f));
        for await (const t of r.tensors()) await collect(t.chunks(3));
      }, 'E_TRUNCATED');
    }
  }
});

bad('forbidden globals and object-building opcodes are refused by name', async () => {
  const evil = P.done([...P.glob('os', 'system'), ...P.str('echo hi'), 0x85, 0x52]);
  await rejects(() => drain(torchZip([['archive/data.pkl', evil]])), 'E_FORMAT', /refusing to load global 'os\.system'/);
  const stackGlobal = P.done([...P.str('builtins'), ...P.str('eval'), 0x93]);
  await rejects(async () => unpickle(stackGlobal), 'E_FORMAT', /refusing to load global 'builtins\.eval'/);
  const callStorage = P.done([...P.glob('torch', 'FloatStorage'), 0x29, 0x52]);
  await rejects(async () => unpickle(callStorage), 'E_FORMAT', /refusing to call 'torch\.FloatStorage'/);
  await rejects(async () => unpickle(P.done([0x28, 0x69, ...enc.encode('os\nsystem\n')])), 'E_FORMAT', /refusing to instantiate/);
  await rejects(async () => unpickle(P.done([...P.glob('collections', 'OrderedDict'), 0x29, 0x81])), 'E_FORMAT', /refusing to instantiate/);
  const badPid = P.done([...P.str('storage'), 0x85, 0x51]);
  await rejects(async () => unpickle(badPid), 'E_FORMAT', /persistent id/);
});

bad('a pickle building a huge list, a deep MARK pile, a 4 GB string or a lying memo fails fast with bounded memory', async () => {
  const n = MAX_CONTAINER_ELEMENTS + 1;
  const big = new Uint8Array(4 + 2 * n);
  big.set([0x80, 0x02, 0x5d]);
  for (let i = 0; i < n; i++) { big[3 + 2 * i] = 0x4e; big[4 + 2 * i] = 0x61; } // NONE, APPEND
  big[3 + 2 * n] = 0x2e;
  await rejects(async () => unpickle(big), 'E_FORMAT', /container grows past/);
  const marks = new Uint8Array(MAX_STACK_ITEMS + 10).fill(0x4e);
  marks.set([0x80, 0x02]);
  await rejects(async () => unpickle(marks), 'E_FORMAT', /values on the stack/);
  await rejects(async () => unpickle(Uint8Array.from([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0xff, 0x61])), 'E_FORMAT', /longer than the .*limit/);
  await rejects(async () => unpickle(Uint8Array.from([0x80, 0x02, 0x58, 0x10, 0x00, 0x00, 0x00, 0x61, 0x2e])), 'E_FORMAT', /pickle ends/);
  await rejects(async () => unpickle(Uint8Array.from([0x80, 0x02, 0x68, 0x05, 0x2e])), 'E_FORMAT', /memo entry 5/);
  await rejects(async () => unpickle(Uint8Array.from([0x80, 0x02, 0x4e])), 'E_FORMAT', /without STOP/);
  // A data.pkl whose header declares 1 GiB fails before a byte of it is read.
  const huge = plainZip([{ name: 'a/data.pkl', stored: new Uint8Array(10), size: 10 }]);
  new DataView(huge.buffer).setUint32(18, 1 << 30, true);
  new DataView(huge.buffer).setUint32(22, 1 << 30, true);
  await rejects(() => drain(huge), 'E_FORMAT', /over the .*limit/);
});

bad('unsafe entry names: "..", absolute paths, drive letters, backslashes', async () => {
  const { bytes } = smallCheckpoint();
  for (const name of ['archive/../../etc/passwd', '/archive/data.pkl', 'C:/archive/data.pkl', 'archive\\..\\x']) {
    const z = torchZip([[name, enc.encode('x')], ['archive/data.pkl', P.done([0x4e])]]);
    await rejects(() => drain(z), 'E_FORMAT', /unsafe zip entry name/);
  }
  assert.ok((await drain(bytes)).length > 0, 'the well-formed archive itself is fine');
});

bad('zip bombs: a declared inflated size over the limit, or output past the declared size', async () => {
  const pkl = P.done([0x4e]);
  const declared = plainZip([
    { name: 'a/data.pkl', stored: pkl },
    { name: 'a/extra', stored: deflateSync(new Uint8Array(100)), method: 8, size: MAX_INFLATED_BYTES + 1 },
  ]);
  await rejects(() => drain(declared), 'E_FORMAT', /over the .*-byte limit/);
  const zeros = new Uint8Array(1 << 20);
  const lying = plainZip([
    { name: 'a/data.pkl', stored: pkl },
    { name: 'a/extra', stored: deflateSync(zeros), method: 8, size: 10, crc: crc32(zeros) },
  ]);
  await rejects(() => drain(lying), 'E_FORMAT', /inflates past its declared 10 bytes/);
  const garbage = plainZip([{ name: 'a/data.pkl', stored: Uint8Array.from([0xff, 0xff, 0xff]), method: 8, size: 3 }]);
  await rejects(() => drain(garbage), 'E_FORMAT', /deflate/);
});

bad('lying headers: storage sizes, views past the end, element-count overflow, central directory offsets', async () => {
  const pkl = P.done(P.dict([[P.str('w'), P.tensor('FloatStorage', '0', 4, 0, [4], [1])]]));
  // The local header says 12 bytes, the pickle says 4 floats.
  await rejects(() => drain(plainZip([{ name: 'a/data.pkl', stored: pkl }, { name: 'a/data/0', stored: new Uint8Array(12) }])), 'E_FORMAT', /holds 12 bytes but data\.pkl declares 16/);
  // torch style (sizes in descriptors): the storage is shorter than the pickle says.
  await rejects(() => drain(torchZip([['a/data.pkl', pkl], ['a/data/0', new Uint8Array(12)], ['a/version', enc.encode('3\n')]])), 'E_FORMAT');
  // A view reaching past its storage.
  const past = P.done(P.dict([[P.str('w'), P.tensor('FloatStorage', '0', 4, 2, [3], [1])]]));
  await rejects(() => drain(torchZip([['a/data.pkl', past], ['a/data/0', new Uint8Array(16)]])), 'E_FORMAT', /reaches element 4 of storage '0', which has 4/);
  // An element count whose byte size overflows 2^53.
  const overflow = P.done(P.dict([[P.str('w'), P.tensor('FloatStorage', '0', 2 ** 52, 0, [1], [1])]]));
  await rejects(() => drain(torchZip([['a/data.pkl', overflow]])), 'E_FORMAT', /too many bytes/);
  const shapeOverflow = P.done(P.dict([[P.str('w'), P.tensor('FloatStorage', '0', 4, 0, [2 ** 30, 2 ** 30, 2 ** 30], [0, 0, 0])]]));
  await rejects(() => drain(torchZip([['a/data.pkl', shapeOverflow], ['a/data/0', new Uint8Array(16)]])), 'E_FORMAT', /too many elements/);
  // Central directory pointing elsewhere than where it is, or at another local header.
  const ok = [{ name: 'a/data.pkl', stored: pkl }, { name: 'a/data/0', stored: new Uint8Array(16) }];
  assert.ok((await drain(plainZip(ok))).length > 0, 'the untweaked plain archive reads');
  await rejects(() => drain(plainZip(ok, { cdOffsetDelta: 1000 })), 'E_FORMAT', /central directory starts at/);
  await rejects(() => drain(plainZip(ok, { centralOffsetDelta: 3 })), 'E_FORMAT', /its local header is at/);
  // A storage the pickle names but the archive lacks; a storage before data.pkl.
  await rejects(() => drain(torchZip([['a/data.pkl', pkl], ['a/version', enc.encode('3\n')]])), 'E_FORMAT', /no entry 'a\/data\/0'/);
  await rejects(() => drain(torchZip([['a/data/0', new Uint8Array(16)], ['a/data.pkl', pkl]])), 'E_FORMAT', /before data\.pkl/);
  // Trailing bytes after the end record.
  const { bytes } = smallCheckpoint();
  await rejects(() => drain(Uint8Array.from([...bytes, 0])), 'E_FORMAT', /follow the end of the archive/);
});

bad('corrupt data, encryption, unknown or compressed storages, the legacy format', async () => {
  const { bytes } = smallCheckpoint();
  const flipped = bytes.slice();
  const at = indexOfSeq(flipped, f32([1, 2, 3]));
  assert.ok(at > 0, 'the storage bytes are in the file');
  flipped[at + 5] ^= 1;
  await rejects(() => drain(flipped), 'E_FORMAT', /CRC-32 mismatch/);
  const pkl = P.done(P.dict([[P.str('w'), P.tensor('FloatStorage', '0', 1, 0, [1], [1])]]));
  await rejects(() => drain(plainZip([{ name: 'a/data.pkl', stored: pkl, flags: 0x801 }])), 'E_FORMAT', /encrypted/);
  await rejects(() => drain(plainZip([{ name: 'a/data.pkl', stored: pkl, method: 12 }])), 'E_FORMAT', /compression method 12/);
  const z = deflateSync(f32([1]));
  await rejects(() => drain(plainZip([{ name: 'a/data.pkl', stored: pkl }, { name: 'a/data/0', stored: z, method: 8, size: 4, crc: crc32(f32([1])) }])), 'E_FORMAT', /storage is compressed/);
  const legacy = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02]);
  assert.ok(pytorch.sniff(legacy), 'legacy files are recognised (to explain them)');
  await rejects(() => drain(legacy), 'E_FORMAT', /_use_new_zipfile_serialization=True/);
  await rejects(() => drain(enc.encode('hello world, not a zip')), 'E_FORMAT', /not a torch\.save zip/);
  await rejects(() => drain(new Uint8Array(0)), 'E_TRUNCATED');
});

bad('a flipped bit in a large storage is caught by the Wasm CRC-32 (the fast path inspect uses), read whole or streamed', async () => {
  await useFastCrc32(); // as the CLI does; long members then take the kernel's sparse reduction
  const n = 300_001; // 1.2 MB: far past the kernel's 9600-byte table-only limit
  const values = Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
  const pkl = P.done(P.dict([[P.str('w'), P.tensor('FloatStorage', '0', n, 0, [n], [1])]]));
  const bytes = torchZip([['big/data.pkl', pkl], ['big/data/0', f32(values)], ['big/version', enc.encode('3\n')]]);
  const at = indexOfSeq(bytes, f32(values.slice(0, 4)));
  assert.ok(at > 0, 'the storage bytes are in the file');
  const streamAll = async (b: Uint8Array, chunkBytes: number) => {
    const pieces = async function* () { yield b.subarray(0, 70_000); yield b.subarray(70_000); };
    const r = await pytorch.open(readerFromChunks(pieces(), 'big.pt'), { fileName: 'big.pt' });
    for await (const t of r.tensors()) for await (const _ of t.chunks(chunkBytes)) { /* inspect reads it this way */ }
  };
  await drain(bytes); // intact: reads
  await streamAll(bytes, 100_003);
  for (const offset of [0, 9_599, 600_000, 4 * n - 4_801, 4 * n - 1]) {
    const flipped = bytes.slice();
    flipped[at + offset] ^= 0x10;
    await rejects(() => drain(flipped), 'E_FORMAT', /CRC-32 mismatch/);
    await rejects(() => streamAll(flipped, 1 << 20), 'E_FORMAT', /CRC-32 mismatch/);
  }
});

bad('rebuild refuses wrong tensor sizes and foreign skeletons', async () => {
  const { bytes } = smallCheckpoint();
  const r = await pytorch.open(readerFromBytes(bytes));
  for await (const t of r.tensors()) await t.bytes();
  await rejects(() => pytorch.rebuild(r.skeleton(), () => (async function* () { yield new Uint8Array(8); })(), memorySink()), 'E_FORMAT', /needs 24/);
  await rejects(() => pytorch.rebuild(r.skeleton(), () => (async function* () { yield new Uint8Array(28); })(), memorySink()), 'E_FORMAT', /more than the 24 bytes/);
  await rejects(() => pytorch.rebuild(enc.encode('not a skeleton at all'), () => (async function* () {})(), memorySink()), 'E_FORMAT', /skeleton/);
  const fresh = await pytorch.open(readerFromBytes(bytes));
  assert.throws(() => fresh.skeleton(), /after tensors\(\) has been iterated/);
});

fixtures.run();
writer.run();
built.run();
bad.run();
