// `git merge` of two branches that both changed a uint8-quantized weight of a TF.js model: every
// side's codes are read with the scale and min of its own model.json, averaged as floats, and
// written back as codes with the scale and min that git's merge of model.json keeps (the driver
// merges the shard; git merges model.json as text). Also merge-models of two fine-tunes whose
// quantization ranges differ (each model read with its own range), and an int32 weight stored as
// codes, which is never averaged.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { concat } from '../../src/core/io.ts';
import { writeTfjs, type TfjsWriteTensor } from '../../src/formats/tfjs.ts';
import { quantizeAffine } from '../../src/core/quantize-affine.ts';
import { cleanup, git, run, theta, thetaRepo, thetaOk } from './helpers.ts';

const t = suite('tfjs quantized merges');

const N = 400;
/** Float values of the weight on one branch: a smooth ramp, shifted by `bump`. */
const values = (bump: number) => Float32Array.from({ length: N }, (_, i) => Math.sin(i / 9) * 0.8 + bump);
const deq = (codes: Uint8Array, scale: number, min: number) => Float32Array.from(codes, (c) => c * scale + min);
/** A value as codes with this scale and min can hold it at best (clamped to their range). */
const clamp = (x: number, q: { scale: number; min: number }) => Math.min(Math.max(x, q.min), q.min + 255 * q.scale);
const range = (v: Float32Array) => { const min = Math.min(...v), max = Math.max(...v); return { scale: (max - min) / 255, min }; };

function model(v: Float32Array, q: { scale: number; min: number }, flags = [1, 2, 3, 4]): TfjsWriteTensor[] {
  return [
    { name: 'conv/filters', dtype: 'U8', shape: [N], data: quantizeAffine(8, q.scale, q.min, v), quantization: { dtype: 'uint8', ...q } },
    { name: 'conv/bias', dtype: 'F32', shape: [4], data: new Uint8Array(Float32Array.from([0.1, 0.2, 0.3, 0.4]).buffer) },
    { name: 'ids', dtype: 'U8', shape: [4], data: Uint8Array.from(flags), quantization: { dtype: 'uint8', scale: 1, min: 0 } }, // int32 below
  ];
}

