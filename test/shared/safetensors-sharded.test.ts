// Sharded safetensors: a fixture split into two shards in the test, read back as one model.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { expectedFixtures, platform } from './platform.ts';
import { memorySink, readerFromBytes, readerFromChunks, type ByteReader } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { openSharded, parseShardIndex } from '../../src/formats/sharded.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { sha256 } from './assertions.ts';

const INDEX = 'model.safetensors.index.json';

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function writeFile(tensors: TensorToWrite[]): Promise<Uint8Array> {
  const sink = memorySink();
  await safetensors.write(tensors, sink);
  return sink.bytes();
}

/** model.safetensors split in two: `head.*`, `ids`, `mask` in shard 1; `layers.*` and `scale` in shard 2. */
async function split() {
  const bytes = await platform().readFixture('model.safetensors');
  const r = await safetensors.open(readerFromBytes(bytes, 'model.safetensors'));
  const all: TensorToWrite[] = [];
  for await (const t of r.tensors()) all.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await t.bytes() });
  const one = all.filter((t) => !t.name.startsWith('layers.') && t.name !== 'scale');
  const two = all.filter((t) => !one.includes(t));
  const files = new Map<string, Uint8Array>([
    ['model-00001-of-00002.safetensors', await writeFile(one)],
    ['model-00002-of-00002.safetensors', await writeFile(two)],
  ]);
  const weightMap: Record<string, string> = {};
  // listed in an order unlike the shard order, as real indexes often are
  for (const t of two) weightMap[t.name] = 'model-00002-of-00002.safetensors';
  for (const t of one) weightMap[t.name] = 'model-00001-of-00002.safetensors';
  const total = all.reduce((a, t) => a + t.data.length, 0);
  return { all, one, two, files, weightMap, index: JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }) };
}

function opener(files: Map<string, Uint8Array>, opened: string[] = [], streamed = false) {
  return async (name: string): Promise<ByteReader> => {
    opened.push(name);
    const f = files.get(name);
    if (!f) throw new Error(`test: no shard ${name}`);
    return streamed ? readerFromChunks(pieces(f, 100), name) : readerFromBytes(f, name);
  };
}

async function failure(run: () => Promise<unknown>): Promise<any> {
  try {
    await run();
  } catch (e) {
    return e;
  }
  return undefined;
}

async function readAll(index: string | Uint8Array, files: Map<string, Uint8Array>, opened: string[] = [], streamed = false) {
  const r = await openSharded(index, opener(files, opened, streamed), { fileName: INDEX });
  const out: { name: string; shard: string; dtype: string; shape: number[]; sha: string }[] = [];
  for await (const t of r.tensors()) out.push({ name: t.name, shard: t.shard, dtype: t.dtype, shape: t.shape, sha: await sha256(await t.bytes()) });
  return { r, out };
}

const sharded = suite('safetensors: sharded');

