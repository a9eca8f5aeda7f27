// GGUF: files built here byte by byte from ggml's docs/gguf.md (independently of our writer), with
// every metadata value type, F32/F16/BF16 tensors and quantized Q8_0/Q4_0/Q4_K tensors; the
// dequantization checked against a reference written here; byte-identical rebuilds; bad files.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { collect, memorySink, readerFromBytes, readerFromChunks } from '../../src/core/io.ts';
import { gguf, writeGguf, type GGUFTensor } from '../../src/formats/gguf.ts';
import { dequantizeForStats } from '../../src/formats/convert.ts';
import { sniffFormat } from '../../src/formats/index.ts';
import { expectCode } from './assertions.ts';

// ---- a minimal GGUF builder following the spec --------------------------------------------------
class B {
  b: number[] = [];
  u8(v: number) { this.b.push(v & 255); return this; }
  u16(v: number) { this.b.push(v & 255, (v >> 8) & 255); return this; }
  u32(v: number) { for (let k = 0; k < 4; k++) this.b.push(Math.floor(v / 2 ** (8 * k)) & 255); return this; }
  u64(v: number | bigint) { let x = BigInt.asUintN(64, BigInt(v)); for (let k = 0; k < 8; k++) { this.b.push(Number(x & 255n)); x >>= 8n; } return this; }
  f32(v: number) { const d = new DataView(new ArrayBuffer(4)); d.setFloat32(0, v, true); this.b.push(...new Uint8Array(d.buffer)); return this; }
  f64(v: number) { const d = new DataView(new ArrayBuffer(8)); d.setFloat64(0, v, true); this.b.push(...new Uint8Array(d.buffer)); return this; }
  str(s: string | Uint8Array) { const e = typeof s === 'string' ? new TextEncoder().encode(s) : s; this.u64(e.length); this.b.push(...e); return this; }
  raw(a: ArrayLike<number>) { this.b.push(...Array.from(a)); return this; }
  pad(align: number) { while (this.b.length % align) this.b.push(0); return this; }
  bytes() { return new Uint8Array(this.b); }
}

interface TI { name: string; dims: number[]; type: number; data: Uint8Array }

function buildGguf(kv: (b: B) => number, tensors: TI[], opts: { align?: number; version?: number; tailPad?: boolean } = {}): Uint8Array {
  const align = opts.align ?? 32;
  const b = new B().raw([0x47, 0x47, 0x55, 0x46]).u32(opts.version ?? 3).u64(tensors.length);
  const kvStart = b.b.length;
  b.u64(0); // patched below
  const n = kv(b);
  const patch = new B().u64(n).b;
  b.b.splice(kvStart, 8, ...patch);
  let off = 0;
  const offs: number[] = [];
  for (const t of tensors) {
    off = Math.ceil(off / align) * align;
    b.str(t.name).u32(t.dims.length);
    for (const d of t.dims) b.u64(d);
    b.u32(t.type).u64(off);
    offs.push(off);
    off += t.data.length;
  }
  b.pad(align);
  const dataStart = b.b.length;
  for (let i = 0; i < tensors.length; i++) {
    while (b.b.length < dataStart + offs[i]) b.u8(0);
    b.raw(tensors[i].data);
  }
  if (opts.tailPad !== false) b.pad(align);
  return b.bytes();
}

function allValueTypes(b: B): number {
  b.str('general.architecture').u32(8).str('llama');
  b.str('general.name').u32(8).str('tïny ✓');
  b.str('u8').u32(0).u8(200);
  b.str('i8').u32(1).u8(-5);
  b.str('u16').u32(2).u16(60000);
  b.str('i16').u32(3).u16(-300 & 0xffff);
  b.str('u32').u32(4).u32(4_000_000_000);
  b.str('i32').u32(5).u32(-70000 >>> 0);
  b.str('f32').u32(6).f32(0.5);
  b.str('bool').u32(7).u8(1);
  b.str('u64').u32(10).u64(2n ** 60n);
  b.str('i64').u32(11).u64(-3n);
  b.str('f64').u32(12).f64(-1.25);
  b.str('tokens').u32(9).u32(8).u64(3).str('a').str('bc').str('');
  b.str('nested').u32(9).u32(9).u64(2).u32(5).u64(2).u32(1).u32(2).u32(4).u64(1).u32(7);
  return 15;
}

