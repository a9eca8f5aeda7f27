// The local object store on the real file system, and interoperability with git-lfs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { openLocalStore } from '../../src/node/files/store-fs.ts';
import { concat } from '../../src/core/io.ts';

const test = suite('store (node fs, git-lfs layout)');
let repo = '';
let home = '';
let gitDir = '';

function run(cmd: string, args: string[], input?: Buffer) {
  const r = spawnSync(cmd, args, { cwd: repo, input, env: { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1' }, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`could not run ${cmd} (${r.error.message}); install it with: apt-get install -y ${cmd === 'git' ? 'git' : cmd}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout as Buffer;
}

function random(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try { await p; } catch (e) { return (e as { code?: string }).code ?? `untyped: ${(e as Error).message}`; }
  return undefined;
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

test.before(() => {
  home = mkdtempSync(join(tmpdir(), 'theta-store-home-'));
  repo = mkdtempSync(join(tmpdir(), 'theta-store-repo-'));
  run('git', ['init', '-q', '-b', 'main']);
  gitDir = join(repo, '.git');
});

test.after(() => {
  if (repo) rmSync(repo, { recursive: true, force: true });
  if (home) rmSync(home, { recursive: true, force: true });
});

test('put writes exactly .git/lfs/objects/aa/bb/<oid> and leaves lfs/tmp empty', async () => {
  const store = openLocalStore(gitDir);
  const data = random(3 * 1024 * 1024 + 5, 1);
  const oid = sha(data);
  const chunks = [data.subarray(0, 100), data.subarray(100, 2_000_000), data.subarray(2_000_000)];
  assert.equal(await store.put((async function* () { yield* chunks; })()), { oid, size: data.length });
  const path = join(gitDir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
  assert.is(store.objectPath(oid), path);
  assert.ok(readFileSync(path).equals(data), 'file holds the bytes');
  assert.equal(readdirSync(join(gitDir, 'lfs')).sort(), ['objects', 'tmp']);
  assert.equal(readdirSync(join(gitDir, 'lfs', 'tmp')), []);
  assert.is(await store.size(oid), data.length);
  const parts = await drain(store.getChunks(oid));
  assert.equal(parts.map((p) => p.length), [1 << 20, 1 << 20, 1 << 20, 5]);
  assert.equal(concat(parts), data);
  assert.equal(await store.get(oid), data);
});

test('an existing object is not rewritten', async () => {
  const store = openLocalStore(gitDir);
  const data = random(1000, 2);
  const { oid } = await store.put(data);
  const before = statSync(store.objectPath(oid));
  await store.put(data);
  const after = statSync(store.objectPath(oid));
  assert.is(after.ino, before.ino, 'same file (no rename over it)');
  assert.is(after.mtimeMs, before.mtimeMs);
  assert.equal(readdirSync(join(gitDir, 'lfs', 'tmp')), []);
});

test('put is atomic: nothing visible while writing, nothing left when the input fails', async () => {
  const store = openLocalStore(gitDir);
  const data = random(500_000, 3);
  const oid = sha(data);
  let duringHas: boolean | undefined;
  let duringTmp: string[] = [];
  async function* slow() {
    yield data.subarray(0, 250_000);
    duringHas = await store.has(oid);
    duringTmp = readdirSync(join(gitDir, 'lfs', 'tmp'));
    yield data.subarray(250_000);
  }
  await store.put(slow());
  assert.is(duringHas, false, 'object absent until complete');
  assert.is(duringTmp.length, 1, 'being written under lfs/tmp');
  assert.ok(await store.has(oid));

  const other = random(400_000, 4);
  async function* failing() {
    yield other.subarray(0, 200_000);
    throw new Error('disk went away');
  }
  try {
    await store.put(failing());
    assert.unreachable('put should reject');
  } catch (e: any) {
    assert.is(e.message, 'disk went away');
  }
  assert.equal(readdirSync(join(gitDir, 'lfs', 'tmp')), [], 'temp file removed');
  assert.is(await store.has(sha(other)), false);
  const all: string[] = [];
  for await (const o of store.list()) all.push(o);
  assert.not.ok(all.includes(sha(other)));
});

test('reads verify: a flipped byte is E_OBJECT_CORRUPT naming the oid; missing is E_OBJECT_MISSING', async () => {
  const store = openLocalStore(gitDir);
  const data = random(70_000, 5);
  const { oid } = await store.put(data);
  const path = store.objectPath(oid);
  const bad = Buffer.from(readFileSync(path));
  bad[12_345] ^= 0x80;
  writeFileSync(path, bad);
  try {
    await store.get(oid);
    assert.unreachable('get should fail');
  } catch (e: any) {
    assert.is(e.code, 'E_OBJECT_CORRUPT');
    assert.ok(e.message.includes(oid), e.message);
    assert.is(e.data.actual, sha(bad));
  }
  assert.is(await codeOf(drain(store.getChunks(oid, 4096))), 'E_OBJECT_CORRUPT');
  const missing = sha(new TextEncoder().encode('never stored'));
  assert.is(await codeOf(store.get(missing)), 'E_OBJECT_MISSING');
  assert.is(await codeOf(store.size(missing)), 'E_OBJECT_MISSING');
  assert.is(await codeOf(drain(store.getChunks(missing))), 'E_OBJECT_MISSING');
  assert.is(await codeOf(store.get('../../config' as string)), 'E_INVALID_OID');
  assert.is(await store.delete(oid), true);
  assert.not.ok(existsSync(path));
  assert.is(await store.delete(oid), false);
});

test('git-lfs accepts our objects, and we read git-lfs\'s', async () => {
  const probe = spawnSync('git-lfs', ['version']);
  if (probe.error) throw new Error('this test needs git-lfs; install it with: apt-get install -y git-lfs');
  run('git', ['lfs', 'install', '--local']);
  const store = openLocalStore(gitDir);
  const data = random(2_000_001, 6);
  const { oid, size } = await store.put(data);
  const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${size}\n`;
  const out = run('git', ['lfs', 'smudge', 'model.bin'], Buffer.from(pointer));
  assert.ok(out.equals(data), `git lfs smudge returned ${out.length} bytes, want ${data.length}`);

  const theirs = random(300_000, 7);
  const ptr = run('git', ['lfs', 'clean', 'other.bin'], Buffer.from(theirs)).toString();
  const m = /^oid sha256:([0-9a-f]{64})$/m.exec(ptr);
  assert.ok(m, `git lfs clean printed a pointer: ${ptr}`);
  assert.is(m![1], sha(theirs));
  assert.equal(await store.get(m![1]!), theirs, 'object git-lfs stored is readable (and verifies) through our store');
});

test.run();
