// Reading what the Python Git-Theta wrote, in every runtime: its LFS objects (msgpack of zarr v2
// stores of blosc1/LZ4 frames) from the real repository in test/fixtures/python-git-theta, the
// update chains of its four commits against what that tool checks out (states/), frames made by
// the real c-blosc (blosc-cases.msgpack: LZ4, byte and bit shuffle, split and unsplit blocks, two
// zarr chunks of a 1100×1000 tensor, F order, a missing chunk), and corrupt input of every layer.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gunzipSync } from 'fflate';
import { platform } from './platform.ts';
import { expectCode } from './assertions.ts';
import { getKernels } from '../../src/core/kernels.ts';
import { simdSupported } from '../../src/core/wasm.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { writePytorch } from '../../src/formats/pytorch.ts';
import { getFormat } from '../../src/formats/index.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { smudgeCheckpoint } from '../../src/theta/smudge.ts';
import { rebuildTensor } from '../../src/theta/rebuild.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import {
  bitUnshuffle, bloscDecode, byteUnshuffle, createBloscKernels, convertPyMetadata, decodePyObject, looksLikePyMetadata, lz4DecodeBlock, parsePyMetadata, readZarrArray, type PyHistory,
} from '../../src/interop/python-git-theta/index.ts';
import '../../src/updates/index.ts';

const DIR = 'python-git-theta';