sharded('a fixture split in two shards reads as one model, shard by shard, matching expected.json', async () => {
  const { files, index, one, two } = await split();
  const expected = (await expectedFixtures())['model.safetensors'].tensors;
  for (const streamed of [false, true]) {
    const opened: string[] = [];
    const { r, out } = await readAll(new TextEncoder().encode(index), files, opened, streamed);
    assert.equal(opened, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    assert.equal(out.map((t) => t.name), [...one.map((t) => t.name).sort(), ...two.map((t) => t.name).sort()]);
    assert.equal(out.map((t) => t.shard), [...one.map(() => 'model-00001-of-00002.safetensors'), ...two.map(() => 'model-00002-of-00002.safetensors')]);
    assert.equal(out.map((t) => t.name).sort(), Object.keys(expected).sort());
    for (const t of out) {
      assert.is(t.sha, expected[t.name].sha256_le_bytes, t.name);
      assert.equal(t.shape, expected[t.name].shape, t.name);
    }
    assert.equal(r.metadata, { total_size: 21511 - 8 - 664 });
    assert.equal(new TextDecoder().decode(r.skeleton()), index, 'skeleton is the index bytes');
    const skeletons = r.shardSkeletons();
    assert.equal([...skeletons.keys()], [...files.keys()]);
    for (const [name, skel] of skeletons) assert.equal(skel, files.get(name)!.subarray(0, skel.length), name);
  }
});

sharded('index lists a tensor its shard does not hold: FormatError naming tensor and shard', async () => {
  const { files, weightMap } = await split();
  const index = JSON.stringify({ metadata: {}, weight_map: { ...weightMap, 'extra.weight': 'model-00002-of-00002.safetensors' } });
  const e = await failure(() => readAll(index, files));
  assert.is(e?.code, 'E_FORMAT');
  assert.match(e.message, new RegExp(`^${INDEX.replace(/\./g, '\\.')}: tensor 'extra\\.weight'`));
  assert.match(e.message, /listed in shard 'model-00002-of-00002\.safetensors' but that shard does not hold it/);
});

sharded('a shard holds a tensor the index does not list (or places elsewhere): FormatError before any of its tensors', async () => {
  const { files, weightMap } = await split();
  const missing = { ...weightMap };
  delete missing['scale'];
  let e = await failure(() => readAll(JSON.stringify({ weight_map: missing }), files));
  assert.is(e?.code, 'E_FORMAT');
  assert.match(e.message, /tensor 'scale': shard 'model-00002-of-00002\.safetensors' holds tensor 'scale', which the index does not list/);

  const moved = { ...weightMap, 'layers.0.bias': 'model-00001-of-00002.safetensors' };
  const seen: string[] = [];
  e = await failure(async () => {
    const r = await openSharded(JSON.stringify({ weight_map: moved }), opener(files), { fileName: INDEX });
    for await (const t of r.tensors()) seen.push(t.name);
  });
  assert.is(e?.code, 'E_FORMAT');
  assert.is(e.data.tensor, 'layers.0.bias', 'shard 1 is checked first: it lacks layers.0.bias');
  assert.match(e.message, /listed in shard 'model-00001-of-00002\.safetensors' but that shard does not hold it/);
  assert.equal(seen, [], 'nothing from an inconsistent shard is handed out');
});

sharded('shard names with "/" or ".." are rejected before any shard is opened', async () => {
  const { files } = await split();
  for (const bad of ['../model.safetensors', 'sub/model.safetensors', '/etc/passwd', '..', 'a\\b.safetensors', '']) {
    const opened: string[] = [];
    const e = await failure(() => readAll(JSON.stringify({ weight_map: { w: bad } }), files, opened));
    assert.is(e?.code, 'E_FORMAT', JSON.stringify(bad));
    assert.ok(e.message.startsWith(`${INDEX}: tensor 'w'`), e.message);
    assert.equal(opened, []);
  }
});

sharded('bad index files: not JSON, no weight_map, duplicate tensor, non-string shard', () => {
  for (const [text, says] of [
    ['{', /not valid JSON/],
    ['[]', /must be a JSON object/],
    ['{"metadata":{}}', /'weight_map' must be an object/],
    ['{"weight_map":{}}', /lists no tensors/],
    ['{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}', /tensor 'a' appears twice in weight_map/],
    ['{"weight_map":{"a":3}}', /must be a non-empty file name/],
    ['{"metadata":[],"weight_map":{"a":"x"}}', /'metadata' must be an object/],
  ] as const) {
    try {
      parseShardIndex(text, 'idx.json');
      assert.unreachable(text);
    } catch (e: any) {
      assert.is(e.code, 'E_FORMAT', text);
      assert.ok(e.message.startsWith('idx.json: '), e.message);
      assert.match(e.message, says);
    }
  }
  assert.throws(() => parseShardIndex(new Uint8Array([0x7b, 0xff, 0x7d]), 'idx.json'), /UTF-8/);
});

sharded('a shard that fails its own safetensors rules names the shard file', async () => {
  const { files, index } = await split();
  const broken = new Map(files);
  const two = files.get('model-00002-of-00002.safetensors')!;
  broken.set('model-00002-of-00002.safetensors', two.subarray(0, two.length - 3));
  const e = await failure(() => readAll(index, broken));
  assert.is(e?.code, 'E_TRUNCATED');
  assert.ok(e.message.startsWith('model-00002-of-00002.safetensors: '), e.message);
});

sharded.run();