const f32Bytes = (vals: number[]) => new Uint8Array(new Float32Array(vals).buffer);
function f16Bits(v: number): number {
  // exact for the small values used here (integers and halves)
  if (v === 0) return 0;
  const s = v < 0 ? 0x8000 : 0;
  v = Math.abs(v);
  const e = Math.floor(Math.log2(v));
  const m = Math.round((v / 2 ** e - 1) * 1024);
  return s | ((e + 15) << 10) | m;
}
function refF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Q8_0 blocks: [f16 d][32 × int8]. */
function q8Blocks(n: number): Uint8Array {
  const out = new Uint8Array((n / 32) * 34);
  for (let blk = 0; blk < n / 32; blk++) {
    const d = f16Bits(0.5 + blk);
    out[blk * 34] = d & 255; out[blk * 34 + 1] = d >> 8;
    for (let j = 0; j < 32; j++) out[blk * 34 + 2 + j] = ((j * 7 + blk) % 255) - 127 & 255;
  }
  return out;
}
/** Q4_0 blocks: [f16 d][16 bytes, low nibbles = values 0..15, high nibbles = values 16..31]. */
function q4Blocks(n: number): Uint8Array {
  const out = new Uint8Array((n / 32) * 18);
  for (let blk = 0; blk < n / 32; blk++) {
    const d = f16Bits(2 + blk);
    out[blk * 18] = d & 255; out[blk * 18 + 1] = d >> 8;
    for (let j = 0; j < 16; j++) out[blk * 18 + 2 + j] = ((j + blk) & 15) | (((15 - j) & 15) << 4);
  }
  return out;
}
/** Reference dequantization written from the ggml definitions. */
function refDequant(type: 'Q8_0' | 'Q4_0', b: Uint8Array): number[] {
  const out: number[] = [];
  const size = type === 'Q8_0' ? 34 : 18;
  for (let at = 0; at < b.length; at += size) {
    const d = refF16(b[at] | (b[at + 1] << 8));
    if (type === 'Q8_0') for (let j = 0; j < 32; j++) out.push(d * (b[at + 2 + j] > 127 ? b[at + 2 + j] - 256 : b[at + 2 + j]));
    else {
      const lo: number[] = [], hi: number[] = [];
      for (let j = 0; j < 16; j++) { lo.push(d * ((b[at + 2 + j] & 15) - 8)); hi.push(d * ((b[at + 2 + j] >> 4) - 8)); }
      out.push(...lo, ...hi);
    }
  }
  return out;
}

const T = {
  f32: { name: 'tok_embd.weight', dims: [3, 2], type: 0, data: f32Bytes([1, 2, 3, 4, 5, -6]) },
  f16: { name: 'norm.weight', dims: [5], type: 1, data: new Uint8Array([0, 60, 0, 64, 0, 66, 0, 188, 0, 0]) },
  bf16: { name: 'out.bf16', dims: [2, 1], type: 30, data: new Uint8Array([0x80, 0x3f, 0x00, 0xc0]) },
  q8: { name: 'blk.0.attn_q.weight', dims: [64, 3], type: 8, data: q8Blocks(64 * 3) },
  q4: { name: 'blk.0.ffn_up.weight', dims: [32, 2], type: 2, data: q4Blocks(64) },
  q4k: { name: 'blk.0.ffn_down.weight', dims: [256], type: 12, data: new Uint8Array(144).map((_, i) => i) },
};
const TENSORS: TI[] = [T.f32, T.f16, T.bf16, T.q8, T.q4, T.q4k];

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

async function readAll(bytes: Uint8Array, chunk?: number) {
  const reader = chunk ? readerFromChunks((async function* () { for (let i = 0; i < bytes.length; i += chunk) yield bytes.slice(i, i + chunk); })(), 'm.gguf') : readerFromBytes(bytes, 'm.gguf');
  const r = await gguf.open(reader, { fileName: 'm.gguf' });
  const got = new Map<string, { t: GGUFTensor; bytes: Uint8Array }>();
  for await (const t of r.tensors()) got.set(t.name, { t, bytes: chunk ? await collect(t.chunks(chunk)) : await t.bytes() });
  const sink = memorySink();
  await gguf.rebuild(r.skeleton(), (n) => (async function* () { yield got.get(n)!.bytes; })(), sink);
  return { r, got, rebuilt: sink.bytes() };
}

const G = suite('gguf');

