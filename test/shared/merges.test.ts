// Merge strategies against an independent plain-TypeScript reference and hand-computed cases.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { getMergeStrategy, parseStrategySpec, type MergeInput, type MergeOutput } from '../../src/merges/index.ts';
import { platform } from './platform.ts';

const t = suite('merge strategies');

const f32bytes = (xs: ArrayLike<number>) => new Uint8Array(Float32Array.from(xs).buffer);
/** A float result: f32 values, or F32 bytes (the float strategies return bytes in the tensor's dtype). */
const values = (o: MergeOutput): Float32Array => {
  assert.ok(o && ('values' in o || 'bytes' in o), 'a float result');
  if ('values' in o!) return o.values;
  const b = (o as { bytes: Uint8Array }).bytes;
  return new Float32Array(b.slice().buffer);
};

function input(base: number[] | null, ...models: number[][]): MergeInput {
  return { name: 't', dtype: 'F32', shape: [models[0].length], base: base ? f32bytes(base) : null, models: models.map(f32bytes) };
}

async function run(spec: string, inp: MergeInput): Promise<MergeOutput> {
  const { strategy, params } = parseStrategySpec(spec);
  return strategy.merge(inp, params, await getKernels());
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}
const randVec = (r: () => number, n: number) => Array.from({ length: n }, () => Math.fround(r()));

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6, what = '') {
  assert.is(a.length, b.length, `${what} length`);
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])))) assert.unreachable(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

// --- an independent reference, written from the papers' definitions with sorting, not selection
function refTrim(tau: number[], density: number): number[] {
  const k = Math.min(tau.length, Math.ceil(density * tau.length - 1e-9));
  const order = tau.map((v, i) => i).sort((i, j) => Math.abs(tau[j]) - Math.abs(tau[i]) || i - j);
  const keep = new Set(order.slice(0, k));
  return tau.map((v, i) => (keep.has(i) ? v : 0));
}
function refElect(taus: number[][]): number[] {
  return taus[0].map((_, i) => {
    const s = taus.reduce((a, t) => a + t[i], 0);
    if (s === 0) return 0;
    const agree = taus.map((t) => t[i]).filter((v) => v !== 0 && Math.sign(v) === Math.sign(s));
    return agree.length ? agree.reduce((a, v) => a + v, 0) / agree.length : 0;
  });
}

t('TIES on 3 task vectors of 6 entries, computed by hand', async () => {
  const base = [0, 0, 0, 0, 0, 0];
  const t1 = [0.5, -0.2, 0.1, 0.9, -0.4, 0];
  const t2 = [-0.3, 0.6, 0.2, 0.8, 0.1, 0.05];
  const t3 = [0.4, -0.1, -0.7, -0.2, 0.3, 0];
  const out = values(await run('ties:density=0.5,lambda=1', input(base, t1, t2, t3)));
  close(out, [0.45, 0.6, -0.7, 0.85, -0.4, 0], 1e-6, 'ties');
  // lambda scales the merged task vector; base is added back
  const out2 = values(await run('ties:density=0.5,lambda=2', input([1, 1, 1, 1, 1, 1], t1.map((x) => x + 1), t2.map((x) => x + 1), t3.map((x) => x + 1))));
  close(out2, [1.9, 2.2, -0.4, 2.7, 0.2, 1], 1e-5, 'ties lambda');
});

t('average: alpha·ours + (1−alpha)·theirs, and A with A gives A exactly', async () => {
  const r = rng(1);
  const a = randVec(r, 1000), b = randVec(r, 1000);
  close(values(await run('average:alpha=0.3', input(null, a, b))), a.map((x, i) => 0.3 * x + 0.7 * b[i]), 1e-6, 'avg');
  const same = values(await run('average:alpha=0.5', input(null, a, a)));
  assert.equal(Array.from(same), a, 'A averaged with A is A (the reference would give A/2)');
});

t('task arithmetic and TIES agree with the reference on random task vectors', async () => {
  const r = rng(2);
  const n = 777;
  const base = randVec(r, n), m1 = randVec(r, n), m2 = randVec(r, n), m3 = randVec(r, n);
  const ta = values(await run('task-arithmetic:lambda=0.7', input(base, m1, m2, m3)));
  close(ta, base.map((b, i) => b + 0.7 * (m1[i] - b + (m2[i] - b) + (m3[i] - b))), 1e-5, 'task arithmetic');
  const taus = [m1, m2, m3].map((m) => m.map((x, i) => Math.fround(x - base[i])));
  for (const density of [0.1, 0.2, 0.5, 1]) {
    const want = refElect(taus.map((x) => refTrim(x, density))).map((v, i) => base[i] + 0.8 * v);
    close(values(await run(`ties:density=${density},lambda=0.8`, input(base, m1, m2, m3))), want, 1e-5, `ties ${density}`);
  }
});

t('DARE: the same seed gives the same result, survivors rescaled by 1/density', async () => {
  const r = rng(3);
  const n = 4096;
  const base = randVec(r, n), m1 = randVec(r, n), m2 = randVec(r, n);
  const a = values(await run('dare:density=0.25,seed=7', input(base, m1, m2)));
  const b = values(await run('dare:density=0.25,seed=7', input(base, m1, m2)));
  const c = values(await run('dare:density=0.25,seed=8', input(base, m1, m2)));
  assert.equal(Array.from(a), Array.from(b));
  assert.not.equal(Array.from(a), Array.from(c));
  // with one model, each entry is either base (dropped) or base + delta/density (kept)
  const one = values(await run('dare:density=0.25,seed=7', input(base, m1)));
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const d = m1[i] - base[i];
    if (Math.abs(one[i] - base[i]) < 1e-7) continue;
    kept++;
    assert.ok(Math.abs(one[i] - (base[i] + d / 0.25)) < 1e-5, `entry ${i}`);
  }
  assert.ok(kept > n * 0.2 && kept < n * 0.3, `kept ${kept} of ${n}`);
  platform().report('dare-digest', Array.from(a.slice(0, 64)).map((x) => x.toString(36)).join('_'));
  // combine=ties elects signs over the dropped vectors
  const tied = values(await run('dare:density=0.5,seed=1,combine=ties', input(base, m1, m2)));
  assert.is(tied.length, n);
});

