// Independent oracles for the NumPy and GGUF formats: @huggingface/gguf parses the GGUF files we
// write (metadata of every value type, tensor infos, data offset), and real NumPy
// (/usr/bin/python3 with python3-numpy) loads the .npy/.npz files our writers and rebuilds produce,
// and writes Fortran-order and big-endian arrays for our reader.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gguf as hfGguf } from '@huggingface/gguf';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { gguf, writeGguf, GGUFValueType as V, type GGUFKeyValue } from '../../src/formats/gguf.ts';
import { npy, npz, writeNpy, writeNpz } from '../../src/formats/numpy.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';

const PYTHON = '/usr/bin/python3';
const dir = mkdtempSync(join(tmpdir(), 'theta-formats-'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const H = suite('formats: GGUF cross-checked with @huggingface/gguf');

H('metadata, tensor infos and the data offset agree', async () => {
  const kv: GGUFKeyValue[] = [
    { key: 'general.architecture', type: V.STRING, value: 'llama' },
    { key: 'general.alignment', type: V.UINT32, value: 64 },
    { key: 'a.u8', type: V.UINT8, value: 250 }, { key: 'a.i8', type: V.INT8, value: -3 },
    { key: 'a.u16', type: V.UINT16, value: 65000 }, { key: 'a.i16', type: V.INT16, value: -2 },
    { key: 'a.u32', type: V.UINT32, value: 3_000_000_000 }, { key: 'a.i32', type: V.INT32, value: -5 },
    { key: 'a.f32', type: V.FLOAT32, value: 1.5 }, { key: 'a.bool', type: V.BOOL, value: true },
    { key: 'a.u64', type: V.UINT64, value: 2n ** 62n }, { key: 'a.i64', type: V.INT64, value: -7n },
    { key: 'a.f64', type: V.FLOAT64, value: 0.1 },
    { key: 'tokenizer.ggml.tokens', type: V.ARRAY, value: { type: V.STRING, values: ['<s>', 'é', ''] } },
    { key: 'a.ints', type: V.ARRAY, value: { type: V.INT32, values: [1, -2, 3] } },
  ];
  const q8 = new Uint8Array(34 * 4);
  const tensors = [
    { name: 'f32', dtype: 'F32' as const, shape: [2, 3], data: new Uint8Array(24) },
    { name: 'f16', dtype: 'F16' as const, shape: [7], data: new Uint8Array(14) },
    { name: 'q8', dtype: 'U8' as const, shape: [2, 68], data: q8, ggmlType: 8, dims: [64, 2] },
  ];
  const s = memorySink();
  await writeGguf(tensors, s, { kv, alignment: 64 });
  const path = join(dir, 'x.gguf');
  writeFileSync(path, s.bytes());
  const theirs = await hfGguf(path, { allowLocalFile: true });
  const ours = await gguf.open(readerFromBytes(s.bytes(), 'x.gguf'));
  assert.is(theirs.metadata.version, ours.header.version);
  assert.is(theirs.metadata.tensor_count, BigInt(ours.header.tensors.length));
  for (const x of ours.header.kv) {
    const v = (theirs.metadata as Record<string, unknown>)[x.key];
    if (typeof x.value === 'object') assert.equal(v, (x.value as { values: unknown[] }).values, x.key);
    else assert.equal(v, x.value, x.key);
  }
  assert.is(theirs.tensorDataOffset, BigInt(ours.header.dataStart));
  assert.equal(theirs.tensorInfos.map((t) => t.name), ['f32', 'f16', 'q8']);
  for (const t of theirs.tensorInfos) {
    const mine = ours.header.tensors.find((x) => x.name === t.name)!;
    assert.equal(t.shape.map(Number), mine.dims, t.name);
    assert.is(t.dtype as number, mine.ggmlType, t.name);
    assert.is(Number(t.offset), mine.offset, t.name);
  }
});

H.run();

const N = suite('formats: NumPy oracle (/usr/bin/python3 + numpy)');

const ORACLE = String.raw`
import sys, json, hashlib
try:
    import numpy as np
except ImportError:
    print("NO_NUMPY"); sys.exit(3)
res = {}
for f in sys.argv[1:]:
    loaded = np.load(f, allow_pickle=False)
    items = loaded.items() if hasattr(loaded, "items") else [("", loaded)]
    out = {}
    for k, a in items:
        c = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"))
        out[k] = {"dtype": a.dtype.str, "shape": list(a.shape), "fortran": bool(a.flags.f_contiguous and not a.flags.c_contiguous), "sha256": hashlib.sha256(c.tobytes()).hexdigest()}
    res[f] = out
print(json.dumps(res))
`;

function numpyLoad(files: string[]): Record<string, Record<string, { dtype: string; shape: number[]; fortran: boolean; sha256: string }>> {
  const r = spawnSync(PYTHON, ['-c', ORACLE, ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status === 3) throw new Error(`this test needs NumPy for ${PYTHON}: install python3-numpy (apt-get install -y python3-numpy)`);
  if (r.status !== 0) throw new Error(`numpy.load failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function data(n: number, f: (i: number, dv: DataView) => void, size: number): Uint8Array {
  const b = new Uint8Array(n * size);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < n; i++) f(i, dv);
  return b;
}

const TENSORS: TensorToWrite[] = [
  { name: 'w', dtype: 'F32', shape: [3, 4], data: data(12, (i, dv) => dv.setFloat32(i * 4, i / 3 - 1, true), 4) },
  { name: 'blk/b', dtype: 'I64', shape: [5], data: data(5, (i, dv) => dv.setBigInt64(i * 8, BigInt(i * 1000 - 2), true), 8) },
  { name: 'h', dtype: 'F16', shape: [2, 2], data: new Uint8Array([0, 60, 0, 64, 0, 188, 0, 0]) },
  { name: 'mask', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
  { name: 'u', dtype: 'U16', shape: [], data: new Uint8Array([1, 2]) },
];

N('npz (stored, compressed) and npy from our writers load in NumPy with the same values', async () => {
  const files: string[] = [];
  for (const compress of [false, true]) {
    const s = memorySink();
    await writeNpz(TENSORS, s, { compress });
    const p = join(dir, `ours-${compress}.npz`);
    writeFileSync(p, s.bytes());
    files.push(p);
  }
  for (const [i, opts] of [{}, { fortranOrder: true }, { bigEndian: true }, { fortranOrder: true, bigEndian: true }].entries()) {
    const s = memorySink();
    await writeNpy(TENSORS[0], s, opts);
    const p = join(dir, `w${i}.npy`);
    writeFileSync(p, s.bytes());
    files.push(p);
  }
  const res = numpyLoad(files);
  for (const f of files.slice(0, 2)) {
    assert.equal(Object.keys(res[f]), TENSORS.map((t) => t.name));
    for (const t of TENSORS) {
      assert.is(res[f][t.name].sha256, sha(t.data), `${f}:${t.name}`);
      assert.equal(res[f][t.name].shape, t.shape);
    }
  }
  const w = files.slice(2).map((f) => res[f]['']);
  for (const x of w) assert.is(x.sha256, sha(TENSORS[0].data));
  assert.equal(w.map((x) => [x.dtype, x.fortran]), [['<f4', false], ['<f4', true], ['>f4', false], ['>f4', true]]);
});

N('arrays NumPy writes in Fortran order and big-endian: our C-order LE bytes match, rebuilds are identical and load again', async () => {
  const script = String.raw`
import numpy as np, sys
a = np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 1.5 - 3
np.save(sys.argv[1] + "/f.npy", np.asfortranarray(a))
np.save(sys.argv[1] + "/be.npy", a.astype(">i4"))
np.savez(sys.argv[1] + "/mix.npz", f=np.asfortranarray(a.astype(">f4")), c=a)
np.savez_compressed(sys.argv[1] + "/mixc.npz", f=np.asfortranarray(a.astype(">f4")), c=a)
`;
  const r = spawnSync(PYTHON, ['-c', script, dir], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`numpy failed: ${r.stderr} (needs python3-numpy)`);
  const names = ['f.npy', 'be.npy', 'mix.npz', 'mixc.npz'];
  const want = numpyLoad(names.map((n) => join(dir, n)));
  const rebuiltPaths: string[] = [];
  for (const n of names) {
    const bytes = new Uint8Array(readFileSync(join(dir, n)));
    const format = n.endsWith('.npz') ? npz : npy;
    const rd = await format.open(readerFromBytes(bytes, n), { fileName: n });
    const got = new Map<string, Uint8Array>();
    for await (const t of rd.tensors()) got.set(t.name, await t.bytes());
    const oracle = want[join(dir, n)];
    for (const [k, v] of Object.entries(oracle)) {
      const ours = got.get(k === '' ? n.slice(0, -4) : k)!;
      assert.is(sha(ours), v.sha256, `${n}:${k}`);
    }
    const s = memorySink();
    await format.rebuild(rd.skeleton(), (name) => (async function* () { yield got.get(name)!; })(), s);
    assert.is(sha(s.bytes()), sha(bytes), `${n} rebuilt`);
    const p = join(dir, 'rebuilt-' + n);
    writeFileSync(p, s.bytes());
    rebuiltPaths.push(p);
  }
  const again = numpyLoad(rebuiltPaths);
  for (const [i, n] of names.entries()) assert.equal(again[rebuiltPaths[i]], want[join(dir, n)]);
});

N('cleanup', () => { rmSync(dir, { recursive: true, force: true }); assert.ok(true); });

N.run();