G('metadata of every value type, tensor infos, C-order shapes, byte-identical rebuild (whole and 3-byte pipe)', async () => {
  const file = buildGguf(allValueTypes, TENSORS);
  assert.is(sniffFormat(file.subarray(0, 4096), 'm.gguf').id, 'gguf');
  for (const chunk of [undefined, 3]) {
    const { r, got, rebuilt } = await readAll(file, chunk);
    assert.ok(equalBytes(rebuilt, file), 'rebuilt bytes differ');
    const md = r.metadata;
    assert.is(md['general.name'], 'tïny ✓');
    assert.is(md['u8'], 200); assert.is(md['i8'], -5); assert.is(md['u16'], 60000); assert.is(md['i16'], -300);
    assert.is(md['u32'], 4_000_000_000); assert.is(md['i32'], -70000); assert.is(md['f32'], 0.5); assert.is(md['bool'], true);
    assert.is(md['u64'], (2n ** 60n).toString()); assert.is(md['i64'], -3); assert.is(md['f64'], -1.25);
    assert.equal(md['tokens'], ['a', 'bc', '']);
    assert.equal(md['nested'], [[1, 2], [7]]);
    assert.equal([...got.keys()], TENSORS.map((t) => t.name));
    const f = got.get(T.f32.name)!;
    assert.is(f.t.dtype, 'F32'); assert.equal(f.t.shape, [2, 3]); assert.ok(equalBytes(f.bytes, T.f32.data));
    assert.is(got.get(T.f16.name)!.t.dtype, 'F16');
    assert.is(got.get(T.bf16.name)!.t.dtype, 'BF16'); assert.equal(got.get(T.bf16.name)!.t.shape, [1, 2]);
    const q8 = got.get(T.q8.name)!;
    assert.is(q8.t.dtype, 'U8'); assert.equal(q8.t.shape, [3, 68]); assert.is(q8.t.ggml.typeName, 'Q8_0');
    assert.equal(q8.t.quantization!.shape, [3, 64]); assert.ok(equalBytes(q8.bytes, T.q8.data));
    const q4k = got.get(T.q4k.name)!;
    assert.is(q4k.t.quantization!.scheme, 'ggml:Q4_K');
    assert.type(q4k.t.quantization!.dequantizer, 'function'); // K-quants: checked in dequantize.test.ts
  }
});

G('Q8_0 and Q4_0 dequantized for statistics match the reference, in any chunking', async () => {
  const file = buildGguf(() => 0, [T.q8, T.q4, T.q4k, T.f32]);
  for (const chunk of [7, 1 << 20]) {
    const r = await gguf.open(readerFromBytes(file), { fileName: 'q.gguf' });
    for await (const t of r.tensors()) {
      const it = dequantizeForStats(t, chunk);
      if (t.name === T.f32.name) { assert.is(it, undefined); continue; }
      if (t.name === T.q4k.name) continue; // its values are checked against llama.cpp's reference in dequantize.test.ts
      const vals: number[] = [];
      for await (const v of it!) vals.push(...v);
      const ref = refDequant(t.name === T.q8.name ? 'Q8_0' : 'Q4_0', t.name === T.q8.name ? T.q8.data : T.q4.data);
      assert.is(vals.length, t.name === T.q8.name ? 192 : 64);
      assert.equal(vals, ref.map((x) => Math.fround(x)));
    }
  }
});

G('alignment 64, no padding after the last tensor, version 2', async () => {
  for (const opts of [{ align: 64 }, { tailPad: false }, { version: 2 }]) {
    const kv = (b: B) => { if (opts.align) { b.str('general.alignment').u32(4).u32(opts.align); return 1; } return 0; };
    const file = buildGguf(kv, [T.f16, T.f32], opts);
    const { got, rebuilt, r } = await readAll(file);
    assert.ok(equalBytes(rebuilt, file));
    assert.is(r.header.alignment, opts.align ?? 32);
    assert.ok(equalBytes(got.get(T.f32.name)!.bytes, T.f32.data));
  }
});

G('writer: F32/F16 v3 file reads back (tensors, metadata) and rebuilds identically', async () => {
  const s = memorySink();
  await writeGguf([{ name: 'a', dtype: 'F32', shape: [2, 3], data: T.f32.data }, { name: 'b', dtype: 'F16', shape: [5], data: T.f16.data }], s, { metadata: { 'general.name': 'w' } });
  const { got, rebuilt, r } = await readAll(s.bytes());
  assert.ok(equalBytes(rebuilt, s.bytes()));
  assert.is(r.header.version, 3);
  assert.equal(got.get('a')!.t.shape, [2, 3]);
  assert.equal(got.get('a')!.t.ggml.dims, [3, 2]);
  assert.is(r.metadata['general.name'], 'w');
  assert.ok(s.bytes().length % 32 === 0);
});

