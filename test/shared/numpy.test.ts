// NumPy .npy/.npz: fixtures made by real NumPy 1.24 (stats and hashes from expected.json),
// byte-identical rebuilds, tiny-chunk streaming, Fortran order and big-endian arrays built here,
// the writers, and one bad file per validation rule.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { expectedFixtures, platform, type ExpectedTensor } from './platform.ts';
import { collect, memorySink, readerFromBytes, readerFromChunks, type ByteReader } from '../../src/core/io.ts';
import { npy, npz, encodeNpyHeader, writeNpy, writeNpz, type NumpyTensor } from '../../src/formats/numpy.ts';
import { sniffFormat } from '../../src/formats/index.ts';
import { writeZip } from '../../src/formats/zip.ts';
import type { CheckpointFormat } from '../../src/formats/types.ts';
import { expectCode, sha256 } from './assertions.ts';

const NP_TO_DTYPE: Record<string, string> = { float32: 'F32', float64: 'F64', int64: 'I64' };

function values(dtype: string, b: Uint8Array): number[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  const step: Record<string, number> = { F32: 4, F64: 8, I64: 8, I32: 4, I16: 2, U16: 2, U8: 1, I8: 1 };
  for (let i = 0; i < b.length; i += step[dtype]) {
    if (dtype === 'F32') out.push(dv.getFloat32(i, true));
    else if (dtype === 'F64') out.push(dv.getFloat64(i, true));
    else if (dtype === 'I64') out.push(Number(dv.getBigInt64(i, true)));
    else if (dtype === 'I32') out.push(dv.getInt32(i, true));
    else if (dtype === 'I16') out.push(dv.getInt16(i, true));
    else if (dtype === 'U16') out.push(dv.getUint16(i, true));
    else if (dtype === 'I8') out.push(dv.getInt8(i));
    else out.push(dv.getUint8(i));
  }
  return out;
}

async function checkAgainst(where: string, t: { dtype: string; shape: number[] }, bytes: Uint8Array, want: ExpectedTensor) {
  assert.is(t.dtype, NP_TO_DTYPE[want.dtype], `${where} dtype`);
  assert.equal(t.shape, want.shape, `${where} shape`);
  assert.is(await sha256(bytes), want.sha256_le_bytes, `${where} sha256`);
  let sum = 0, sumsq = 0, maxabs = 0, sumabs = 0;
  for (const v of values(t.dtype, bytes)) { sum += v; sumsq += v * v; sumabs += Math.abs(v); maxabs = Math.max(maxabs, Math.abs(v)); }
  const tol = (s: number) => 1e-12 + 1e-9 * s;
  assert.ok(Math.abs(sum - want.sum) <= tol(sumabs), `${where} sum ${sum} vs ${want.sum}`);
  assert.ok(Math.abs(sumsq - want.sumsq) <= tol(sumsq), `${where} sumsq ${sumsq} vs ${want.sumsq}`);
  assert.is(maxabs, want.maxabs, `${where} maxabs`);
}

/** Read every tensor (whole), then rebuild from the skeleton; returns the tensors and the rebuilt bytes. */
async function roundTrip(format: CheckpointFormat, reader: ByteReader, fileName: string, chunkBytes?: number) {
  const r = await format.open(reader, { fileName });
  const tensors = new Map<string, { t: NumpyTensor; bytes: Uint8Array }>();
  for await (const t of r.tensors() as AsyncIterable<NumpyTensor>) {
    const bytes = chunkBytes ? await collect(t.chunks(chunkBytes)) : await t.bytes();
    tensors.set(t.name, { t, bytes });
  }
  const skeleton = r.skeleton();
  const asked: string[] = [];
  const sink = memorySink();
  await format.rebuild(skeleton, (name) => {
    asked.push(name);
    const b = tensors.get(name)!.bytes;
    // hand the bytes back in odd-sized pieces to exercise carries
    return (async function* () { for (let i = 0; i < b.length; i += 7) yield b.subarray(i, i + 7); })();
  }, sink);
  return { tensors, rebuilt: sink.bytes(), skeleton, asked, metadata: r.metadata as Record<string, unknown> };
}

