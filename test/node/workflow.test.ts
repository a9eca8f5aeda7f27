// The git workflow end to end with the real git binary: install, track, add, commit, checkout,
// update types, rename, branches, rebase, readable diffs, gc, damaged objects.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, readFileSync, writeFileSync, mkdirSync, statSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { getFormat } from '../../src/formats/index.ts';
import { memorySink } from '../../src/core/io.ts';
import { parseMetadata, referencedObjects, storedObjects, type ModelMetadata } from '../../src/theta/metadata.ts';
import { cleanup, filesUnder, fixturesDir, git, run, sha256, tempDir, theta, thetaOk, thetaRepo } from './helpers.ts';

const HISTORY = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v2.safetensors', 'history-v3-lowrank.safetensors', 'history-v4-sparse.safetensors'];
const fixture = (n: string) => readFileSync(join(fixturesDir, n));

/** The low-rank side data as safetensors, taken from the raw storages of the PyTorch fixture. */
async function lowRankSideData(): Promise<Uint8Array> {
  const zip = unzipSync(fixture('history-v3-lowrank-sidedata.pt'));
  const storages = Object.entries(zip).filter(([k]) => /\/data\/\d+$/.test(k)).map(([, v]) => v);
  const R = storages.find((s) => s.length === 64 * 4 * 4)!;
  const C = storages.find((s) => s.length === 4 * 32 * 4)!;
  assert.ok(R && C, 'side data storages found');
  const sink = memorySink();
  await getFormat('safetensors').write(
    [
      { name: '0.weight/R', dtype: 'F32', shape: [64, 4], data: R },
      { name: '0.weight/C', dtype: 'F32', shape: [4, 32], data: C },
    ],
    sink,
  );
  return sink.bytes();
}

async function metadataAt(dir: string, spec: string): Promise<ModelMetadata> {
  return parseMetadata(await git(dir, 'cat-file', 'blob', spec));
}

const objectsDir = (dir: string) => join(dir, '.git', 'lfs', 'objects');

/** Build the five-version history; returns the repo, commits and file hashes. */
async function buildHistory(): Promise<{ dir: string; commits: string[]; hashes: string[] }> {
  const dir = await thetaRepo();
  const side = join(dir, '..', `side-${Date.now()}-${Math.random()}.safetensors`);
  writeFileSync(side, await lowRankSideData());
  const commits: string[] = [];
  const hashes: string[] = [];
  for (const [i, name] of HISTORY.entries()) {
    copyFileSync(join(fixturesDir, name), join(dir, 'model.safetensors'));
    const args = ['add', 'model.safetensors', '.gitattributes'];
    if (name.includes('lowrank')) args.push('--update-type', 'low-rank', '--update-data', side);
    await thetaOk(dir, ...args);
    await git(dir, 'commit', '-q', '-m', `v${i}`);
    commits.push((await git(dir, 'rev-parse', 'HEAD')).trim());
    hashes.push(sha256(fixture(name)));
  }
  return { dir, commits, hashes };
}

const t = suite('workflow');
let H: { dir: string; commits: string[]; hashes: string[] };

t.before(async () => {
  H = await buildHistory();
});
t.after(() => cleanup(H.dir));