/** The files of a gzipped tar (ustar), by path. */
function untar(gz: Uint8Array): Map<string, Uint8Array> {
  const tar = gunzipSync(gz);
  const out = new Map<string, Uint8Array>();
  const text = (a: number, n: number) => new TextDecoder().decode(tar.subarray(a, a + n)).replace(/\0.*$/s, '');
  for (let off = 0; off + 512 <= tar.length; ) {
    const name = text(off, 100);
    if (!name) break;
    const size = parseInt(text(off + 124, 12).trim() || '0', 8);
    const prefix = text(off + 345, 155);
    if (tar[off + 156] === 0x30 || tar[off + 156] === 0) out.set(prefix ? `${prefix}/${name}` : name, tar.slice(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

// What the real tool committed for m.pt at each commit of repo-mini (FORMAT.md; `git show <c>:m.pt`)
const M = ['9e9e3597c929582081047228fc17be270c5c2dec', '1c454bb0faad246320a301d38dd0b521e684e54b', 'b834315038b5972ff105280ef8fc743223c38d28', '051cfb62f8cd13bc8ceeaf2fca72712ca3d96e0a'];
const ENTRIES: Record<string, [string, number, string][]>[] = [
  { b: [['b0400400f74b22e5d135d9a677914da19b11ce29ca50a248db6a0ec80ba30452', 261, 'dense']], w: [['092c195ba1f9e722dd84ed8caea946a37a85f99eef117136d810b065d312b529', 303, 'dense']] },
  { b: [['955a19aaff74bc2c8f1872df0d3ef83a1e7d54be6734deea02d349ed00ded7f6', 1003, 'sparse']], w: [['f4831a7900bd384fdd02deb7b7a8300196cc66d570bfebdb1ffe1cd0755de5a0', 1019, 'sparse']] },
  { b: [['1425ea062445535a578581b921c09a24b347f2c4d58bbfeb1baa680ad9268610', 261, 'low-rank']], w: [['0ae2ec8fa79c7beeee5f791f27a34481b4e18db8c8646a9a895f00fb898a3200', 577, 'low-rank']] },
  { b: [['3efc29183b3f61f470ca220158881371b62498e5c4ef20f13ebe13df7e8aaa15', 255, 'ia3']], w: [['930911f7bc1a93f1c533350104c98d0858b40d9dafb7ab80ced4e144e9a2cad3', 261, 'ia3']] },
];
const SHAPES: Record<string, string> = { b: '(3,)', w: '(4, 3)' };

/** The metadata JSON as the tool writes it (json.dumps indent 4 gives JSON.stringify's layout). */
function pyDoc(k: number, override: (name: string, e: Record<string, any>) => void = () => {}): Uint8Array {
  const doc: Record<string, unknown> = {};
  for (const name of ['b', 'w']) {
    const [[oid, size, update]] = ENTRIES[k][name];
    const e = {
      tensor_metadata: { shape: SHAPES[name], dtype: 'float32', hash: new Array(16).fill(0) },
      lfs_metadata: { version: 'https://git-lfs.github.com/spec/v1', oid, size: String(size) },
      theta_metadata: { update_type: update, last_commit: k ? M[k - 1] : null },
    };
    override(name, e);
    doc[name] = e;
  }
  return new TextEncoder().encode(JSON.stringify(doc, null, 4));
}

const historyOf = (docs: Map<string, Uint8Array>): PyHistory => ({
  async readAt(commit) {
    return docs.get(commit) ?? 'missing-commit';
  },
});

async function fixtureStore() {
  const files = untar(await platform().readFixture(`${DIR}/repo-mini-lfs-objects.tar.gz`));
  const store = createMemoryStore();
  for (const [path, bytes] of files) {
    if (!path.startsWith('lfs/objects/')) continue;
    const ref = await store.put(bytes);
    assert.is(ref.oid, path.split('/').pop(), `object ${path} hashes to its name`);
  }
  return store;
}

async function tensorsOf(bytes: Uint8Array): Promise<TensorToWrite[]> {
  const r = await getFormat('pytorch').open(readerFromBytes(bytes));
  const out: TensorToWrite[] = [];
  for await (const t of r.tensors()) out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await t.bytes() });
  return out;
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

const repo = suite('python-git-theta: the real repository (repo-mini)');

repo('every LFS object decodes to the arrays its update type needs', async () => {
  const store = await fixtureStore();
  const names: Record<string, string[]> = { dense: ['parameter'], sparse: ['data', 'indices', 'indptr', 'shape'], 'low-rank': ['C', 'R', 'parameter'], ia3: ['ia3'] };
  for (const k of [0, 1, 2, 3]) {
    for (const name of ['b', 'w']) {
      const [[oid, size, update]] = ENTRIES[k][name];
      const bytes = await store.get(oid);
      assert.is(bytes.length, size);
      const arrays = decodePyObject(bytes, oid);
      for (const key of arrays.keys()) assert.ok(names[update].includes(key), `${update} object has '${key}'`);
    }
  }
});

repo('each commit rebuilds to exactly the tensors, and the file bytes, the Python tool checks out', async () => {
  const kernels = await getKernels();
  const store = await fixtureStore();
  const docs = new Map(M.map((c, k) => [c, pyDoc(k)]));
  for (const k of [0, 1, 2, 3]) {
    const doc = pyDoc(k);
    assert.ok(looksLikePyMetadata(doc));
    const meta = await convertPyMetadata(doc, { path: 'm.pt', history: historyOf(docs), store, kernels, skeleton: true });
    assert.equal(meta.tensors.w.chain.length, k + 1, `chain of w at m${k}`);
    assert.is(meta.tensors.w.update, ENTRIES[k].w[0][2]);
    const state = await platform().readFixture(`${DIR}/states/mini-m${k}-m.pt`);
    const want = await tensorsOf(state);
    for (const t of want) {
      const got = await rebuildTensor(t.name, meta.tensors[t.name], store, kernels);
      assert.ok(equalBytes(got, t.data), `m${k} ${t.name} is bit-identical to the Python checkout`);
    }
    const sink = memorySink();
    await smudgeCheckpoint({ metadata: meta, format: getFormat('pytorch'), store, kernels, sink });
    const ours = sink.bytes();
    assert.is(ours.length, meta.size);
    // the tool's smudge is torch.save({name: tensor}) into a pipe, so its archive folder is 'archive';
    // the states were saved to files named mini-m<k>-m.pt: our writer gives both byte for byte
    const asTool = memorySink();
    await writePytorch(want, asTool, { archiveName: 'archive', container: 'dict' });
    assert.ok(equalBytes(ours, asTool.bytes()), `m${k}: checkout is torch.save's bytes`);
    const asState = memorySink();
    await writePytorch(want, asState, { archiveName: `mini-m${k}-m`, container: 'dict' });
    assert.ok(equalBytes(asState.bytes(), state), `m${k}: our writer reproduces the state file byte for byte`);
    platform().report(`pygt-m${k}-w`, Array.from(new Float32Array(want.find((t) => t.name === 'w')!.data.slice().buffer)).join(','));
  }
});

repo('history errors: a missing commit, a cycle, an incremental entry with no last_commit', async () => {
  const kernels = await getKernels();
  const store = await fixtureStore();
  const full = new Map(M.map((c, k) => [c, pyDoc(k)]));
  const shallow = new Map([[M[3], pyDoc(3)], [M[2], pyDoc(2)]]);
  await expectCode(convertPyMetadata(pyDoc(3), { path: 'm.pt', history: historyOf(shallow), store, kernels }), 'E_PY_THETA_HISTORY');
  const loop = new Map(full);
  loop.set(M[1], pyDoc(1, (_n, e) => { e.theta_metadata.last_commit = M[2]; }));
  await expectCode(convertPyMetadata(pyDoc(3), { path: 'm.pt', history: historyOf(loop), store, kernels }), 'E_PY_THETA_HISTORY');
  const orphan = pyDoc(1, (_n, e) => { e.theta_metadata.last_commit = null; });
  await expectCode(convertPyMetadata(orphan, { path: 'm.pt', history: historyOf(full), store, kernels }), 'E_PY_THETA_HISTORY');
  const unknownType = pyDoc(0, (_n, e) => { e.theta_metadata.update_type = 'quantized'; });
  await expectCode(convertPyMetadata(unknownType, { path: 'm.pt', history: historyOf(full), store, kernels }), 'E_PY_THETA_FORMAT');
  const lying = pyDoc(0, (_n, e) => { e.tensor_metadata.shape = '(5, 3)'; });
  await expectCode(convertPyMetadata(lying, { path: 'm.pt', history: historyOf(full), store, kernels }), 'E_PY_THETA_FORMAT');
  assert.is(parsePyMetadata(pyDoc(2)).map((e) => e.updateType).join(), 'low-rank,low-rank');
});

const frames = suite('python-git-theta: frames made by c-blosc (blosc-cases.msgpack)');

function expected(name: string): { dtype: string; shape: number[]; at: (k: number) => number } {
  switch (name) {
    case 'big': return { dtype: 'F32', shape: [1100, 1000], at: (k) => (Math.floor(k / 1000) % 7) * 0.5 + ((k % 1000) % 5) };
    case 'f64': return { dtype: 'F64', shape: [300], at: (k) => k * 0.125 - 7 };
    case 'i64': return { dtype: 'I64', shape: [50, 7], at: (k) => k * 1000003 - 99 };
    case 'flags': return { dtype: 'BOOL', shape: [1000], at: (k) => (k % 3 === 0 ? 1 : 0) };
    case 'forder': return {
      dtype: 'I32', shape: [64, 33],
      at: (k) => { const i = Math.floor(k / 33); const j = k % 33; return i >= 20 && i < 40 && j >= 16 && j < 32 ? 7 : (k % 101) - 50; },
    };
    case 'u8raw': return { dtype: 'U8', shape: [97], at: (k) => (k * 5) % 256 };
    default: return { dtype: 'I16', shape: [5000], at: (k) => (k % 600) - 300 };
  }
}

frames('LZ4, byte and bit shuffle, split and unsplit blocks, edge and missing chunks, F order, no compressor', async () => {
  const kernels = await getKernels();
  const bytes = await platform().readFixture(`${DIR}/blosc-cases.msgpack`);
  const arrays = decodePyObject(bytes, 'blosc-cases');
  assert.equal([...arrays.keys()].sort(), ['big', 'f64', 'flags', 'forder', 'i16blocks', 'i16split', 'i64', 'u8raw']);
  const { toFloat64 } = await import('../../src/interop/python-git-theta/apply.ts');
  for (const [name, a] of arrays) {
    const want = expected(name);
    assert.is(a.dtype, want.dtype, name);
    assert.equal(a.shape, want.shape, name);
    const v = toFloat64(kernels, a.dtype, a.data);
    let bad = -1;
    for (let k = 0; k < v.length && bad < 0; k++) if (v[k] !== want.at(k)) bad = k;
    assert.is(bad, -1, `${name}: element ${bad} is ${v[bad]}, expected ${want.at(bad)}`);
  }
  platform().report('pygt-blosc-big-sum', String(toFloat64(kernels, 'F32', arrays.get('big')!.data).reduce((s, x) => s + x, 0)));
});

const bad = suite('python-git-theta: corrupt input is a typed error');

bad('LZ4: overruns, a match before the start, a short block, trailing bytes', () => {
  // token 0x40: four literals, and the input has two
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x40, 1, 2), 4), (e: any) => e.code === 'E_PY_THETA_FORMAT');
  // one literal, then a match at offset 2 (only one byte written so far)
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x10, 9, 2, 0, 0x00), 8), (e: any) => e.code === 'E_PY_THETA_FORMAT');
  // offset 0
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x10, 9, 0, 0, 0x00), 8), (e: any) => e.code === 'E_PY_THETA_FORMAT');
  // a match longer than the output
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x1f, 9, 1, 0, 200, 0x00), 8), (e: any) => e.code === 'E_PY_THETA_FORMAT');
  // decodes to fewer bytes than wanted
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0x20, 1, 2), 3), (e: any) => e.code === 'E_PY_THETA_FORMAT');
  // a literal length whose extension bytes run off the end
  assert.throws(() => lz4DecodeBlock(Uint8Array.of(0xf0, 255, 255), 600), (e: any) => e.code === 'E_PY_THETA_FORMAT');
  // valid: 1 literal then an overlapping match of 4+3 → 8 bytes of 9
  assert.equal(Array.from(lz4DecodeBlock(Uint8Array.of(0x13, 9, 1, 0, 0x00), 8)), [9, 9, 9, 9, 9, 9, 9, 9]);
});

