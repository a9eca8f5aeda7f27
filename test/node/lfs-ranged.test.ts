// Reading only part of a git-lfs object over HTTP (issue 19): `git theta diff --tensor` in a clone
// that has no LFS object reads each side's header and the selected tensors by Range requests on
// the LFS download href of `git theta serve` (which honours Range); a server that ignores Range
// (git-lfs's own lfstest-gitserver, for all but its magic objects) costs whole, verified downloads. The Deno example
// (examples/deno/diff.ts, the library's diffRevisions) does the same against both servers, and the
// library bundle in Chromium against `git theta serve`. Bytes
// are counted on both ends and must be what ranged reading gives: the header read-ahead plus the
// selected tensors' bytes on each side (whole objects would be ~15x more here).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memorySink } from '../../src/core/io.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { writeGguf } from '../../src/formats/gguf.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { READ_AHEAD_BYTES } from '../../src/lfs/ranged-object.ts';
import { startServer, type ThetaServer } from '../../src/node/serve/server.ts';
import { cleanup, git, repoRoot, requireTool, run, tempDir, thetaOk } from './helpers.ts';
import { locateLfsTestServer, startLfsTestServer, type LfsTestServer } from './lfs-test-server.ts';

const test = suite('git-lfs objects read by Range requests');
const dirs: string[] = [];
const servers: ThetaServer[] = [];
const S: { origin?: string; lfsServer?: LfsTestServer } = {};
test.after(async () => {
  for (const s of servers) await s.close();
  await S.lfsServer?.stop();
  for (const d of dirs) cleanup(d);
});

const N = 40; // tensors in big.safetensors
const ELEMS = 32768; // F32 elements per tensor: 128 KiB, more than the read-ahead, so tensor reads are exact
const TENSOR_BYTES = ELEMS * 4;
const DENO = join(repoRoot, 'node_modules/.bin/deno');

const f32 = (name: string, n: number, fill: (i: number) => number): TensorToWrite =>
  ({ name, dtype: 'F32', shape: [n], data: new Uint8Array(Float32Array.from({ length: n }, (_, i) => fill(i)).buffer) });

async function written(write: (sink: ReturnType<typeof memorySink>) => Promise<unknown>): Promise<Uint8Array> {
  const sink = memorySink();
  await write(sink);
  return sink.bytes();
}