function tinyChunks(b: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  return (async function* () { for (let i = 0; i < b.length; i += size) yield b.slice(i, i + size); })();
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

async function drain(format: CheckpointFormat, bytes: Uint8Array, name = 'bad.npy') {
  const r = await format.open(readerFromBytes(bytes, name), { fileName: name });
  for await (const t of r.tensors()) await t.bytes();
}

const F = suite('numpy fixtures');

for (const name of ['w.npy', 'arrays.npz', 'arrays-compressed.npz']) {
  F(`${name}: every expected tensor, byte-identical rebuild`, async () => {
    const file = await platform().readFixture(name);
    const want = (await expectedFixtures())[name];
    const format = name.endsWith('.npy') ? npy : npz;
    assert.is(sniffFormat(file.subarray(0, 4096), name).id, format.id);
    const { tensors, rebuilt } = await roundTrip(format, readerFromBytes(file, name), name);
    assert.equal([...tensors.keys()].sort(), Object.keys(want.tensors).sort());
    for (const [tn, w] of Object.entries(want.tensors)) await checkAgainst(`${name}:${tn}`, tensors.get(tn)!.t, tensors.get(tn)!.bytes, w);
    assert.ok(equalBytes(rebuilt, file), `${name}: rebuilt bytes differ`);
  });

  F(`${name}: 3-byte pipe chunks, 5-byte tensor chunks, skipped tensors`, async () => {
    const file = await platform().readFixture(name);
    const format = name.endsWith('.npy') ? npy : npz;
    const { rebuilt, tensors } = await roundTrip(format, readerFromChunks(tinyChunks(file, 3), name), name, 5);
    assert.ok(equalBytes(rebuilt, file));
    const want = (await expectedFixtures())[name];
    for (const [tn, w] of Object.entries(want.tensors)) assert.is(await sha256(tensors.get(tn)!.bytes), w.sha256_le_bytes);
    // Skipping every tensor still yields a complete skeleton.
    const r = await format.open(readerFromChunks(tinyChunks(file, 11), name), { fileName: name });
    let n = 0;
    for await (const _ of r.tensors()) n++;
    assert.is(n, Object.keys(want.tensors).length);
    assert.ok(r.skeleton().length > 0);
  });
}

F('compressed npz written by numpy (zlib): every member reproduced by zlib\'s deflate and stored per tensor', async () => {
  const file = await platform().readFixture('arrays-compressed.npz');
  const { metadata, asked } = await roundTrip(npz, readerFromBytes(file), 'arrays-compressed.npz');
  const kept = metadata.deflatedKeptCompressed as number;
  const reproduced = metadata.deflatedReproduced as number;
  assert.is(kept + reproduced, 3);
  assert.is(reproduced, 3, 'pako reproduces what numpy\'s zlib wrote');
  // rebuild asks only for the tensors whose member it re-deflates or stores
  assert.is(asked.length, reproduced);
});

F.run();

const L = suite('numpy layouts');

/** A 2×3×4 float64 array with distinct values; C-order LE bytes. */
function sample(shape: number[], dtype: 'F64' | 'I32' | 'U16' | 'F32' = 'F64'): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const size = dtype === 'F64' ? 8 : dtype === 'U16' ? 2 : 4;
  const out = new Uint8Array(n * size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    if (dtype === 'F64') dv.setFloat64(i * 8, i * 1.5 - 3, true);
    else if (dtype === 'F32') dv.setFloat32(i * 4, i * 0.25 - 1, true);
    else if (dtype === 'I32') dv.setInt32(i * 4, i * 1000 - 7, true);
    else dv.setUint16(i * 2, i * 300, true);
  }
  return out;
}

/** Fortran-order bytes of a C-order array, computed independently (index arithmetic). */
function fortranOf(c: Uint8Array, shape: number[], item: number): Uint8Array {
  const out = new Uint8Array(c.length);
  const n = c.length / item;
  for (let i = 0; i < n; i++) {
    // C index i -> multi-index -> Fortran offset
    let rem = i, f = 0, stride = 1;
    const idx: number[] = [];
    for (let k = shape.length - 1; k >= 0; k--) { idx[k] = rem % shape[k]; rem = Math.floor(rem / shape[k]); }
    for (let k = 0; k < shape.length; k++) { f += idx[k] * stride; stride *= shape[k]; }
    out.set(c.subarray(i * item, i * item + item), f * item);
  }
  return out;
}

function swapped(b: Uint8Array, item: number): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < out.length; i += item) out.subarray(i, i + item).reverse();
  return out;
}

