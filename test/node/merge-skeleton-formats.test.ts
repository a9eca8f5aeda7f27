// Which formats' skeletons depend on tensor values. A merge that keeps one side's layout reuses
// that side's skeleton only when it is the very skeleton the merged file would have: checked here
// for every format we write, with two files that differ only in their values.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { listFormats } from '../../src/formats/index.ts';
import type { CheckpointFormat, TensorToWrite } from '../../src/formats/types.ts';
import { VALUE_DEPENDENT_SKELETONS } from '../../src/node/repo/merge-skeleton.ts';

function tensors(seed: number): TensorToWrite[] {
  const f32 = (n: number, k: number) => new Uint8Array(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k + seed)).buffer);
  return [
    { name: 'a', dtype: 'F32', shape: [4, 8], data: f32(32, 1) },
    { name: 'b', dtype: 'F32', shape: [16], data: f32(16, 2) },
  ];
}

async function skeletonOf(format: CheckpointFormat, ts: TensorToWrite[]): Promise<Uint8Array | null> {
  const sink = memorySink();
  try {
    await format.write(format.id === 'numpy' ? ts.slice(0, 1) : ts, sink);
  } catch {
    return null; // a format that cannot write these tensors on its own (e.g. TF.js needs a model.json)
  }
  const r = await format.open(readerFromBytes(sink.bytes(), `x${format.extensions[0] ?? ''}`));
  try {
    for await (const t of r.tensors()) await t.bytes();
    return r.skeleton();
  } finally {
    await r.close();
  }
}

const t = suite('merge: skeletons that depend on values');

t('a skeleton changes with the values exactly for the formats listed as value-dependent', async () => {
  const checked: string[] = [];
  for (const format of listFormats()) {
    const a = await skeletonOf(format, tensors(0));
    const b = await skeletonOf(format, tensors(1));
    if (!a || !b) continue;
    checked.push(format.id);
    const same = a.length === b.length && a.every((x, i) => x === b[i]);
    assert.is(!same, VALUE_DEPENDENT_SKELETONS.has(format.id), `${format.id}: skeleton ${same ? 'does not change' : 'changes'} with the values`);
  }
  for (const id of ['safetensors', 'gguf', 'numpy', 'npz', 'pytorch']) assert.ok(checked.includes(id), `${id} was checked`);
});

t.run();