/** A NumPy .npy file (v1 header padded to 64 bytes) of little-endian float32. */
function npy(values: Float32Array): Uint8Array {
  let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${values.length},), }`;
  h += ' '.repeat(64 - ((10 + h.length + 1) % 64)) + '\n';
  const out = new Uint8Array(10 + h.length + values.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 255, h.length >> 8]);
  out.set(new TextEncoder().encode(h), 10);
  out.set(new Uint8Array(values.buffer), 10 + h.length);
  return out;
}

/** v1 changes t07 and t21 of big.safetensors, g3 of tiny.gguf, and w.npy. */
async function writeModels(dir: string, v: number): Promise<void> {
  const big = Array.from({ length: N }, (_, i) => f32(`t${String(i).padStart(2, '0')}`, ELEMS, (k) => k * 1e-3 + i + (v && (i === 7 || i === 21) ? 1 : 0)));
  writeFileSync(join(dir, 'big.safetensors'), await written((s) => safetensors.write(big, s)));
  const gg = Array.from({ length: 6 }, (_, i) => f32(`g${i}`, ELEMS, (k) => Math.sin(k + i) + (v && i === 3 ? 0.5 : 0)));
  writeFileSync(join(dir, 'tiny.gguf'), await written((s) => writeGguf(gg, s, { metadata: { 'general.name': 'tiny' } })));
  writeFileSync(join(dir, 'w.npy'), npy(Float32Array.from({ length: 65536 }, (_, k) => Math.cos(k) + v)));
}

async function origin(): Promise<string> {
  if (S.origin) return S.origin;
  requireTool('git-lfs', 'git-lfs');
  const dir = tempDir('theta-lfs-ranged-');
  dirs.push(dir);
  await git(dir, 'init', '-q', '-b', 'main');
  await git(dir, 'lfs', 'install', '--local');
  await git(dir, 'lfs', 'track', '*.safetensors', '*.gguf', '*.npy');
  for (const v of [0, 1]) {
    await writeModels(dir, v);
    await git(dir, 'add', '.');
    await git(dir, 'commit', '-q', '-m', `v${v}`);
  }
  return (S.origin = dir);
}

async function clone(url: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const dir = tempDir('theta-lfs-ranged-clone-');
  dirs.push(dir);
  const r = await run('git', ['clone', '-q', url, dir], dir, { env: { GIT_LFS_SKIP_SMUDGE: '1', ...env } });
  assert.is(r.code, 0, r.stderr);
  return dir;
}

type Fetched = { bytes: number; range_requests: number; whole_objects: number; verified_by_ranges: number };
type Diff = { files: { path: string; summary: Record<string, number>; tensors: { name: string; status: string; l2?: number | null }[] }[]; fetched?: Fetched };

async function diff(dir: string, ...args: string[]): Promise<Diff> {
  return JSON.parse(await thetaOk(dir, 'diff', '--json', ...args));
}

const SELECT = ['--tensor', 't07', '--tensor', 't1?'] as const; // t07 (changed) and t10..t19 (unchanged): 11 tensors
const SELECTED = 11;
/** What Range reading gives per side: the header's read-ahead block, then each selected tensor exactly. */
const RANGED_BYTES = 2 * (READ_AHEAD_BYTES + SELECTED * TENSOR_BYTES);

async function served(o: Parameters<typeof startServer>[0]): Promise<ThetaServer> {
  const s = await startServer(o);
  servers.push(s);
  return s;
}

test('diff --tensor reads the header and the selected tensors by Range from git theta serve; same numbers as with local objects', async () => {
  const dir = await origin();
  const server = await served({ repo: dir, port: 0, webDir: null });
  const c = await clone(server.repoUrl);
  const d = await diff(c, ...SELECT, 'HEAD~1', 'HEAD', '--', 'big.safetensors');
  assert.equal(d.files[0]!.summary, { added: 0, removed: 0, modified: 1, unchanged: 10 });
  assert.equal(d.files[0]!.tensors.map((t) => [t.name, t.status]), [['t07', 'modified']]);
  assert.equal(d.fetched, { bytes: RANGED_BYTES, range_requests: 2 * (1 + SELECTED), whole_objects: 0, verified_by_ranges: 0 });
  assert.is(server.stats.bytesSent, RANGED_BYTES, 'the server sent what the client counted');
  const whole = 2 * (N * TENSOR_BYTES);
  assert.ok(RANGED_BYTES * 3 < whole, 'far less than the two objects');
  // nothing was stored, and the numbers are those of the same diff with the objects local
  const local = await diff(dir, ...SELECT, 'HEAD~1', 'HEAD', '--', 'big.safetensors');
  assert.equal(local.fetched, undefined, 'nothing fetched in the origin');
  assert.equal(d.files, local.files);
  // every tensor compared: both objects are read whole anyway, so they are downloaded whole (verified)
  const all = await diff(c, 'HEAD~1', 'HEAD', '--', 'big.safetensors');
  assert.equal(all.fetched?.whole_objects, 2);
  assert.equal(all.files[0]!.summary, { added: 0, removed: 0, modified: 2, unchanged: 38 });
});

test('GGUF and NumPy are read in part too; a read covering a whole object checks its SHA-256', async () => {
  const dir = await origin();
  const server = await served({ repo: dir, port: 0, webDir: null });
  const c = await clone(server.repoUrl);
  const g = await diff(c, '--tensor', 'g3', 'HEAD~1', 'HEAD', '--', 'tiny.gguf');
  assert.equal(g.files[0]!.summary, { added: 0, removed: 0, modified: 1, unchanged: 0 });
  assert.equal(g.files[0]!.tensors, (await diff(dir, '--tensor', 'g3', 'HEAD~1', 'HEAD', '--', 'tiny.gguf')).files[0]!.tensors);
  assert.is(g.fetched!.whole_objects, 0);
  assert.ok(g.fetched!.bytes <= 2 * (READ_AHEAD_BYTES + TENSOR_BYTES), `GGUF: ${g.fetched!.bytes} bytes`);
  // one tensor is the whole .npy: every byte read in order, so both objects' SHA-256 are checked
  const n = await diff(c, '--tensor', '*', 'HEAD~1', 'HEAD', '--', 'w.npy');
  assert.equal(n.files[0]!.summary.modified, 1);
  assert.equal(n.fetched, { bytes: 2 * (128 + 65536 * 4), range_requests: 4, whole_objects: 0, verified_by_ranges: 2 });
});

test('a server that ignores Range: the objects are downloaded whole (verified), the diff is the same', async () => {
  const dir = await origin();
  const server = await served({ repo: dir, port: 0, webDir: null, faults: { ignoreRange: true } });
  const c = await clone(server.repoUrl);
  const d = await diff(c, ...SELECT, 'HEAD~1', 'HEAD', '--', 'big.safetensors');
  assert.is(d.fetched!.whole_objects, 2);
  assert.is(d.fetched!.range_requests, 0);
  assert.ok(d.fetched!.bytes >= 2 * N * TENSOR_BYTES);
  assert.equal(d.files, (await diff(dir, ...SELECT, 'HEAD~1', 'HEAD', '--', 'big.safetensors')).files);
});

/** The Deno example with --tensor: its stdout and the bytes it says it fetched. */
async function denoDiff(url: string, extra: string[] = []): Promise<{ out: Diff; fetched: Fetched }> {
  const r = await run(DENO, ['run', '--allow-net', '--allow-env=IGNORE_TEST_WIN32', 'examples/deno/diff.ts', url, 'HEAD~1', 'HEAD', '--tensor', 't07', '--tensor', 't1?', ...extra], repoRoot);
  assert.is(r.code, 0, r.stderr);
  const m = /^fetched (\{.*\})$/m.exec(r.stderr);
  assert.ok(m, `the example says what it fetched: ${r.stderr}`);
  return { out: JSON.parse(r.stdout), fetched: JSON.parse(m![1]!) };
}

test('Deno (the library) reads by Range from git theta serve: header + selected tensors', async () => {
  const dir = await origin();
  const server = await served({ repo: dir, port: 0, webDir: null });
  const { out, fetched } = await denoDiff(server.repoUrl);
  const big = out.files.find((f) => f.path === 'big.safetensors')!;
  assert.equal(big.summary, { added: 0, removed: 0, modified: 1, unchanged: 10 });
  const cli = await diff(dir, ...SELECT, 'HEAD~1', 'HEAD', '--', 'big.safetensors');
  assert.equal(big.tensors, cli.files[0]!.tensors, 'same numbers as the CLI');
  // the other models have no tensor of these names: their headers only
  assert.is(fetched.whole_objects, 0);
  assert.ok(fetched.bytes >= RANGED_BYTES && fetched.bytes <= RANGED_BYTES + 4 * READ_AHEAD_BYTES, `fetched ${fetched.bytes}, ranged reading gives ${RANGED_BYTES} + the other models' headers`);
  assert.is(server.stats.bytesSent, fetched.bytes, 'the server sent what the library counted');
});