t('install writes the driver config once and keeps an existing pre-push hook running', async () => {
  const dir = tempDir();
  try {
    await git(dir, 'init', '-q');
    const hooks = join(dir, '.git', 'hooks');
    mkdirSync(hooks, { recursive: true });
    writeFileSync(join(hooks, 'pre-push'), `#!/bin/sh\ncat > "${join(dir, 'chained.out')}"\necho "$1 $2" >> "${join(dir, 'chained.out')}"\n`);
    chmodSync(join(hooks, 'pre-push'), 0o755);
    const first = await theta(dir, ['install', '--local']);
    assert.is(first.code, 0, first.stderr);
    const config1 = readFileSync(join(dir, '.git', 'config'), 'utf8');
    assert.match(config1, /process = .*filter-process/);
    assert.match(config1, /required = true/);
    assert.match(config1, /textconv = .*textconv/);
    assert.match(config1, /driver = .*merge-driver %O %A %B %P/);
    const second = await theta(dir, ['install', '--local']);
    assert.is(second.code, 0);
    assert.match(second.stderr, /nothing changed/);
    assert.is(readFileSync(join(dir, '.git', 'config'), 'utf8'), config1, 'second install leaves config byte-identical');
    assert.match(readFileSync(join(hooks, 'pre-push'), 'utf8'), /git-theta pre-push hook/);
    assert.ok(existsSync(join(hooks, 'pre-push.theta-chained')), 'the old hook is kept');
    const r = await run(join(hooks, 'pre-push'), ['origin', 'https://example.invalid/repo'], dir, { input: 'refs/heads/main abc refs/heads/main def\n' });
    assert.is(r.code, 0, r.stderr);
    assert.is(readFileSync(join(dir, 'chained.out'), 'utf8'), 'refs/heads/main abc refs/heads/main def\norigin https://example.invalid/repo\n');
  } finally {
    cleanup(dir);
  }
});

t('install honours core.hooksPath', async () => {
  const dir = tempDir();
  try {
    await git(dir, 'init', '-q');
    await git(dir, 'config', 'core.hooksPath', 'my-hooks');
    await thetaOk(dir, 'install', '--local');
    assert.ok(existsSync(join(dir, 'my-hooks', 'pre-push')));
    assert.not.ok(existsSync(join(dir, '.git', 'hooks', 'pre-push')));
  } finally {
    cleanup(dir);
  }
});

t('track adds one attributes line per pattern and refuses a pattern bound to another filter', async () => {
  const dir = tempDir();
  try {
    await git(dir, 'init', '-q');
    writeFileSync(join(dir, '.gitattributes'), '*.bin filter=lfs diff=lfs merge=lfs -text\n');
    await thetaOk(dir, 'track', '*.safetensors');
    await thetaOk(dir, 'track', '*.safetensors');
    const text = readFileSync(join(dir, '.gitattributes'), 'utf8');
    assert.is(text.split('\n').filter((l) => l.startsWith('*.safetensors')).length, 1);
    assert.match(text, /^\*\.safetensors filter=theta diff=theta merge=theta$/m);
    const bad = await theta(dir, ['track', '*.bin']);
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /already bound to filter=lfs/);
    assert.not.match(bad.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    cleanup(dir);
  }
});

t('every version of the history checks out byte-identical', async () => {
  for (const [i, c] of H.commits.entries()) {
    await git(H.dir, 'checkout', '-q', c);
    assert.is(sha256(readFileSync(join(H.dir, 'model.safetensors'))), H.hashes[i], `v${i}`);
    assert.is(await git(H.dir, 'status', '--porcelain'), '', `status clean at v${i}`);
  }
  await git(H.dir, 'checkout', '-q', 'main');
});

t('the committed blob is metadata: per-tensor entries, format recorded, unchanged tensors reused', async () => {
  const m = await Promise.all(H.commits.map((c) => metadataAt(H.dir, `${c}:model.safetensors`)));
  assert.is(m[0].format, 'safetensors');
  assert.equal(Object.keys(m[0].tensors).sort(), ['0.bias', '0.weight', '2.bias', '2.weight', '4.bias', '4.weight']);
  for (const e of Object.values(m[0].tensors)) assert.is(e.update, 'dense');
  // v2 trained only the last layer: every other entry is reused as is
  for (const n of ['0.bias', '0.weight', '2.bias', '2.weight']) assert.equal(m[2].tensors[n], m[1].tensors[n], n);
  assert.is.not(m[2].tensors['4.weight'].hash, m[1].tensors['4.weight'].hash);
  // v3: low-rank on 0.weight, on top of its previous recipe
  assert.is(m[3].tensors['0.weight'].update, 'low-rank');
  assert.is(m[3].tensors['0.weight'].chain.length, m[2].tensors['0.weight'].chain.length + 1);
  assert.equal(m[3].tensors['2.weight'], m[2].tensors['2.weight']);
  // v4: auto picks sparse for 40 changed elements
  const w = m[4].tensors['2.weight'];
  assert.is(w.update, 'sparse');
  assert.is(w.chain[w.chain.length - 1].count, 40);
  // deterministic: re-cleaning the same file gives the same blob id
  const again = (await run('git', ['hash-object', '--path', 'model.safetensors', join(fixturesDir, HISTORY[4])], H.dir)).stdout.trim();
  assert.is(again, (await git(H.dir, 'rev-parse', `${H.commits[4]}:model.safetensors`)).trim());
});