bad('blosc: wrong sizes, block table and splits outside the frame, another codec', async () => {
  const bytes = await platform().readFixture(`${DIR}/blosc-cases.msgpack`);
  const { decode } = await import('@msgpack/msgpack');
  const doc = decode(bytes) as Record<string, Record<string, Uint8Array>>;
  const frame = doc.i16blocks['0'];
  assert.is(bloscDecode(frame).length, 10000);
  const code = (f: () => unknown) => assert.throws(f, (e: any) => e.code === 'E_PY_THETA_FORMAT');
  code(() => bloscDecode(frame.subarray(0, frame.length - 1)));             // cbytes disagrees
  code(() => bloscDecode(frame, 9999));                                     // not the chunk's size
  const table = frame.slice(); table[16] = 0xff; table[17] = 0xff;          // first block starts outside
  code(() => bloscDecode(table));
  const split = frame.slice();
  const start = split[16] | (split[17] << 8);
  split[start + 1] = 0x7f;                                                  // first split says it runs past the frame
  code(() => bloscDecode(split));
  const codec = frame.slice(); codec[2] = (codec[2] & 0x1f) | (2 << 5);      // not LZ4
  code(() => bloscDecode(codec));
  const lz = frame.slice();
  for (let i = start + 4; i < start + 40; i++) lz[i] = 0xff;                // garbage inside an LZ4 block
  code(() => bloscDecode(lz));
  code(() => bloscDecode(Uint8Array.of(2, 1, 0x33, 4)));                    // shorter than a header
});