G('bad files: each a typed one-line error', async () => {
  const good = buildGguf(allValueTypes, [T.f32, T.q8]);
  const open = async (b: Uint8Array) => { const x = await readAll(b); return x; };
  await expectCode(open(good.subarray(0, good.length - 40)), 'E_FORMAT', 'past-end');
  await expectCode(open(good.subarray(0, 12)), 'E_TRUNCATED');
  await expectCode(open(good.subarray(0, 30)), 'E_FORMAT', 'past-end');
  // truncated over a pipe (size unknown)
  await expectCode(readAll(good.subarray(0, good.length - 40), 5), 'E_TRUNCATED');
  // KV count 2^60
  const kvHuge = good.slice(); kvHuge.set(new B().u64(2n ** 60n).b, 16);
  await expectCode(open(kvHuge), 'E_FORMAT', 'too-large');
  const kvMany = good.slice(); kvMany.set(new B().u64(5_000_000).b, 16);
  await expectCode(open(kvMany), 'E_FORMAT', 'kv-count');
  const kvFit = good.slice(); kvFit.set(new B().u64(900_000).b, 16);
  await expectCode(open(kvFit), 'E_FORMAT', 'past-end');
  // a string length past the end of the file (first key's length at offset 24)
  const strLong = good.slice(); strLong.set(new B().u64(good.length).b, 24);
  await expectCode(open(strLong), 'E_FORMAT', 'past-end');
  const strHuge = good.slice(); strHuge.set(new B().u64(2n ** 40n).b, 24);
  await expectCode(open(strHuge), 'E_FORMAT', 'string-length');
  // bad UTF-8 in a key
  const badUtf = buildGguf((b) => { b.str(new Uint8Array([0x61, 0xff])).u32(4).u32(1); return 1; }, [T.f32]);
  await expectCode(open(badUtf), 'E_FORMAT', 'utf8');
  // version 1, unknown version, big-endian, bad magic
  const v1 = good.slice(); v1[4] = 1;
  await expectCode(open(v1), 'E_FORMAT', 'version');
  const be = good.slice(); be.set([0, 0, 0, 3], 4);
  await expectCode(open(be), 'E_FORMAT', 'big-endian');
  const magic = good.slice(); magic[0] = 0x48;
  await expectCode(open(magic), 'E_FORMAT', 'magic');
  // tensor infos: unknown type, dims not a block multiple, offset not aligned, overlap, gap, offset past end, overflow, duplicates
  const mk = (ts: TI[], align = 32) => buildGguf(() => 0, ts, { align });
  await expectCode(open(mk([{ ...T.f32, type: 77 }])), 'E_FORMAT', 'ggml-type');
  await expectCode(open(mk([{ ...T.q8, dims: [48, 3] }])), 'E_FORMAT', 'block');
  await expectCode(open(mk([{ ...T.f32, dims: [2 ** 40, 2 ** 20, 2 ** 10] }])), 'E_FORMAT', 'overflow');
  await expectCode(open(mk([T.f32, { ...T.f16, name: T.f32.name }])), 'E_FORMAT', 'duplicate');
  await expectCode(open(buildGguf((b) => { b.str('a').u32(4).u32(1); b.str('a').u32(4).u32(2); return 2; }, [])), 'E_FORMAT', 'duplicate');
  const patchOffset = (file: Uint8Array, name: string, value: number) => {
    const enc = new TextEncoder().encode(name);
    const out = file.slice();
    for (let i = 0; i < out.length; i++) {
      if (enc.every((x, k) => out[i + k] === x)) {
        const nd = out[i + enc.length];
        out.set(new B().u64(value).b, i + enc.length + 4 + nd * 8 + 4);
        return out;
      }
    }
    throw new Error('name not found');
  };
  const two = mk([T.f32, T.f16]);
  await expectCode(open(patchOffset(two, T.f16.name, 8)), 'E_FORMAT', 'alignment');
  await expectCode(open(patchOffset(two, T.f16.name, 0)), 'E_FORMAT', 'overlap');
  await expectCode(open(patchOffset(two, T.f16.name, 64)), 'E_FORMAT', 'gap');
  await expectCode(open(patchOffset(mk([T.f32]), T.f32.name, 2 ** 40)), 'E_FORMAT', 'gap');
  // bytes after the padding
  const trailing = new Uint8Array(good.length + 32); trailing.set(good);
  await expectCode(open(trailing), 'E_FORMAT', 'trailing');
  // a bool that is neither 0 nor 1, nested arrays too deep, an unknown value type
  await expectCode(open(buildGguf((b) => { b.str('b').u32(7).u8(2); return 1; }, [])), 'E_FORMAT', 'value');
  await expectCode(open(buildGguf((b) => { b.str('t').u32(13).u32(0); return 1; }, [])), 'E_FORMAT', 'value-type');
  await expectCode(open(buildGguf((b) => { b.str('arr').u32(9).u32(4).u64(2n ** 40n); return 1; }, [])), 'E_FORMAT', 'array-length');
});

G.run();
