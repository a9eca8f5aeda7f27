// convertCheckpoint between formats through the shared interface: npz → safetensors → npz/npy/gguf,
// GGUF with quantized tensors → safetensors (dequantized), and TF.js as a multi-file target.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { expectedFixtures, platform } from './platform.ts';
import { memorySink, readerFromBytes, type ByteSink } from '../../src/core/io.ts';
import { convertCheckpoint } from '../../src/formats/convert.ts';
import { getFormat } from '../../src/formats/index.ts';
import { writeGguf } from '../../src/formats/gguf.ts';
import '../../src/formats/numpy.ts';
import '../../src/formats/tfjs.ts';
import { sha256 } from './assertions.ts';

async function tensorsOf(format: string, bytes: Uint8Array, fileName?: string) {
  const r = await getFormat(format).open(readerFromBytes(bytes, fileName), { fileName });
  const out = new Map<string, { dtype: string; shape: number[]; sha: string; bytes: Uint8Array }>();
  for await (const t of r.tensors()) { const b = await t.bytes(); out.set(t.name, { dtype: t.dtype, shape: t.shape, sha: await sha256(b), bytes: b }); }
  return out;
}

const C = suite('convert');

C('arrays-compressed.npz → safetensors → npz, gguf; every tensor hash kept', async () => {
  const want = (await expectedFixtures())['arrays-compressed.npz'].tensors;
  const npzBytes = await platform().readFixture('arrays-compressed.npz');
  const st = memorySink();
  await convertCheckpoint(await getFormat('npz').open(readerFromBytes(npzBytes)), 'safetensors', st);
  const viaSt = await tensorsOf('safetensors', st.bytes());
  assert.equal([...viaSt.keys()].sort(), Object.keys(want).sort());
  for (const [n, w] of Object.entries(want)) assert.is(viaSt.get(n)!.sha, w.sha256_le_bytes, n);
  for (const target of ['npz', 'gguf']) {
    const out = memorySink();
    await convertCheckpoint(await getFormat('safetensors').open(readerFromBytes(st.bytes())), target, out);
    const back = await tensorsOf(target, out.bytes());
    for (const [n, w] of Object.entries(want)) {
      assert.is(back.get(n)!.sha, w.sha256_le_bytes, `${target}:${n}`);
      assert.equal(back.get(n)!.shape, w.shape);
    }
  }
});

C('w.npy → npy via safetensors (single tensor); npz with several tensors → npy is refused', async () => {
  const w = await platform().readFixture('w.npy');
  const st = memorySink();
  await convertCheckpoint(await getFormat('numpy').open(readerFromBytes(w, 'w.npy'), { fileName: 'w.npy' }), 'safetensors', st);
  const npyOut = memorySink();
  await convertCheckpoint(await getFormat('safetensors').open(readerFromBytes(st.bytes())), 'numpy', npyOut);
  assert.ok(npyOut.bytes().length === w.length && npyOut.bytes().every((x, i) => x === w[i]), 'numpy-identical w.npy');
  const z = await platform().readFixture('arrays.npz');
  try {
    await convertCheckpoint(await getFormat('npz').open(readerFromBytes(z)), 'numpy', memorySink());
    assert.unreachable();
  } catch (e) { assert.is((e as { code: string }).code, 'E_ARGUMENT'); }
});

C('GGUF with Q8_0 → safetensors dequantizes; IQ4_XS is refused unless raw', async () => {
  const q8 = new Uint8Array(34);
  q8[0] = 0x00; q8[1] = 0x38; // f16 0.5
  for (let j = 0; j < 32; j++) q8[2 + j] = j - 16 & 255;
  const g = memorySink();
  await writeGguf([{ name: 'q', dtype: 'U8', shape: [34], data: q8, ggmlType: 8, dims: [32] }], g);
  const st = memorySink();
  await convertCheckpoint(await getFormat('gguf').open(readerFromBytes(g.bytes())), 'safetensors', st);
  const back = await tensorsOf('safetensors', st.bytes());
  const q = back.get('q')!;
  assert.is(q.dtype, 'F32');
  assert.equal(q.shape, [32]);
  assert.equal(Array.from(new Float32Array(q.bytes.slice().buffer)), Array.from({ length: 32 }, (_, j) => (j - 16) * 0.5));
  const g2 = memorySink();
  // IQ4_XS (23): a ggml type with no dequantizer here (the K-quants have one, see dequantize.test.ts)
  await writeGguf([{ name: 'k', dtype: 'U8', shape: [136], data: new Uint8Array(136), ggmlType: 23, dims: [256] }], g2);
  try {
    await convertCheckpoint(await getFormat('gguf').open(readerFromBytes(g2.bytes())), 'safetensors', memorySink());
    assert.unreachable();
  } catch (e) { assert.is((e as { code: string }).code, 'E_ARGUMENT'); }
  const raw = memorySink();
  await convertCheckpoint(await getFormat('gguf').open(readerFromBytes(g2.bytes())), 'safetensors', raw, { quantized: 'raw' });
  assert.equal((await tensorsOf('safetensors', raw.bytes())).get('k')!.shape, [136]);
});

C('safetensors → TF.js through a sink factory', async () => {
  const st = memorySink();
  await getFormat('safetensors').write([{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) }], st);
  const files = new Map<string, Uint8Array>();
  const sinkFor = async (p: string): Promise<ByteSink> => { const s = memorySink(); return { write: (b) => s.write(b), close: async () => { files.set(p, s.bytes()); } }; };
  await convertCheckpoint(await getFormat('safetensors').open(readerFromBytes(st.bytes())), 'tfjs', sinkFor);
  assert.equal([...files.keys()], ['model.json', 'group1-shard1of1.bin']);
  assert.equal(Array.from(new Float32Array(files.get('group1-shard1of1.bin')!.slice().buffer)), [1, 2]);
  try { await convertCheckpoint(await getFormat('safetensors').open(readerFromBytes(st.bytes())), 'npz', sinkFor); assert.unreachable(); } catch (e) { assert.is((e as { code: string }).code, 'E_ARGUMENT'); }
});

C.run();