test('Chromium (the library bundle) reads by Range from git theta serve: header + selected tensors', async () => {
  const dir = await origin();
  const server = await served({ repo: dir, port: 0 }); // serves build/web, where the library bundle is
  const { launchChromium } = await import('./chromium.ts');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const base = new URL(server.repoUrl).origin;
    await page.goto(`${base}/styles.css`, { timeout: 15_000 }); // a page of that origin that clones nothing itself
    const sentBefore = server.stats.bytesSent ?? 0;
    // a string, so the compiler leaves its dynamic import alone
    const r = (await page.evaluate(`(async (url) => {
      const m = await import(new URL(url).origin + '/git-theta.js');
      const repo = await m.openRemote({ url });
      const d = await m.diffRevisions({ ...repo, from: 'HEAD~1', to: 'HEAD', tensors: ['t07', 't1?'] });
      return { d, fetched: { ...repo.store.fetched } };
    })(${JSON.stringify(server.repoUrl)})`)) as { d: unknown; fetched: unknown };
    const big = (r.d as Diff).files.find((f) => f.path === 'big.safetensors')!;
    assert.equal(big.summary, { added: 0, removed: 0, modified: 1, unchanged: 10 });
    assert.equal(JSON.parse(JSON.stringify(big.tensors)), (await diff(dir, ...SELECT, 'HEAD~1', 'HEAD', '--', 'big.safetensors')).files[0]!.tensors, 'same numbers as the CLI');
    const f = r.fetched as { bytes: number; rangeRequests: number; wholeObjects: number };
    assert.is(f.wholeObjects, 0);
    assert.ok(f.bytes >= RANGED_BYTES && f.bytes <= RANGED_BYTES + 4 * READ_AHEAD_BYTES, `fetched ${f.bytes}, ranged reading gives ${RANGED_BYTES} + the other models' headers`);
    assert.is((server.stats.bytesSent ?? 0) - sentBefore, f.bytes, 'the server sent what the page counted');
  } finally {
    await browser.close();
  }
});

