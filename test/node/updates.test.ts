// Update types and the opt-in tolerance through real git: ia3 with side data, the chain cap, and
// theta.tolerance (changes within tolerance are recorded as unchanged only when opted in).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getFormat } from '../../src/formats/index.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { cleanup, fixturesDir, git, sha256, thetaOk, thetaRepo } from './helpers.ts';

type T = { name: string; shape: number[]; values: Float32Array };

async function load(bytes: Uint8Array): Promise<T[]> {
  const r = await getFormat('safetensors').open(readerFromBytes(bytes));
  const out: T[] = [];
  for await (const t of r.tensors()) {
    const b = await t.bytes();
    out.push({ name: t.name, shape: t.shape, values: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)) });
  }
  return out;
}

async function save(ts: T[]): Promise<Uint8Array> {
  const sink = memorySink();
  await getFormat('safetensors').write(ts.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: new Uint8Array(t.values.buffer.slice(0)) })), sink);
  return sink.bytes();
}

const base = () => load(readFileSync(join(fixturesDir, 'history-v0.safetensors')));
const meta = async (dir: string, rev = 'HEAD') => parseMetadata(await git(dir, 'cat-file', 'blob', `${rev}:model.safetensors`));

async function commit(dir: string, bytes: Uint8Array, msg: string, ...args: string[]) {
  writeFileSync(join(dir, 'model.safetensors'), bytes);
  await thetaOk(dir, 'add', 'model.safetensors', '.gitattributes', ...args);
  await git(dir, 'commit', '-q', '--allow-empty', '-m', msg);
}

test('ia3: W ⊙ v with v broadcast over rows, from side data; checkout byte-identical', async () => {
  const dir = await thetaRepo();
  try {
    const v0 = await base();
    await commit(dir, await save(v0), 'v0');
    const v = Float32Array.from({ length: 64 }, (_, i) => 1 + (i % 7) * 0.01);
    const v1 = v0.map((t) => (t.name === '2.weight' ? { ...t, values: t.values.map((x, i) => Math.fround(x * v[i % 64])) } : t));
    const side = join(dir, '..', `ia3-${Date.now()}.safetensors`);
    writeFileSync(side, await save([{ name: '2.weight/ia3', shape: [64], values: v }]));
    const bytes = await save(v1);
    await commit(dir, bytes, 'ia3', '--update-type', 'ia3', '--update-data', side);
    const m = await meta(dir);
    assert.is(m.tensors['2.weight'].update, 'ia3');
    const step = m.tensors['2.weight'].chain.at(-1)!;
    assert.is(step.residual, undefined, 'float32 W·v reproduced exactly: no residual');
    assert.is(m.tensors['0.weight'].update, 'dense', 'tensors without side data are unchanged');
    await git(dir, 'checkout', '-q', 'HEAD~1');
    await git(dir, 'checkout', '-q', 'main');
    assert.is(sha256(readFileSync(join(dir, 'model.safetensors'))), sha256(bytes));
  } finally {
    cleanup(dir);
  }
});

test('the chain of incremental updates is capped by theta.maxChainLength, then stored dense', async () => {
  const dir = await thetaRepo();
  try {
    await git(dir, 'config', 'theta.maxChainLength', '2');
    let model = await base();
    await commit(dir, await save(model), 'v0');
    const lengths: number[] = [];
    for (let k = 1; k <= 4; k++) {
      model = model.map((t) => (t.name === '2.weight' ? { ...t, values: t.values.map((x, i) => (i === k ? x + 1 : x)) } : t));
      await commit(dir, await save(model), `v${k}`);
      lengths.push((await meta(dir)).tensors['2.weight'].chain.length);
    }
    assert.equal(lengths, [2, 1, 2, 1], 'dense, sparse, (cap) dense, sparse ...');
    // every version still checks out exactly
    for (let k = 4; k >= 0; k--) {
      await git(dir, 'checkout', '-q', `main~${4 - k}`);
      const t = (await load(readFileSync(join(dir, 'model.safetensors')))).find((x) => x.name === '2.weight')!;
      const want = (await base()).find((x) => x.name === '2.weight')!.values.map((x, i) => (i >= 1 && i <= k ? x + 1 : x));
      assert.equal(Array.from(t.values), Array.from(want), `v${k}`);
    }
  } finally {
    cleanup(dir);
  }
});

test('theta.tolerance: off by default (any changed bit is a change); opted in, tiny changes are recorded as unchanged', async () => {
  const dir = await thetaRepo();
  try {
    const v0 = await base();
    await commit(dir, await save(v0), 'v0');
    const tiny = v0.map((t) => (t.name === '0.weight' ? { ...t, values: t.values.map((x) => Math.fround(x * (1 + 2e-7))) } : t));
    await commit(dir, await save(tiny), 'tiny, exact mode');
    assert.is.not((await meta(dir)).tensors['0.weight'].hash, (await meta(dir, 'HEAD~1')).tensors['0.weight'].hash, 'exact by default');
    await git(dir, 'reset', '-q', '--hard', 'HEAD~1');
    await git(dir, 'config', 'theta.tolerance', 'rtol=1e-5,atol=1e-8');
    await commit(dir, await save(tiny), 'tiny, tolerant');
    assert.equal((await meta(dir)).tensors['0.weight'], (await meta(dir, 'HEAD~1')).tensors['0.weight'], 'within tolerance: the old entry is kept');
    const big = v0.map((t) => (t.name === '0.weight' ? { ...t, values: t.values.map((x) => x + 0.01) } : t));
    await commit(dir, await save(big), 'big, tolerant');
    assert.is.not((await meta(dir)).tensors['0.weight'].hash, (await meta(dir, 'HEAD~1')).tensors['0.weight'].hash, 'beyond tolerance: recorded');
  } finally {
    cleanup(dir);
  }
});

test.run();