function npyFile(descr: string, fortran: boolean, shape: number[], data: Uint8Array, version = 1): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const lenBytes = version === 1 ? 2 : 4;
  const pad = (64 - ((8 + lenBytes + dict.length + 1) % 64)) % 64;
  dict += ' '.repeat(pad) + '\n';
  const head = new Uint8Array(8 + lenBytes + dict.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  for (let k = 0; k < lenBytes; k++) head[8 + k] = (dict.length >> (8 * k)) & 0xff;
  head.set(new TextEncoder().encode(dict), 8 + lenBytes);
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

const CASES: { descr: string; dtype: 'F64' | 'I32' | 'U16' | 'F32'; item: number; fortran: boolean; be: boolean; version: number }[] = [
  { descr: '<f8', dtype: 'F64', item: 8, fortran: true, be: false, version: 1 },
  { descr: '>f8', dtype: 'F64', item: 8, fortran: false, be: true, version: 1 },
  { descr: '>i4', dtype: 'I32', item: 4, fortran: true, be: true, version: 2 },
  { descr: '>u2', dtype: 'U16', item: 2, fortran: false, be: true, version: 3 },
  { descr: '<f4', dtype: 'F32', item: 4, fortran: false, be: false, version: 3 },
];

for (const c of CASES) {
  L(`${c.descr} fortran=${c.fortran} v${c.version}.0: C-order LE out, identical file back`, async () => {
    const shape = [2, 3, 4];
    const cBytes = sample(shape, c.dtype);
    let fileData = c.fortran ? fortranOf(cBytes, shape, c.item) : cBytes;
    if (c.be) fileData = swapped(fileData, c.item);
    const file = npyFile(c.descr, c.fortran, shape, fileData, c.version);
    for (const chunk of [undefined, 5]) {
      const reader = chunk ? readerFromChunks(tinyChunks(file, 3), 'x.npy') : readerFromBytes(file, 'x.npy');
      const { tensors, rebuilt } = await roundTrip(npy, reader, 'x.npy', chunk);
      const t = tensors.get('x')!;
      assert.is(t.t.dtype, c.dtype);
      assert.equal(t.t.shape, shape);
      assert.is(t.t.npy.fortranOrder, c.fortran);
      assert.is(t.t.npy.bigEndian, c.be);
      assert.ok(equalBytes(t.bytes, cBytes), 'tensor bytes are C-order little-endian');
      assert.ok(equalBytes(rebuilt, file), 'rebuild gives the original layout');
    }
  });
}

L('Fortran + big-endian arrays inside an npz (stored and deflated), rebuilt exactly', async () => {
  const shape = [3, 5];
  const c = sample(shape, 'I32');
  const fileData = swapped(fortranOf(c, shape, 4), 4);
  const member = npyFile('>i4', true, shape, fileData);
  for (const method of [0, 8] as const) {
    const sink = memorySink();
    await writeZip([{ name: 'a.npy', data: member, method }, { name: 'notes.txt', data: new TextEncoder().encode('hello') }], sink);
    const file = sink.bytes();
    const { tensors, rebuilt, metadata } = await roundTrip(npz, readerFromBytes(file), 'f.npz');
    assert.equal([...tensors.keys()], ['a']);
    assert.ok(equalBytes(tensors.get('a')!.bytes, c));
    assert.ok(equalBytes(rebuilt, file));
    if (method === 8) assert.is(metadata.deflatedReproduced, 1, 'our own deflate is reproduced, not kept');
  }
});

L.run();

const W = suite('numpy writers');

W('encodeNpyHeader matches the fixture header numpy wrote', async () => {
  const file = await platform().readFixture('w.npy');
  const h = encodeNpyHeader('F32', [20, 30]);
  assert.ok(equalBytes(h, file.subarray(0, h.length)));
  assert.is(h.length % 64, 0);
  assert.match(new TextDecoder().decode(encodeNpyHeader('I64', [30])), /'shape': \(30,\), \}/);
  assert.match(new TextDecoder().decode(encodeNpyHeader('F64', [])), /'shape': \(\), \}/);
});