async function writeModel(dir: string, ws: TfjsWriteTensor[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await writeTfjs(ws, async (p) => {
    const parts: Uint8Array[] = [];
    return { async write(b) { parts.push(b.slice()); }, async close() { writeFileSync(join(dir, p), concat(parts)); } };
  }, { shardBytes: 256 });
  // one manifest field per line, as people's model.json often is, so git merges it line by line
  // and `ids` an int32 weight stored as uint8 codes (the writer marks every quantized weight float32)
  const p = join(dir, 'model.json');
  const json = JSON.parse(readFileSync(p, 'utf8'));
  for (const w of json.weightsManifest[0].weights) if (w.name === 'ids') w.dtype = 'int32';
  writeFileSync(p, JSON.stringify(json, null, 1) + '\n');
}

function readWeight(dir: string): { codes: Uint8Array; scale: number; min: number } {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const g = json.weightsManifest[0];
  const all = concat(g.paths.map((p: string) => new Uint8Array(readFileSync(join(dir, p)))));
  const w = g.weights.find((x: { name: string }) => x.name === 'conv/filters');
  return { codes: all.subarray(0, N), scale: w.quantization.scale, min: w.quantization.min };
}

async function branches(dir: string, oursQ: { scale: number; min: number }, theirsQ: { scale: number; min: number }, base = values(0)) {
  await writeModel(join(dir, 'web'), model(base, range(base)));
  await thetaOk(dir, 'track', 'web/model.json');
  await thetaOk(dir, 'add', '.gitattributes', 'web');
  await git(dir, 'commit', '-q', '-m', 'base');
  await git(dir, 'checkout', '-q', '-b', 'other');
  await writeModel(join(dir, 'web'), model(values(0.1), theirsQ));
  await thetaOk(dir, 'add', 'web');
  await git(dir, 'commit', '-q', '-m', 'theirs');
  await git(dir, 'checkout', '-q', 'main');
  await writeModel(join(dir, 'web'), model(values(-0.05), oursQ));
  await thetaOk(dir, 'add', 'web');
  await git(dir, 'commit', '-q', '-m', 'ours');
}

t('git merge averages a uint8 weight both branches changed, read with each side\'s scale and min, written with the merged model.json\'s', async () => {
  const dir = await thetaRepo([]);
  try {
    const base = values(0);
    const baseQ = range(base);
    const theirsQ = range(values(0.1)); // theirs re-quantized over its new range; ours kept the base's
    await branches(dir, baseQ, theirsQ, base);
    const r = await run('git', ['merge', '--no-edit', 'other'], dir, { env: { THETA_MERGE_STRATEGY: 'average' } });
    assert.is(r.code, 0, r.stderr + r.stdout);
    assert.is(await git(dir, 'status', '--porcelain'), '');
    const m = readWeight(join(dir, 'web'));
    assert.equal([m.scale, m.min], [theirsQ.scale, theirsQ.min], 'git took theirs\' quantization lines (only theirs changed them)');
    // what the average must be: each side's codes read with its own range
    const ours = deq(quantizeAffine(8, baseQ.scale, baseQ.min, values(-0.05)), baseQ.scale, baseQ.min);
    const theirs = deq(quantizeAffine(8, theirsQ.scale, theirsQ.min, values(0.1)), theirsQ.scale, theirsQ.min);
    const want = ours.map((x, i) => clamp((x + theirs[i]) / 2, m));
    const got = deq(m.codes, m.scale, m.min);
    let worst = 0;
    for (let i = 0; i < N; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    assert.ok(worst <= m.scale / 2 + 1e-6, `merged values within half a step of the float average (worst ${worst}, step ${m.scale})`);
    // codes averaged as bytes, or read with one range, would be far off: check the test could fail
    const naive = deq(Uint8Array.from(m.codes, (_, i) => Math.round((quantizeAffine(8, baseQ.scale, baseQ.min, values(-0.05))[i] + quantizeAffine(8, theirsQ.scale, theirsQ.min, values(0.1))[i]) / 2)), m.scale, m.min);
    assert.ok(naive.some((x, i) => Math.abs(x - want[i]) > m.scale), 'the reference tells a byte average apart');
    // the merged commit's diff against ours shows the weight's values moved, in floats
    // the diff of the merge against ours is of values (ours' codes with ours' range, the merged with theirs')
    const d = JSON.parse(await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json'));
    const row = d.files[0].tensors.find((x: { name: string }) => x.name === 'conv/filters');
    assert.is(row.dtype, 'uint8→float32 (affine)');
    const l2 = Math.sqrt(got.reduce((a, x, i) => a + (x - ours[i]) ** 2, 0));
    assert.ok(Math.abs(row.l2 - l2) <= 1e-4 * l2, `l2 ${row.l2} is of the values (${l2})`);
  } finally {
    cleanup(dir);
  }
});

t('git merge keeps ours\' scale and min when ours changed them, and never averages an int32 weight stored as codes', async () => {
  const dir = await thetaRepo([]);
  try {
    const oursQ = range(values(-0.05));
    await branches(dir, oursQ, range(values(0)));
    const r = await run('git', ['merge', '--no-edit', 'other'], dir, { env: { THETA_MERGE_STRATEGY: 'average' } });
    assert.is(r.code, 0, r.stderr + r.stdout);
    const m = readWeight(join(dir, 'web'));
    assert.equal([m.scale, m.min], [oursQ.scale, oursQ.min]);
    const ours = deq(quantizeAffine(8, oursQ.scale, oursQ.min, values(-0.05)), oursQ.scale, oursQ.min);
    const tq = range(values(0));
    const theirs = deq(quantizeAffine(8, tq.scale, tq.min, values(0.1)), tq.scale, tq.min);
    const got = deq(m.codes, m.scale, m.min);
    for (let i = 0; i < N; i++) {
      const want = clamp((ours[i] + theirs[i]) / 2, m);
      assert.ok(Math.abs(got[i] - want) <= m.scale / 2 + 1e-6, `value ${i}: ${got[i]} vs ${want}`);
    }

    // int32 codes changed on both branches: a conflict naming the tensor, not an average
    await git(dir, 'checkout', '-q', '-b', 'ints', 'HEAD~1');
    await writeModel(join(dir, 'web'), model(values(-0.05), oursQ, [9, 9, 9, 9]));
    await thetaOk(dir, 'add', 'web');
    await git(dir, 'commit', '-q', '-m', 'ints a');
    await git(dir, 'checkout', '-q', '-b', 'ints2', 'HEAD~1');
    await writeModel(join(dir, 'web'), model(values(-0.05), oursQ, [7, 7, 7, 7]));
    await thetaOk(dir, 'add', 'web');
    await git(dir, 'commit', '-q', '-m', 'ints b');
    const c = await run('git', ['merge', '--no-edit', 'ints'], dir, { env: { THETA_MERGE_STRATEGY: 'average' } });
    assert.is.not(c.code, 0, 'an int32 weight both sides changed is a conflict');
    assert.match(c.stderr + c.stdout, /ids/);
  } finally {
    cleanup(dir);
  }
});

t('merge-models reads each model\'s codes with its own scale and min (fine-tunes re-quantized over different ranges)', async () => {
  const dir = await thetaRepo([]);
  try {
    const qa = range(values(0)), qb = range(values(0.3));
    await writeModel(join(dir, 'a'), model(values(0), qa));
    await writeModel(join(dir, 'b'), model(values(0.3), qb));
    const r = await theta(dir, ['merge-models', 'a/model.json', 'b/model.json', '--strategy', 'average', '--non-float', 'ours', '-o', 'm/model.json']);
    assert.is(r.code, 0, r.stderr);
    const m = readWeight(join(dir, 'm'));
    assert.equal([m.scale, m.min], [qa.scale, qa.min], 'the first model\'s model.json');
    const a = deq(quantizeAffine(8, qa.scale, qa.min, values(0)), qa.scale, qa.min);
    const b = deq(quantizeAffine(8, qb.scale, qb.min, values(0.3)), qb.scale, qb.min);
    const got = deq(m.codes, m.scale, m.min);
    for (let i = 0; i < N; i++) {
      const want = clamp((a[i] + b[i]) / 2, qa); // within the first's range
      assert.ok(Math.abs(got[i] - want) <= qa.scale / 2 + 1e-6, `value ${i}: ${got[i]} vs ${want}`);
    }
    // same codes under different ranges are different values: not "identical"
    await writeModel(join(dir, 'c'), model(values(0), qb));
    writeFileSync(join(dir, 'c/group1-shard1of2.bin'), readFileSync(join(dir, 'a/group1-shard1of2.bin')));
    writeFileSync(join(dir, 'c/group1-shard2of2.bin'), readFileSync(join(dir, 'a/group1-shard2of2.bin')));
    const s = await theta(dir, ['merge-models', 'a/model.json', 'c/model.json', '--strategy', 'average', '--non-float', 'ours', '-o', 's/model.json', '--json']);
    assert.is(s.code, 0, s.stderr);
    assert.not.match(JSON.stringify(JSON.parse(s.stdout)), /"conv\/filters"[^}]*"identical"/);
  } finally {
    cleanup(dir);
  }
});

t.run();
