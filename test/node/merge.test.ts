// Model merges through real `git merge`: one-sided changes, strategies from every source, both
// added, deleted, layout conflicts, incremental updates on a side, a merge of a merge, --abort,
// and the interactive menu on a terminal.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getFormat } from '../../src/formats/index.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { cleanup, fixturesDir, git, run, sha256, tempDir, theta, thetaOk, thetaRepo, requireTool } from './helpers.ts';

type Model = Map<string, { shape: number[]; values: Float32Array }>;

async function load(bytes: Uint8Array): Promise<Model> {
  const r = await getFormat('safetensors').open(readerFromBytes(bytes));
  const m: Model = new Map();
  for await (const t of r.tensors()) {
    const b = await t.bytes();
    m.set(t.name, { shape: t.shape, values: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)) });
  }
  return m;
}
const fixtureModel = () => load(readFileSync(join(fixturesDir, 'history-v0.safetensors')));

async function save(m: Model): Promise<Uint8Array> {
  const ts: TensorToWrite[] = [...m].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: new Uint8Array(t.values.buffer.slice(0)) }));
  const sink = memorySink();
  await getFormat('safetensors').write(ts, sink);
  return sink.bytes();
}

function edit(m: Model, name: string, f: (x: number, i: number) => number): Model {
  const out: Model = new Map([...m].map(([k, v]) => [k, { shape: [...v.shape], values: v.values.slice() }]));
  const t = out.get(name)!;
  t.values = t.values.map(f);
  return out;
}

/** base on main; `ours` committed on main, `theirs` on branch other; HEAD at main. */
async function scenario(base: Model, ours: Model, theirs: Model) {
  const dir = await thetaRepo();
  const file = join(dir, 'model.safetensors');
  writeFileSync(file, await save(base));
  await thetaOk(dir, 'add', 'model.safetensors', '.gitattributes');
  await git(dir, 'commit', '-q', '-m', 'base');
  await git(dir, 'checkout', '-q', '-b', 'other');
  writeFileSync(file, await save(theirs));
  await thetaOk(dir, 'add', 'model.safetensors');
  await git(dir, 'commit', '-q', '--allow-empty', '-m', 'theirs');
  await git(dir, 'checkout', '-q', 'main');
  writeFileSync(file, await save(ours));
  await thetaOk(dir, 'add', 'model.safetensors');
  await git(dir, 'commit', '-q', '--allow-empty', '-m', 'ours');
  return { dir, file };
}

const t = suite('merge (real git)');