W('writeNpy reproduces w.npy; writeNpz (stored) and compressed read back; format.write', async () => {
  const file = await platform().readFixture('w.npy');
  const data = file.slice(128);
  const s = memorySink();
  await writeNpy({ name: 'w', dtype: 'F32', shape: [20, 30], data }, s);
  assert.ok(equalBytes(s.bytes(), file));
  const tensors = [
    { name: 'w', dtype: 'F32' as const, shape: [20, 30], data },
    { name: 'layer/b', dtype: 'I32' as const, shape: [4], data: sample([4], 'I32') },
  ];
  for (const compress of [false, true]) {
    const z = memorySink();
    await writeNpz(tensors, z, { compress });
    const { tensors: back, rebuilt, metadata } = await roundTrip(npz, readerFromBytes(z.bytes()), 'o.npz');
    assert.equal([...back.keys()], ['w', 'layer/b']);
    assert.ok(equalBytes(back.get('w')!.bytes, data));
    assert.ok(equalBytes(rebuilt, z.bytes()));
    if (compress) assert.is(metadata.deflatedKeptCompressed, 0);
  }
  await expectCode(npy.write(tensors, memorySink()), 'E_ARGUMENT');
  await expectCode(writeNpy({ name: 'x', dtype: 'BF16', shape: [1], data: new Uint8Array(2) }, memorySink()), 'E_ARGUMENT');
});

W.run();

const B = suite('numpy bad input');

const good = () => npyFile('<f4', false, [2, 2], new Uint8Array(16));

B('truncated data and header', async () => {
  const f = good();
  await expectCode(drain(npy, f.subarray(0, f.length - 3)), 'E_TRUNCATED');
  await expectCode(drain(npy, f.subarray(0, 20)), 'E_TRUNCATED');
  // on a pipe (unknown size) too
  const r = await npy.open(readerFromChunks(tinyChunks(f.subarray(0, f.length - 3), 4)), { fileName: 'p.npy' });
  await expectCode((async () => { for await (const t of r.tensors()) await t.bytes(); })(), 'E_TRUNCATED');
});

B('trailing bytes, bad magic, version, header text, object arrays, structured dtypes, overflow', async () => {
  const f = good();
  const extra = new Uint8Array(f.length + 1);
  extra.set(f);
  await expectCode(drain(npy, extra), 'E_FORMAT', 'trailing');
  const m = f.slice(); m[1] = 0x41;
  await expectCode(drain(npy, m), 'E_FORMAT', 'magic');
  const v = f.slice(); v[6] = 9;
  await expectCode(drain(npy, v), 'E_FORMAT', 'version');
  await expectCode(drain(npy, npyFile('|O', false, [2], new Uint8Array(16))), 'E_FORMAT', 'object', /pickled object arrays are not supported/);
  await expectCode(drain(npy, npyFile('<c16', false, [1], new Uint8Array(16))), 'E_FORMAT', 'dtype');
  await expectCode(drain(npy, npyFile('<f4', false, [2 ** 40, 2 ** 40], new Uint8Array(0))), 'E_FORMAT', 'overflow');
  const bad = good();
  bad[bad.indexOf(0x68 /* h of 'shape' */, 10) + 3] = 0x66;
  await expectCode(drain(npy, bad), 'E_FORMAT', 'header');
  // header length over the limit
  const big = good(); big[6] = 2; big.set([0, 0, 0, 0x7f], 8);
  await expectCode(drain(npy, big), 'E_FORMAT', 'header-length');
  // version 3 header with invalid UTF-8
  const u = npyFile('<f4', false, [2, 2], new Uint8Array(16), 3);
  u[13] = 0xff;
  await expectCode(drain(npy, u), 'E_FORMAT', 'utf8');
});

B('npz: member data size disagrees with its npy header, unsafe names, duplicate names', async () => {
  const s1 = memorySink();
  await writeZip([{ name: 'a.npy', data: npyFile('<f4', false, [3], new Uint8Array(8)) }], s1);
  await expectCode(drain(npz, s1.bytes(), 'a.npz'), 'E_FORMAT', 'member-size');
  const s2 = memorySink();
  await writeZip([{ name: 'a.npy', data: good() }], s2);
  const evil = s2.bytes().slice();
  const enc = new TextEncoder();
  const patch = (b: Uint8Array, find: string, repl: string) => {
    const f = enc.encode(find), r = enc.encode(repl);
    const out = b.slice();
    for (let i = 0; i + f.length <= out.length; i++) if (f.every((x, k) => out[i + k] === x)) out.set(r, i);
    return out;
  };
  await expectCode(drain(npz, patch(evil, 'a.npy', '/.npy'), 'e.npz'), 'E_FORMAT', 'unsafe-path');
  const long = memorySink();
  await writeZip([{ name: 'x/y/a.npy', data: good() }], long);
  await expectCode(drain(npz, patch(long.bytes(), 'x/y/a.npy', '../../a.npy'.slice(0, 9)), 'e.npz'), 'E_FORMAT', 'unsafe-path');
});

B.run();