bad('zarr: a .zarray that lies about the shape, a chunk of the wrong size, unknown keys, bad JSON', async () => {
  const bytes = await platform().readFixture(`${DIR}/blosc-cases.msgpack`);
  const { decode } = await import('@msgpack/msgpack');
  const doc = decode(bytes) as Record<string, Record<string, Uint8Array>>;
  const enc = new TextEncoder();
  const z = JSON.parse(new TextDecoder().decode(doc.f64['.zarray']));
  const withZ = (patch: Record<string, unknown>, chunks: Record<string, Uint8Array> = { '0': doc.f64['0'] }) => new Map<string, Uint8Array>([['.zarray', enc.encode(JSON.stringify({ ...z, ...patch }))], ...Object.entries(chunks)]);
  assert.is(readZarrArray(withZ({})).data.length, 2400);
  const code = (f: () => unknown) => assert.throws(f, (e: any) => e.code === 'E_PY_THETA_FORMAT');
  code(() => readZarrArray(withZ({ chunks: [600], shape: [600] })));      // the frame holds 300 elements, not a 600 chunk
  code(() => readZarrArray(withZ({ shape: [300, 2] })));                  // rank differs from chunks
  code(() => readZarrArray(withZ({ shape: [2 ** 60] })));                 // absurd size
  code(() => readZarrArray(withZ({ dtype: '<c8' })));                     // unsupported dtype
  code(() => readZarrArray(withZ({}, { '0': doc.f64['0'], '7': doc.f64['0'] }))); // a chunk outside the grid
  code(() => readZarrArray(new Map([['.zarray', enc.encode('{')]])));
  code(() => readZarrArray(new Map()));
  code(() => decodePyObject(Uint8Array.of(0xc1)));                       // not msgpack
  code(() => decodePyObject(Uint8Array.of(0x81, 0xa1, 0x78, 0x01)));     // a tensor that is not a store
});