const where = locateLfsTestServer();
test("Deno (the library) against git-lfs's lfstest-gitserver, which ignores Range for model objects: whole, verified downloads", async () => {
  if (!where.dir) {
    if (process.env.CI) throw new Error(`${where.reason}; CI must provide it`);
    console.log(`  lfstest-gitserver row skipped (${where.reason})`);
    return;
  }
  const dir = await origin();
  const server = (S.lfsServer = await startLfsTestServer(where.dir));
  const url = await server.mkrepo('theta-ranged');
  // push the git-lfs repository there (git-lfs uploads the objects; the server wants user:pass)
  const home = tempDir('theta-lfs-ranged-home-');
  dirs.push(home);
  mkdirSync(join(home, '.config'), { recursive: true });
  writeFileSync(join(home, '.git-credentials'), `http://user:pass@${new URL(server.url).host}\n`);
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
  for (const args of [['config', '--global', 'credential.helper', 'store'], ['lfs', 'install']]) {
    const r = await run('git', args, home, { env });
    assert.is(r.code, 0, r.stderr);
  }
  const push = await run('git', ['push', '-q', url, 'main'], dir, { env });
  assert.is(push.code, 0, push.stderr);
  const { out, fetched } = await denoDiff(url, ['--header', `Authorization: Basic ${btoa('user:pass')}`]);
  const big = out.files.find((f) => f.path === 'big.safetensors')!;
  assert.equal(big.summary, { added: 0, removed: 0, modified: 1, unchanged: 10 });
  assert.equal(big.tensors, (await diff(dir, ...SELECT, 'HEAD~1', 'HEAD', '--', 'big.safetensors')).files[0]!.tensors, 'same numbers as the CLI');
  // it honours Range only for its magic retry-range objects: every other GET is answered 200 with the
  // whole object, which the reader stores (verified) instead of asking again — each object once
  let whole = 0;
  for (const rev of ['HEAD~1', 'HEAD']) {
    for (const p of ['big.safetensors', 'tiny.gguf', 'w.npy']) whole += Number(/size (\d+)/.exec(await git(dir, 'cat-file', 'blob', `${rev}:${p}`))![1]);
  }
  assert.equal(fetched, { bytes: whole, range_requests: 0, whole_objects: 6, verified_by_ranges: 0 });
});

test.run();