t('objects live in the git-lfs layout and the sparse step stores far less than the tensor', async () => {
  const files = filesUnder(objectsDir(H.dir));
  // the weights' versions and the skeleton; the biases (256 bytes) ride inline in the metadata
  const needed = new Set<string>();
  for (const c of H.commits) for (const r of referencedObjects(await metadataAt(H.dir, `${c}:model.safetensors`))) needed.add(r.oid);
  assert.ok(needed.size >= 4, `${needed.size} objects needed (skeleton and weights)`);
  const held = new Set(files.map((f) => f.split('/').pop()!));
  for (const oid of needed) assert.ok(held.has(oid), `object ${oid} is in the store`);
  for (const f of files) {
    const oid = f.split('/').pop()!;
    assert.match(f, new RegExp(`/lfs/objects/${oid.slice(0, 2)}/${oid.slice(2, 4)}/${oid}$`));
    assert.is(sha256(readFileSync(f)), oid);
  }
  const m3 = await metadataAt(H.dir, `${H.commits[3]}:model.safetensors`);
  const m4 = await metadataAt(H.dir, `${H.commits[4]}:model.safetensors`);
  // what v4 stored, in the store or inline in its metadata
  const before = new Set(storedObjects(m3).map((r) => r.oid));
  const added = storedObjects(m4).filter((r) => !before.has(r.oid));
  assert.ok(added.length > 0, 'v4 stored something');
  const bytes = added.reduce((a, r) => a + (r.data !== undefined ? r.size : statSync(join(objectsDir(H.dir), r.oid.slice(0, 2), r.oid.slice(2, 4), r.oid)).size), 0);
  assert.ok(bytes < 64 * 64 * 4 / 4, `v4 stored ${bytes} bytes`);
});

t('renaming the file, switching branches and rebasing keep every version readable', async () => {
  const { dir, commits, hashes } = H;
  await git(dir, 'checkout', '-q', '-b', 'side', commits[1]);
  await git(dir, 'mv', 'model.safetensors', 'renamed.safetensors');
  await git(dir, 'commit', '-q', '-m', 'rename');
  assert.is(sha256(readFileSync(join(dir, 'renamed.safetensors'))), hashes[1]);
  writeFileSync(join(dir, 'notes.txt'), 'hello\n');
  await git(dir, 'add', 'notes.txt');
  await git(dir, 'commit', '-q', '-m', 'notes');
  // rebase the main line (with its incremental updates) onto the side branch
  await git(dir, 'checkout', '-q', '-b', 'rebased', 'main');
  const r = await run('git', ['rebase', '-q', 'side'], dir);
  // main's commits touch model.safetensors, which side renamed: git resolves it as a rename or conflicts
  if (r.code !== 0) {
    await git(dir, 'rebase', '--abort');
    // without the rename the rebase must go through
    await git(dir, 'checkout', '-q', '-B', 'side2', commits[1]);
    await git(dir, 'commit', '-q', '--allow-empty', '-m', 'empty');
    await git(dir, 'checkout', '-q', '-B', 'rebased', 'main');
    await git(dir, 'rebase', '-q', 'side2');
  }
  const file = existsSync(join(dir, 'model.safetensors')) ? 'model.safetensors' : 'renamed.safetensors';
  assert.is(sha256(readFileSync(join(dir, file))), hashes[4], 'rebased tip checks out v4');
  assert.is(await git(dir, 'status', '--porcelain'), '');
  await git(dir, 'checkout', '-q', 'HEAD~1');
  assert.is(sha256(readFileSync(join(dir, file))), hashes[3], 'rebased v3');
  await git(dir, 'checkout', '-q', 'main');
});