t('slerp: endpoints, midpoint on the arc, linear when nearly parallel', async () => {
  const a = [1, 0, 0, 0], b = [0, 1, 0, 0];
  close(values(await run('slerp:t=0', input(null, a, b))), a, 1e-6, 't=0');
  close(values(await run('slerp:t=1', input(null, a, b))), b, 1e-6, 't=1');
  close(values(await run('slerp:t=0.5', input(null, a, b))), [Math.SQRT1_2, Math.SQRT1_2, 0, 0], 1e-6, 'midpoint');
  const p = [1, 2, 3, 4], q = [1.0001, 2, 3, 4];
  close(values(await run('slerp:t=0.5', input(null, p, q))), p.map((x, i) => (x + q[i]) / 2), 1e-6, 'parallel');
});

t('selection strategies keep exact bytes of any dtype; fail leaves the conflict', async () => {
  const k = await getKernels();
  const inp: MergeInput = { name: 'n', dtype: 'I64', shape: [2], base: new Uint8Array(16).fill(1), models: [new Uint8Array(16).fill(2), new Uint8Array(16).fill(3)] };
  assert.equal((getMergeStrategy('ours').merge(inp, {}, k) as { bytes: Uint8Array }).bytes, inp.models[0]);
  assert.equal((getMergeStrategy('theirs').merge(inp, {}, k) as { bytes: Uint8Array }).bytes, inp.models[1]);
  assert.equal((getMergeStrategy('base').merge(inp, {}, k) as { bytes: Uint8Array }).bytes, inp.base);
  assert.is(getMergeStrategy('fail').merge(inp, {}, k), null);
});

t('strategy specs are checked: unknown names and parameters, out-of-range values', () => {
  assert.throws(() => parseStrategySpec('nope'), /unknown merge strategy 'nope'/);
  assert.throws(() => parseStrategySpec('average:beta=1'), /has no parameter 'beta'/);
  assert.throws(() => parseStrategySpec('ties:density=2'), /density=2 is not a number in \[0, 1\]/);
  assert.throws(() => parseStrategySpec('dare:combine=mean'), /combine must be one of linear, ties/);
  assert.equal(parseStrategySpec('ties').params, { density: 0.2, lambda: 1 });
});

t.run();
