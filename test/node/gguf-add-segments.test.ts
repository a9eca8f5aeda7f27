// `git theta add` of a GGUF fine-tune with real git: v2's recipe check goes by segments, so the
// objects of its unchanged tensors are not read back (the test moves them out of the store while
// v2 is added), changed tensors are read again at their offsets in the file (the first one starts
// inside the header parse's read-ahead), and both versions check out byte for byte.
// @huggingface/gguf parses the files independently: each tensor's bytes at its offset are the ones
// the metadata records.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { getKernels } from '../../src/core/kernels.ts';
import { memorySink } from '../../src/core/io.ts';
import { quantizeGgml } from '../../src/core/quantize-ggml.ts';
import { GGML_TYPE_BY_NAME, GGUFValueType, writeGguf } from '../../src/formats/gguf.ts';
import { entryObjects, parseMetadata } from '../../src/theta/metadata.ts';
import { lcgFloats } from '../shared/test-data.ts';
import { cleanup, git, sha256, theta, thetaRepo } from './helpers.ts';

const LAYOUT: [string, 'Q8_0' | 'F32' | 'F16', number[]][] = [
  ['token_embd.weight', 'Q8_0', [256, 512]],
  ['blk.0.attn_norm.weight', 'F32', [8192]],
  ['blk.0.attn_q.weight', 'F16', [256, 128]],
  ['blk.0.ffn_up.weight', 'Q8_0', [256, 256]],
  ['output.weight', 'F32', [256, 64]],
];

async function model(changed: string[] = []): Promise<Buffer> {
  await getKernels(); // the quantizer runs on the kernels
  const tensors = LAYOUT.map(([name, type, dims], i) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const f = lcgFloats(n, i + 1);
    if (changed.includes(name)) for (let k = 0; k < n; k += 3) f[k] += 0.125;
    const shape = dims.slice().reverse();
    if (type === 'Q8_0') return { name, dtype: 'U8' as const, shape, data: quantizeGgml('Q8_0', f), ggmlType: GGML_TYPE_BY_NAME.Q8_0, dims };
    if (type === 'F16') {
      const h = new Uint16Array(n).map((_, k) => (f[k] < 0 ? 0x8000 : 0) | ((1 + Math.floor(Math.abs(f[k]) * 56)) << 10) | (k & 0x3ff));
      return { name, dtype: 'F16' as const, shape, data: new Uint8Array(h.buffer) };
    }
    return { name, dtype: 'F32' as const, shape, data: new Uint8Array(f.buffer) };
  });
  // a vocabulary makes the header larger than the 64 KiB its parse reads at a time
  const tokens = Array.from({ length: 5000 }, (_, i) => `tok${i}${'_'.repeat(i % 23)}`);
  const sink = memorySink();
  await writeGguf(tensors, sink, { kv: [
    { key: 'general.architecture', type: GGUFValueType.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, value: { type: GGUFValueType.STRING, values: tokens } },
  ] });
  return Buffer.from(sink.bytes());
}

test('git theta add of a GGUF v1 then v2: unchanged tensors\' objects not read back, exact checkouts, tensors where @huggingface/gguf finds them', async () => {
  const kernels = await getKernels();
  const dir = await thetaRepo(['*.gguf']);
  const aside = `${dir}-aside`;
  try {
    const file = join(dir, 'm.gguf');
    const v1 = await model();
    writeFileSync(file, v1);
    const first = await theta(dir, ['add', 'm.gguf']);
    assert.is(first.code, 0, first.stderr);
    await git(dir, 'add', '.gitattributes');
    await git(dir, 'commit', '-q', '-m', 'v1');
    const m1 = parseMetadata(await git(dir, 'show', 'HEAD:m.gguf'));
    assert.is(m1.format, 'gguf');

    const changed = ['token_embd.weight', 'output.weight'];
    const v2 = await model(changed);
    writeFileSync(file, v2);
    // the objects of the unchanged tensors leave the store while v2 is added: a whole-file
    // recipe check would need them, the segmented one does not
    const unchanged = LAYOUT.map(([n]) => n).filter((n) => !changed.includes(n));
    const moved: [string, string][] = [];
    mkdirSync(aside, { recursive: true });
    for (const n of unchanged) {
      for (const ref of entryObjects(m1.tensors[n])) {
        const path = join(dir, '.git', 'lfs', 'objects', ref.oid.slice(0, 2), ref.oid.slice(2, 4), ref.oid);
        assert.ok(existsSync(path), `${n}'s object is a file in the store`);
        const to = join(aside, ref.oid);
        renameSync(path, to);
        moved.push([to, path]);
      }
    }
    assert.is(moved.length, unchanged.length);
    const second = await theta(dir, ['add', 'm.gguf']);
    for (const [from, to] of moved) renameSync(from, to);
    assert.is(second.code, 0, second.stderr);
    await git(dir, 'commit', '-q', '-m', 'v2');
    const m2 = parseMetadata(await git(dir, 'show', 'HEAD:m.gguf'));
    for (const [n] of LAYOUT) assert.is(m2.tensors[n].hash === m1.tensors[n].hash, !changed.includes(n), n);

    // an independent parser: every tensor's bytes at its offset are the ones the metadata records
    for (const [bytes, meta] of [[v1, m1], [v2, m2]] as const) {
      const path = join(aside, 'check.gguf');
      writeFileSync(path, bytes);
      const theirs = await hfGguf(path, { allowLocalFile: true });
      assert.is(theirs.tensorInfos.length, LAYOUT.length);
      for (const t of theirs.tensorInfos) {
        const at = Number(theirs.tensorDataOffset + t.offset);
        const entry = meta.tensors[t.name];
        assert.is(kernels.contentHash(bytes.subarray(at, at + entry.bytes)), entry.hash, t.name);
      }
    }

    // both versions check out byte for byte, through git's own checkout (the filter's smudge)
    rmSync(file);
    await git(dir, 'checkout', '--', 'm.gguf');
    assert.is(sha256(readFileSync(file)), sha256(v2));
    await git(dir, 'checkout', '-q', 'HEAD~1');
    assert.is(sha256(readFileSync(file)), sha256(v1));
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
    cleanup(aside);
  }
});

test.run();
