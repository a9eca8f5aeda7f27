// The CLI on every fixture format: inspect --json against expected.json (made by real PyTorch and
// NumPy), add → commit → checkout byte-identical, convert, and format overrides.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, fixturesDir, git, run, sha256, tempDir, theta, thetaOk, thetaRepo } from './helpers.ts';

const t = suite('cli: formats');
const expected = () => JSON.parse(readFileSync(join(fixturesDir, 'expected.json'), 'utf8')) as Record<string, { tensors: Record<string, { dtype: string; shape: number[]; sum: number; sumsq: number; maxabs: number; sha256_le_bytes: string }> }>;
const TORCH_TO_ST: Record<string, string> = { float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', bool: 'BOOL', uint8: 'U8', int8: 'I8' };
const near = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * (1 + Math.abs(b));

t('inspect --json --sha256 agrees with expected.json for every fixture', async () => {
  const exp = expected();
  for (const [file, want] of Object.entries(exp)) {
    const r = await theta(fixturesDir, ['inspect', file, '--json', '--sha256']);
    assert.is(r.code, 0, `${file}: ${r.stderr}`);
    const got = JSON.parse(r.stdout);
    const byName = new Map(got.tensors.map((x: { name: string }) => [x.name, x]));
    for (const [name, w] of Object.entries(want.tensors)) {
      const g = byName.get(name) as { dtype: string; shape: number[]; sha256: string; stats: { mean: number; l2: number; min: number; max: number } } | undefined;
      assert.ok(g, `${file}: tensor ${name} listed`);
      assert.is(g!.dtype, TORCH_TO_ST[w.dtype], `${file}:${name} dtype`);
      assert.equal(g!.shape, w.shape, `${file}:${name} shape`);
      assert.is(g!.sha256, w.sha256_le_bytes, `${file}:${name} sha256`);
      const n = w.shape.reduce((a, b) => a * b, 1);
      assert.ok(near(g!.stats.mean * n, w.sum, 1e-5), `${file}:${name} sum ${g!.stats.mean * n} vs ${w.sum}`);
      assert.ok(near(g!.stats.l2 ** 2, w.sumsq, 1e-5), `${file}:${name} sumsq`);
      assert.ok(near(Math.max(Math.abs(g!.stats.min), Math.abs(g!.stats.max)), w.maxabs, 1e-7), `${file}:${name} maxabs`);
    }
  }
});

t('add → commit → checkout gives every fixture back byte for byte', async () => {
  const dir = await thetaRepo(['*.safetensors', '*.pt', '*.npz', '*.npy']);
  try {
    const files = Object.keys(expected());
    for (const f of files) copyFileSync(join(fixturesDir, f), join(dir, f));
    await thetaOk(dir, 'add', '.gitattributes', ...files);
    await git(dir, 'commit', '-q', '-m', 'all formats');
    for (const f of files) {
      const meta = JSON.parse(await git(dir, 'cat-file', 'blob', `HEAD:${f}`));
      assert.ok(['safetensors', 'pytorch', 'numpy', 'npz'].includes(meta.format), `${f} recorded as ${meta.format}`);
    }
    await run('sh', ['-c', `rm ${files.join(' ')}`], dir);
    await git(dir, 'checkout', '--', '.');
    for (const f of files) assert.is(sha256(readFileSync(join(dir, f))), sha256(readFileSync(join(fixturesDir, f))), f);
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

t('convert between formats keeps every tensor; bad targets are one-line errors', async () => {
  const dir = tempDir();
  try {
    const st = join(dir, 'arrays.safetensors');
    const back = join(dir, 'back.npz');
    assert.is((await theta(dir, ['convert', join(fixturesDir, 'arrays.npz'), st])).code, 0);
    assert.is((await theta(dir, ['convert', st, back])).code, 0);
    const a = JSON.parse((await theta(dir, ['inspect', join(fixturesDir, 'arrays.npz'), '--json', '--sha256'])).stdout);
    const b = JSON.parse((await theta(dir, ['inspect', st, '--json', '--sha256'])).stdout);
    const c = JSON.parse((await theta(dir, ['inspect', back, '--json', '--sha256'])).stdout);
    const key = (r: { tensors: { name: string; sha256: string; shape: number[] }[] }) => r.tensors.map((x) => `${x.name}:${x.shape}:${x.sha256}`).sort();
    assert.equal(key(b), key(a));
    assert.equal(key(c), key(a));
    assert.is(b.format, 'safetensors');
    const pt = join(dir, 'mlp.safetensors');
    assert.is((await theta(dir, ['convert', join(fixturesDir, 'mlp-bf16.pt'), pt])).code, 0);
    const p = JSON.parse((await theta(dir, ['inspect', pt, '--json'])).stdout);
    assert.ok(p.tensors.every((x: { dtype: string }) => x.dtype === 'BF16'));
    const bad = await theta(dir, ['convert', st, join(dir, 'out.weird')]);
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /cannot tell the output format/);
    assert.is(bad.stderr.trim().split('\n').length, 1);
  } finally {
    cleanup(dir);
  }
});

t('format override: the theta-format attribute and add --format are used instead of detection', async () => {
  const dir = await thetaRepo([]);
  try {
    writeFileSync(join(dir, '.gitattributes'), '*.dat filter=theta diff=theta merge=theta theta-format=gguf\n');
    copyFileSync(join(fixturesDir, 'model.safetensors'), join(dir, 'model.dat'));
    const r = await run('git', ['add', 'model.dat'], dir);
    assert.is.not(r.code, 0, 'read as gguf, a safetensors file is refused');
    assert.match(r.stderr, /gguf|GGUF/);
    writeFileSync(join(dir, '.gitattributes'), '*.dat filter=theta diff=theta merge=theta\n');
    const ok = await theta(dir, ['add', 'model.dat', '--format', 'safetensors']);
    assert.is(ok.code, 0, ok.stderr);
    assert.is(JSON.parse(await git(dir, 'cat-file', 'blob', ':model.dat')).format, 'safetensors');
    const unknown = await theta(dir, ['add', 'model.dat', '--format', 'nope']);
    assert.is(unknown.code, 1);
    assert.match(unknown.stderr, /format 'nope'/);
  } finally {
    cleanup(dir);
  }
});

t('bad input: not a checkpoint, truncated, corrupt header — one line, exit 1, no stack trace', async () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'notes.txt'), 'hello world\n');
    const st = readFileSync(join(fixturesDir, 'model.safetensors'));
    writeFileSync(join(dir, 'trunc.safetensors'), st.subarray(0, st.length - 100));
    const corrupt = Buffer.from(st);
    corrupt.write('!!!', 8, 'latin1'); // the header JSON no longer parses
    writeFileSync(join(dir, 'corrupt.safetensors'), corrupt);
    writeFileSync(join(dir, 'trunc.pt'), readFileSync(join(fixturesDir, 'mlp-f32.pt')).subarray(0, 5000));
    for (const f of ['notes.txt', 'trunc.safetensors', 'corrupt.safetensors', 'trunc.pt', 'missing.safetensors']) {
      const r = await theta(dir, ['inspect', f]);
      assert.is(r.code, 1, f);
      assert.is(r.stderr.trim().split('\n').length, 1, `${f}: one line: ${r.stderr}`);
      assert.match(r.stderr, /^git-theta: /);
      assert.not.match(r.stderr, /internal error|\bat .*\.js/);
    }
  } finally {
    cleanup(dir);
  }
});

t.run();