t('one-sided changes on both branches merge with no strategy and no prompt', async () => {
  const base = await fixtureModel();
  const ours = edit(base, '0.bias', (x) => x + 1);
  const theirs = edit(base, '4.weight', (x) => x * 2);
  const { dir, file } = await scenario(base, ours, theirs);
  try {
    const r = await run('git', ['merge', '-q', '--no-edit', 'other'], dir);
    assert.is(r.code, 0, r.stderr);
    const want = edit(ours, '4.weight', (x) => x * 2);
    assert.is(sha256(readFileSync(file)), sha256(await save(want)));
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t('both changed: no strategy leaves a conflict with a per-tensor report; --abort restores everything', async () => {
  const base = await fixtureModel();
  const ours = edit(base, '2.bias', (x) => x + 1);
  const theirs = edit(base, '2.bias', (x) => x - 1);
  const { dir, file } = await scenario(base, ours, theirs);
  try {
    const before = sha256(readFileSync(file));
    const head = await git(dir, 'rev-parse', 'HEAD');
    const r = await run('git', ['merge', '--no-edit', 'other'], dir);
    assert.is(r.code, 1);
    assert.match(r.stdout + r.stderr, /tensor '2\.bias': changed on both sides/);
    assert.match(r.stderr, /git theta resolve model\.safetensors --strategy/);
    assert.match(await git(dir, 'status', '--porcelain'), /^UU model\.safetensors/m);
    await git(dir, 'merge', '--abort');
    assert.is(sha256(readFileSync(file)), before);
    assert.is(await git(dir, 'rev-parse', 'HEAD'), head);
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

async function bothChanged() {
  const base = await fixtureModel();
  const ours = edit(base, '2.weight', (x, i) => x + (i % 3) * 0.01);
  const theirs = edit(base, '2.weight', (x, i) => x - (i % 5) * 0.01);
  return { base, ours, theirs };
}

function mergedValues(bytes: Uint8Array) {
  return load(bytes).then((m) => m.get('2.weight')!.values);
}

function expectClose(got: Float32Array, want: (i: number) => number, what: string) {
  for (let i = 0; i < got.length; i++) {
    if (Math.abs(got[i] - want(i)) > 1e-6) assert.unreachable(`${what}: element ${i} is ${got[i]}, expected ${want(i)}`);
  }
}

for (const [label, setup] of [
  ['environment (THETA_MERGE_STRATEGY)', async (dir: string) => ({ env: { THETA_MERGE_STRATEGY: 'average:alpha=0.25' } })],
  ['git config theta.merge.strategy', async (dir: string) => { await git(dir, 'config', 'theta.merge.strategy', 'average:alpha=0.25'); return {}; }],
  ['a .thetamerge rule', async (dir: string) => {
    writeFileSync(join(dir, '.thetamerge'), '# rules\n*.bias  ours\n2.weight  average:alpha=0.25\n');
    return {};
  }],
] as const) {
  t(`both changed: resolved by a strategy from ${label}`, async () => {
    const { base, ours, theirs } = await bothChanged();
    const { dir, file } = await scenario(base, ours, theirs);
    try {
      const opts = await setup(dir);
      const r = await run('git', ['merge', '--no-edit', 'other'], dir, opts as { env?: NodeJS.ProcessEnv });
      assert.is(r.code, 0, r.stdout + r.stderr);
      const a = ours.get('2.weight')!.values, b = theirs.get('2.weight')!.values;
      expectClose(await mergedValues(readFileSync(file)), (i) => 0.25 * a[i] + 0.75 * b[i], 'average');
      assert.is(await git(dir, 'status', '--porcelain'), existsSync(join(dir, '.thetamerge')) ? '?? .thetamerge\n' : '');
    } finally {
      cleanup(dir);
    }
  });
}

t('both changed: each strategy through git theta merge --strategy and git theta resolve', async () => {
  const { base, ours, theirs } = await bothChanged();
  const a = ours.get('2.weight')!.values, b = theirs.get('2.weight')!.values, o = base.get('2.weight')!.values;
  const cases: [string, ((i: number) => number) | null][] = [
    ['ours', (i) => a[i]],
    ['theirs', (i) => b[i]],
    ['base', (i) => o[i]],
    ['task-arithmetic:lambda=1', (i) => o[i] + (a[i] - o[i]) + (b[i] - o[i])],
    ['ties:density=1,lambda=1', null],
    ['dare:density=0.5,seed=3', null],
    ['slerp:t=0.5', null],
  ];
  for (const [spec, want] of cases) {
    const { dir, file } = await scenario(base, ours, theirs);
    try {
      const r = await theta(dir, ['merge', '--no-edit', 'other', '--strategy', spec]);
      assert.is(r.code, 0, `${spec}: ${r.stderr}`);
      const got = await mergedValues(readFileSync(file));
      if (want) expectClose(got, want, spec);
      else assert.ok(got.some((x, i) => x !== a[i]) && got.every(Number.isFinite), `${spec} changed the tensor`);
      assert.is(await git(dir, 'status', '--porcelain'), '');
    } finally {
      cleanup(dir);
    }
  }
  // resolve after a conflicted merge
  const { dir, file } = await scenario(base, ours, theirs);
  try {
    assert.is((await run('git', ['merge', '--no-edit', 'other'], dir)).code, 1);
    const r = await theta(dir, ['resolve', 'model.safetensors', '--strategy', 'average:alpha=0.5']);
    assert.is(r.code, 0, r.stderr);
    expectClose(await mergedValues(readFileSync(file)), (i) => 0.5 * a[i] + 0.5 * b[i], 'resolve');
    await git(dir, 'commit', '-q', '--no-edit');
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t('both added: identical is kept, different needs a strategy; deleted and unchanged is deleted', async () => {
  const base = await fixtureModel();
  const extra = { shape: [3], values: Float32Array.from([1, 2, 3]) };
  const ours = new Map(base); ours.set('new.a', extra); ours.set('new.b', { shape: [2], values: Float32Array.from([1, 1]) }); ours.delete('4.bias');
  const theirs = new Map(base); theirs.set('new.a', extra); theirs.set('new.b', { shape: [2], values: Float32Array.from([3, 5]) });
  const { dir, file } = await scenario(base, ours, theirs);
  try {
    const r = await run('git', ['merge', '--no-edit', 'other'], dir);
    assert.is(r.code, 1);
    assert.match(r.stderr, /tensor 'new\.b': added on both sides with different values/);
    assert.not.match(r.stderr, /new\.a/);
    await git(dir, 'merge', '--abort');
    const r2 = await run('git', ['merge', '--no-edit', 'other'], dir, { env: { THETA_MERGE_STRATEGY: 'average' } });
    assert.is(r2.code, 0, r2.stderr);
    const m = await load(readFileSync(file));
    assert.equal(Array.from(m.get('new.a')!.values), [1, 2, 3]);
    assert.equal(Array.from(m.get('new.b')!.values), [2, 3]);
    assert.not.ok(m.has('4.bias'), 'deleted on ours, unchanged on theirs: deleted');
  } finally {
    cleanup(dir);
  }
});

t('a shape conflict names the tensor and both shapes, whatever the strategy', async () => {
  const base = await fixtureModel();
  const ours = new Map(base); ours.set('4.bias', { shape: [5], values: new Float32Array(5) });
  const theirs = new Map(base); theirs.set('4.bias', { shape: [2, 2], values: new Float32Array(4).fill(1) });
  const { dir } = await scenario(base, ours, theirs);
  try {
    const r = await run('git', ['merge', '--no-edit', 'other'], dir, { env: { THETA_MERGE_STRATEGY: 'average' } });
    assert.is(r.code, 1);
    assert.match(r.stderr, /tensor '4\.bias': ours is F32\[5\] but theirs is F32\[2,2\]/);
  } finally {
    cleanup(dir);
  }
});

t('incremental updates on a side are rebuilt before merging; a merge of a merge works', async () => {
  const base = await fixtureModel();
  const ours = edit(base, '2.weight', (x, i) => (i < 10 ? x + 1 : x)); // sparse on ours
  const theirs = edit(base, '2.weight', (x, i) => (i >= 4000 ? x - 1 : x)); // sparse on theirs
  const { dir, file } = await scenario(base, ours, theirs);
  try {
    const meta = JSON.parse(await git(dir, 'cat-file', 'blob', 'HEAD:model.safetensors'));
    assert.is(meta.tensors['2.weight'].update, 'sparse');
    const r = await run('git', ['merge', '--no-edit', 'other'], dir, { env: { THETA_MERGE_STRATEGY: 'task-arithmetic' } });
    assert.is(r.code, 0, r.stderr);
    const o = base.get('2.weight')!.values;
    expectClose(await mergedValues(readFileSync(file)), (i) => o[i] + (i < 10 ? 1 : 0) - (i >= 4000 ? 1 : 0), 'task arithmetic of sparse updates');
    // a merge of a merge: another branch from the first merge's parent, merged into the merge
    await git(dir, 'checkout', '-q', '-b', 'third', 'HEAD~1');
    writeFileSync(file, await save(edit(ours, '0.bias', (x) => x * 3)));
    await thetaOk(dir, 'add', 'model.safetensors');
    await git(dir, 'commit', '-q', '-m', 'third');
    await git(dir, 'checkout', '-q', 'main');
    const r2 = await run('git', ['merge', '--no-edit', 'third'], dir);
    assert.is(r2.code, 0, r2.stderr);
    const m = await load(readFileSync(file));
    expectClose(m.get('0.bias')!.values, (i) => base.get('0.bias')!.values[i] * 3, 'third branch change');
    expectClose(m.get('2.weight')!.values, (i) => o[i] + (i < 10 ? 1 : 0) - (i >= 4000 ? 1 : 0), 'first merge kept');
    assert.is(await git(dir, 'status', '--porcelain'), '');
    // the merged metadata diffs and checks out again
    const d = JSON.parse((await theta(dir, ['diff', 'HEAD~1', 'HEAD', '--json'])).stdout);
    assert.is(d.files[0].summary.modified, 1);
  } finally {
    cleanup(dir);
  }
});

t('the interactive menu on a terminal picks a strategy and its parameters', async () => {
  requireTool('script', 'bsdutils');
  const { base, ours, theirs } = await bothChanged();
  const { dir, file } = await scenario(base, ours, theirs);
  try {
    // `script` gives git (and so the merge driver) a terminal; the answers arrive on it
    const answers = 'average\n0.75\ny\n';
    const r = await run('script', ['-qfec', 'git merge --no-edit other', '/dev/null'], dir, { input: answers });
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /need a merge strategy/);
    assert.match(r.stdout, /2\.weight: average:alpha=0\.75/);
    const a = ours.get('2.weight')!.values, b = theirs.get('2.weight')!.values;
    expectClose(await mergedValues(readFileSync(file)), (i) => 0.75 * a[i] + 0.25 * b[i], 'menu average');
  } finally {
    cleanup(dir);
  }
});

t('merge-models: files outside git, average and ties, checked against the inputs', async () => {
  const dir = tempDir();
  try {
    const f = (n: string) => join(fixturesDir, n);
    const out = join(dir, 'merged.safetensors');
    const r = await theta(dir, ['merge-models', f('history-v1.safetensors'), f('history-v2.safetensors'), '--strategy', 'average:alpha=0.25', '-o', out]);
    assert.is(r.code, 0, r.stderr);
    const [m, a, b] = await Promise.all([out, f('history-v1.safetensors'), f('history-v2.safetensors')].map((p) => load(readFileSync(p))));
    for (const [name, t] of m) expectClose(t.values, (i) => 0.25 * a.get(name)!.values[i] + 0.75 * b.get(name)!.values[i], `average ${name}`);
    const out2 = join(dir, 'ties.safetensors');
    const r2 = await theta(dir, ['merge-models', f('history-v1.safetensors'), f('history-v2.safetensors'), '--base', f('history-v0.safetensors'), '--strategy', 'ties:density=1,lambda=0.5', '-o', out2]);
    assert.is(r2.code, 0, r2.stderr);
    assert.is((await load(readFileSync(out2))).size, 6);
    const bad = await theta(dir, ['merge-models', f('history-v1.safetensors'), f('history-v2.safetensors'), '--strategy', 'ties', '-o', join(dir, 'x.safetensors')]);
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /needs the models' common base: give --base/);
    assert.not.ok(existsSync(join(dir, 'x.safetensors')), 'nothing written on failure');
  } finally {
    cleanup(dir);
  }
});

t.run();