const wasm = suite('python-git-theta: Wasm decoding kernels (SIMD and scalar builds) = the TypeScript reference');

const variants = () => (simdSupported() ? (['simd', 'scalar'] as const) : (['scalar'] as const));

wasm('every c-blosc frame decodes to the same bytes', async () => {
  const bytes = await platform().readFixture(`${DIR}/blosc-cases.msgpack`);
  const ref = decodePyObject(bytes, 'blosc-cases');
  for (const v of variants()) {
    const k = await createBloscKernels(v);
    const got = decodePyObject(bytes, 'blosc-cases', k);
    for (const [name, a] of ref) assert.ok(equalBytes(got.get(name)!.data, a.data), `${v}: ${name}`);
  }
});

wasm('byte and bit unshuffle of odd sizes and every type size', async () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
  for (const v of variants()) {
    const k = await createBloscKernels(v);
    for (const ts of [1, 2, 3, 4, 8, 16]) {
      for (const n of [0, 1, 7, 64, 65, 1000, 4096 + 5]) {
        const src = Uint8Array.from({ length: n * ts + (n % 3) }, rnd);
        assert.ok(equalBytes(k.byteUnshuffle(src, ts), byteUnshuffle(src, ts)), `${v} byte ts=${ts} n=${n}`);
        assert.ok(equalBytes(k.bitUnshuffle(src, ts), bitUnshuffle(src, ts)), `${v} bit ts=${ts} n=${n}`);
      }
    }
  }
});

wasm('corrupt LZ4 blocks and frames are the same typed errors', async () => {
  const bytes = await platform().readFixture(`${DIR}/blosc-cases.msgpack`);
  const { decode } = await import('@msgpack/msgpack');
  const frame = (decode(bytes) as Record<string, Record<string, Uint8Array>>).i16blocks['0'];
  const blocks = [
    Uint8Array.of(0x40, 1, 2), Uint8Array.of(0x10, 9, 2, 0, 0x00), Uint8Array.of(0x10, 9, 0, 0, 0x00),
    Uint8Array.of(0x1f, 9, 1, 0, 200, 0x00), Uint8Array.of(0x20, 1, 2), Uint8Array.of(0xf0, 255, 255),
  ];
  for (const v of variants()) {
    const k = await createBloscKernels(v);
    for (const b of blocks) assert.throws(() => k.lz4(b, 8, 'block'), (e: any) => e.code === 'E_PY_THETA_FORMAT');
    assert.equal(Array.from(k.lz4(Uint8Array.of(0x13, 9, 1, 0, 0x00), 8, 'block')), [9, 9, 9, 9, 9, 9, 9, 9]);
    const lz = frame.slice();
    const start = lz[16] | (lz[17] << 8);
    for (let i = start + 4; i < start + 40; i++) lz[i] = 0xff;
    assert.throws(() => bloscDecode(lz, undefined, 'frame', k), (e: any) => e.code === 'E_PY_THETA_FORMAT');
    assert.ok(equalBytes(bloscDecode(frame, undefined, 'frame', k), bloscDecode(frame)));
  }
});

repo.run();
frames.run();
bad.run();
wasm.run();
