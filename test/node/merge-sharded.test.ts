// merge-models on sharded safetensors models (`model.safetensors.index.json` + shards, the Hugging
// Face layout): the result is the first model with merged values: its index byte for byte, every
// shard under its name with its header (`__metadata__`, order, padding) byte for byte, F16 kept F16,
// integer tensors never averaged. Values are checked with numpy reading the files on its own.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToF16Bits } from '../../src/core/quantize-ggml.ts';
import { concat } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { lcgFloats } from '../shared/test-data.ts';
import { cleanup, sha256, tempDir, theta } from './helpers.ts';

const PYTHON = '/usr/bin/python3';
const t = suite('merge-models on sharded safetensors');

const bytesOf = (a: Float32Array | Uint16Array | BigInt64Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

async function writeSharded(dir: string, seed: number, ids: bigint[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const shards: [string, TensorToWrite[]][] = [
    ['model-00001-of-00002.safetensors', [
      { name: 'embed.weight', dtype: 'F16', shape: [64, 8], data: bytesOf(Uint16Array.from(lcgFloats(512, seed), (x) => f32ToF16Bits(x))) },
      { name: 'layers.0.weight', dtype: 'F32', shape: [32, 16], data: bytesOf(lcgFloats(512, seed + 1)) },
    ]],
    ['model-00002-of-00002.safetensors', [
      { name: 'layers.1.weight', dtype: 'F32', shape: [16, 16], data: bytesOf(lcgFloats(256, seed + 2)) },
      { name: 'position_ids', dtype: 'I64', shape: [4], data: bytesOf(BigInt64Array.from(ids)) },
    ]],
  ];
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [name, ts] of shards) {
    const parts: Uint8Array[] = [];
    await safetensors.write(ts, { async write(b) { parts.push(b.slice()); }, async close() {} }, { metadata: { format: 'pt', note: `shard ${name}` } });
    writeFileSync(join(dir, name), concat(parts));
    for (const x of ts) { weightMap[x.name] = name; total += x.data.length; }
  }
  // the index as transformers writes it (indent 2, metadata first)
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
}

const filesOf = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((f) => [f, sha256(readFileSync(join(dir, f)))]));

function py(code: string, args: string[]): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`python failed (needs ${PYTHON} with numpy: apt-get install -y python3-numpy): ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

// numpy's own reading of a safetensors model (header JSON + np.frombuffer), and the check of the merge
const CHECK = `
import glob, json, struct, sys, numpy as np
def load(d):
    idx = json.load(open(glob.glob(d + '/*.safetensors.index.json')[0]))
    out = {}
    for shard in sorted(set(idx['weight_map'].values())):
        b = open(d + '/' + shard, 'rb').read()
        n = struct.unpack('<Q', b[:8])[0]
        h = json.loads(b[8:8 + n])
        for k, v in h.items():
            if k == '__metadata__': continue
            s, e = v['data_offsets']
            dt = {'F16': np.float16, 'F32': np.float32, 'I64': np.int64}[v['dtype']]
            out[k] = (v['dtype'], np.frombuffer(b[8 + n + s: 8 + n + e], dtype=dt).reshape(v['shape']))
    return out
a, b, m = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
res = {}
for k in a:
    da, xa = a[k]; dm, xm = m[k]
    assert da == dm, (k, da, dm)
    if da == 'I64':
        res[k] = bool((xm == xa).all())
    else:
        want = (xa.astype(np.float32) + b[k][1].astype(np.float32)) / 2
        res[k] = float(np.abs(xm.astype(np.float32) - want).max())
print(json.dumps(res))
`;

t('a sharded model merged with itself is every file byte for byte; two fine-tunes keep the first\'s index, shard names and headers', async () => {
  const dir = tempDir('merge-sharded-');
  try {
    await writeSharded(join(dir, 'a'), 1, [0n, 1n, 2n, 3n]);
    await writeSharded(join(dir, 'b'), 11, [0n, 1n, 2n, 7n]);
    const self = await theta(dir, ['merge-models', 'a/model.safetensors.index.json', 'a/model.safetensors.index.json', '--strategy', 'average', '-o', 'self/model.safetensors.index.json']);
    assert.is(self.code, 0, self.stderr);
    assert.equal(filesOf(join(dir, 'self')), filesOf(join(dir, 'a')), 'merging a model with itself gives it back');

    const r = await theta(dir, ['merge-models', 'a/model.safetensors.index.json', 'b/model.safetensors.index.json', '--strategy', 'average', '--non-float', 'ours', '-o', 'm/merged.safetensors.index.json']);
    assert.is(r.code, 0, r.stderr);
    assert.equal(readdirSync(join(dir, 'm')).sort(), ['merged.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    assert.is(readFileSync(join(dir, 'm/merged.safetensors.index.json'), 'utf8'), readFileSync(join(dir, 'a/model.safetensors.index.json'), 'utf8'), 'the first model\'s index');
    for (const shard of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
      const got = readFileSync(join(dir, 'm', shard)), want = readFileSync(join(dir, 'a', shard));
      const n = 8 + Number(want.readBigUInt64LE(0));
      assert.is(got.length, want.length, `${shard}: same size`);
      assert.ok(got.subarray(0, n).equals(want.subarray(0, n)), `${shard}: the first model's header (with __metadata__) byte for byte`);
    }
    const res = JSON.parse(py(CHECK, [join(dir, 'a'), join(dir, 'b'), join(dir, 'm')]));
    assert.ok(res['layers.0.weight'] < 1e-6 && res['layers.1.weight'] < 1e-6, `F32 tensors are the average: ${JSON.stringify(res)}`);
    assert.ok(res['embed.weight'] < 2e-3, `the F16 tensor is the average within f16 precision: ${res['embed.weight']}`);
    assert.is(res.position_ids, true, 'the integer tensor is ours, not averaged');
  } finally {
    cleanup(dir);
  }
});

t('the merged sharded model goes to another directory than the first model (its shard names are kept)', async () => {
  const dir = tempDir('merge-sharded-');
  try {
    await writeSharded(join(dir, 'a'), 1, [0n, 1n, 2n, 3n]);
    await writeSharded(join(dir, 'b'), 11, [0n, 1n, 2n, 3n]);
    const before = filesOf(join(dir, 'a'));
    const r = await theta(dir, ['merge-models', 'a/model.safetensors.index.json', 'b/model.safetensors.index.json', '--strategy', 'average', '-o', 'a/merged.safetensors.index.json']);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /goes into another directory/);
    assert.equal(filesOf(join(dir, 'a')), before, 'nothing written over the first model');
  } finally {
    cleanup(dir);
  }
});

t.run();
