// The library on a git-lfs repository in the Hugging Face layout, in memory (Node, Deno,
// Chromium): a sharded safetensors model (`model.safetensors.index.json` a plain blob, the shards
// git-lfs pointers) and a GGUF, two commits, read and diffed through isomorphic-git.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import git from 'isomorphic-git';
import { createMemFs, defaultStore, diffRevisions, listModels, readModel, type MemFs } from '../../src/repo/index.ts';
import { memorySink } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { writeGguf } from '../../src/formats/gguf.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { isLfsCheckpointPath, lfsPointerText } from '../../src/repo/lfs-pointer-model.ts';

const test = suite('repo on a git-lfs repository (sharded safetensors, GGUF)');
const author = { name: 'theta test', email: 'test@git-theta.invalid', timestamp: 1_700_000_000, timezoneOffset: 0 };

const f32 = (name: string, n: number, fill: (i: number) => number, shape = [n]): TensorToWrite =>
  ({ name, dtype: 'F32', shape, data: new Uint8Array(Float32Array.from({ length: n }, (_, i) => fill(i)).buffer) });

async function bytesOf(write: (sink: ReturnType<typeof memorySink>) => Promise<void>): Promise<Uint8Array> {
  const sink = memorySink();
  await write(sink);
  return sink.bytes();
}

async function hfRepo(): Promise<{ fs: MemFs; dir: string; commits: string[] }> {
  const fs = createMemFs();
  const dir = '/hf';
  await git.init({ fs, dir, defaultBranch: 'main' });
  await fs.writeFile(`${dir}/.gitattributes`, '*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.gguf filter=lfs diff=lfs merge=lfs -text\n');
  const store = defaultStore(fs, `${dir}/.git`);
  const commits: string[] = [];
  for (const v of [0, 1]) {
    const files: Record<string, Uint8Array> = {
      'model-00001-of-00002.safetensors': await bytesOf((s) => safetensors.write([f32('x', 6, (i) => i), f32('y', 3, () => 2)], s)),
      'model-00002-of-00002.safetensors': await bytesOf((s) => safetensors.write([f32('z', 4, (i) => i + v, [2, 2])], s)),
      'tiny.gguf': await bytesOf((s) => writeGguf([f32('g', 8, (i) => i * (v + 1))], s)),
    };
    for (const [path, bytes] of Object.entries(files)) {
      const p = await store.put(bytes);
      await fs.writeFile(`${dir}/${path}`, lfsPointerText(p));
    }
    await fs.writeFile(`${dir}/model.safetensors.index.json`, JSON.stringify({
      metadata: {}, weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00001-of-00002.safetensors', z: 'model-00002-of-00002.safetensors' },
    }));
    await git.add({ fs, dir, filepath: '.' });
    commits.push(await git.commit({ fs, dir, message: `v${v}`, author }));
  }
  return { fs, dir, commits };
}

test('which git-lfs paths are read as checkpoints', () => {
  for (const p of ['a.safetensors', 'm/x.gguf', 'w.npy', 'pytorch_model.bin', 'd/pytorch_model-00001-of-00002.bin', 'm.pt']) assert.ok(isLfsCheckpointPath(p), p);
  for (const p of ['group1-shard1of1.bin', 'tokenizer.json', 'README.md', 'weights.bin', 'noext']) assert.not.ok(isLfsCheckpointPath(p), p);
});

test('listModels lists the shards and the GGUF; readModel reads the sharded model through its index at each revision', async () => {
  const r = await hfRepo();
  const listed = await listModels(r);
  assert.equal(listed.map((m) => [m.path, m.kind, m.format]), [
    ['model-00001-of-00002.safetensors', 'lfs', 'safetensors'],
    ['model-00002-of-00002.safetensors', 'lfs', 'safetensors'],
    ['tiny.gguf', 'lfs', 'gguf'],
  ]);
  for (const [i, commit] of r.commits.entries()) {
    const got: [string, number][] = [];
    for await (const t of readModel({ ...r, ref: commit, filepath: 'model.safetensors.index.json' })) {
      got.push([t.name, new Float32Array((await t.bytes()).slice().buffer)[1]]);
    }
    assert.equal(got, [['x', 1], ['y', 2], ['z', 1 + i]]);
  }
});

test('diffRevisions diffs the sharded model as one model and the GGUF tensor by tensor', async () => {
  const r = await hfRepo();
  // the GGUF: each version read once, its older modified tensor read back from its byte range; the
  // sharded model: the unchanged shard (same object) for its header only, the changed one once per
  // side, and the older side passed again for its modified tensor
  const base = defaultStore(r.fs, `${r.dir}/.git`);
  let streams = 0, ranges = 0;
  const store = Object.assign(Object.create(base), {
    getChunks: (oid: string, n?: number) => { streams++; return base.getChunks(oid, n); },
    readRanges: (oid: string, x: { offset: number; length: number }[]) => { ranges++; return base.readRanges!(oid, x); },
  });
  const d = await diffRevisions({ ...r, store, from: r.commits[0], to: r.commits[1] });
  assert.is(streams, 8, 'GGUF 2; shards: 2 × 2 on the first pass, 2 for the older side again');
  assert.is(ranges, 1, 'the older g read back by range');
  assert.equal(d.files.map((f) => [f.path, f.format, f.summary.modified, f.summary.unchanged]), [
    ['model.safetensors.index.json', 'safetensors-sharded', 1, 2],
    ['tiny.gguf', 'gguf', 1, 0],
  ]);
  const z = d.files[0].tensors[0];
  assert.is(z.maxabs, 1);
  const g = d.files[1].tensors[0];
  // g = i at v0, 2i at v1: Δ = i, ‖Δ‖ = sqrt(Σ i²) for i < 8 = sqrt(140)
  assert.ok(Math.abs(g.l2! - Math.sqrt(140)) < 1e-5, String(g.l2));
});

test.run();