t('git theta checkout writes files from the store and records them in the index (no re-clean)', async () => {
  const { dir, commits, hashes } = H;
  await git(dir, 'checkout', '-q', 'main');
  const r = await theta(dir, ['checkout', commits[2], '--', 'model.safetensors']);
  assert.is(r.code, 0, r.stderr);
  assert.is(sha256(readFileSync(join(dir, 'model.safetensors'))), hashes[2]);
  assert.is(await git(dir, 'status', '--porcelain'), 'M  model.safetensors\n', 'staged like git checkout <rev> -- <path>, working tree clean');
  const traced = await run('git', ['status', '--porcelain'], dir, { env: { GIT_TRACE: '1' } });
  assert.not.match(traced.stderr, /filter-process/, 'git status did not need the clean filter');
  assert.is((await theta(dir, ['checkout', 'HEAD', '--', 'model.safetensors'])).code, 0);
  assert.is(sha256(readFileSync(join(dir, 'model.safetensors'))), hashes[4]);
  assert.is(await git(dir, 'status', '--porcelain'), '');
});

t('git diff and git log -p show per-tensor lines, not JSON or "binary files differ"', async () => {
  const d = await git(H.dir, 'diff', H.commits[3], H.commits[4]);
  assert.match(d, /^-2\.weight\s+F32\[64,64\]/m);
  assert.match(d, /^\+2\.weight\s+F32\[64,64\]\s+mean/m);
  assert.not.match(d, /^[-+]0\.weight/m, 'unchanged tensors are not in the diff');
  assert.not.match(d, /Binary files/);
  assert.not.match(d, /"chain"/);
  const l = await git(H.dir, 'log', '-p', '-1', H.commits[4]);
  assert.match(l, /^\+2\.weight/m);
});

t('git theta diff --json agrees with numbers computed here from the files', async () => {
  const r = await theta(H.dir, ['diff', H.commits[3], H.commits[4], '--json']);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const f = out.files[0];
  assert.is(f.path, 'model.safetensors');
  assert.is(f.summary.modified, 1);
  assert.is(f.summary.unchanged, 5);
  const w = f.tensors.find((x: { name: string }) => x.name === '2.weight');
  const a = await readF32(HISTORY[3], '2.weight');
  const b = await readF32(HISTORY[4], '2.weight');
  let d2 = 0, a2 = 0, b2 = 0, ab = 0, mx = 0;
  for (let i = 0; i < a.length; i++) {
    const d = b[i] - a[i];
    d2 += d * d; a2 += a[i] * a[i]; b2 += b[i] * b[i]; ab += a[i] * b[i]; mx = Math.max(mx, Math.abs(d));
  }
  const close = (x: number, y: number) => Math.abs(x - y) <= 1e-9 + 1e-6 * Math.abs(y);
  assert.ok(close(w.l2, Math.sqrt(d2)), `l2 ${w.l2} vs ${Math.sqrt(d2)}`);
  assert.ok(close(w.relative, Math.sqrt(d2) / Math.sqrt(a2)));
  assert.ok(close(w.maxabs, mx));
  assert.ok(close(w.cosine, ab / Math.sqrt(a2 * b2)));
  assert.is(w.update, 'sparse');
  // --approx answers from the signatures: same statuses, an estimate of the same size
  const ap = JSON.parse((await theta(H.dir, ['diff', H.commits[3], H.commits[4], '--json', '--approx'])).stdout).files[0];
  const aw = ap.tensors.find((x: { name: string }) => x.name === '2.weight');
  assert.is(ap.approx, true);
  assert.ok(aw.l2 > 0.2 * Math.sqrt(d2) && aw.l2 < 5 * Math.sqrt(d2), `approx l2 ${aw.l2} vs ${Math.sqrt(d2)}`);
});

async function readF32(file: string, tensor: string): Promise<Float64Array> {
  const { readerFromBytes } = await import('../../src/core/io.ts');
  const r = await getFormat('safetensors').open(readerFromBytes(fixture(file), file));
  for await (const t of r.tensors()) {
    const b = await t.bytes();
    if (t.name === tensor) return Float64Array.from(new Float32Array(b.buffer, b.byteOffset, b.length / 4));
  }
  throw new Error(`no ${tensor} in ${file}`);
}

t.run();
