// Damaged and missing objects, gc, and a clean killed half-way: errors name the tensor and
// object, and nothing half-written ever reaches the store or the working tree.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { getFormat } from '../../src/formats/index.ts';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { BIN, cleanup, ENV, fixturesDir, git, run, sha256, theta, thetaOk, thetaRepo } from './helpers.ts';

const objectPath = (dir: string, oid: string) => join(dir, '.git', 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);

function allObjects(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      statSync(p).isDirectory() ? walk(p) : out.push(p);
    }
  };
  walk(join(dir, '.git', 'lfs', 'objects'));
  return out;
}

async function committed(file = 'history-v0.safetensors') {
  const dir = await thetaRepo();
  copyFileSync(join(fixturesDir, file), join(dir, 'model.safetensors'));
  await thetaOk(dir, 'add', 'model.safetensors', '.gitattributes');
  await git(dir, 'commit', '-q', '-m', 'v0');
  const m = parseMetadata(await git(dir, 'cat-file', 'blob', 'HEAD:model.safetensors'));
  return { dir, m };
}

test('a corrupt object stops checkout with an error naming the tensor and object; no wrong file', async () => {
  const { dir, m } = await committed();
  try {
    const oid = (m.tensors['2.weight'].chain[0].object as { oid: string }).oid;
    const p = objectPath(dir, oid);
    const bytes = readFileSync(p);
    bytes[100] ^= 0x40;
    rmSync(p);
    writeFileSync(p, bytes);
    rmSync(join(dir, 'model.safetensors'));
    const r = await run('git', ['checkout', '--', 'model.safetensors'], dir);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /2\.weight/);
    assert.match(r.stderr, new RegExp(oid.slice(0, 12)));
    assert.not.ok(existsSync(join(dir, 'model.safetensors')) && sha256(readFileSync(join(dir, 'model.safetensors'))) !== sha256(readFileSync(join(fixturesDir, 'history-v0.safetensors'))) && statSync(join(dir, 'model.safetensors')).size > 0,
      'no wrong checkpoint in the working tree');
  } finally {
    cleanup(dir);
  }
});

test('a missing object is a clear error naming the tensor and object', async () => {
  const { dir, m } = await committed();
  try {
    // a tensor stored as an object (the smallest ones ride inline in the metadata)
    const [name, entry] = Object.entries(m.tensors).find(([, e]) => !(e.chain[0].object as { data?: string }).data)!;
    const oid = (entry.chain[0].object as { oid: string }).oid;
    rmSync(objectPath(dir, oid));
    rmSync(join(dir, 'model.safetensors'));
    const r = await run('git', ['checkout', '--', 'model.safetensors'], dir);
    assert.is.not(r.code, 0);
    assert.ok(r.stderr.includes(`'${name}'`), r.stderr);
    assert.match(r.stderr, new RegExp(oid.slice(0, 12)));
  } finally {
    cleanup(dir);
  }
});

test('gc removes objects nothing reachable needs and keeps the rest', async () => {
  const { dir } = await committed();
  try {
    // a version that is committed, then dropped from history (amend + expire reflog)
    copyFileSync(join(fixturesDir, 'history-v1.safetensors'), join(dir, 'model.safetensors'));
    await thetaOk(dir, 'add', 'model.safetensors');
    await git(dir, 'commit', '-q', '-m', 'v1');
    const before = allObjects(dir).length;
    await git(dir, 'reset', '-q', '--hard', 'HEAD~1');
    await git(dir, 'reflog', 'expire', '--expire=now', '--all');
    const dry = await theta(dir, ['gc', '--dry-run']);
    assert.is(dry.code, 0, dry.stderr);
    assert.is(allObjects(dir).length, before, 'dry run deletes nothing');
    const r = await theta(dir, ['gc']);
    assert.is(r.code, 0, r.stderr);
    const after = allObjects(dir).length;
    assert.ok(after < before, `gc removed objects (${before} -> ${after})`);
    // everything still needed is there: a fresh checkout works byte for byte
    rmSync(join(dir, 'model.safetensors'));
    await git(dir, 'checkout', '--', 'model.safetensors');
    assert.is(sha256(readFileSync(join(dir, 'model.safetensors'))), sha256(readFileSync(join(fixturesDir, 'history-v0.safetensors'))));
  } finally {
    cleanup(dir);
  }
});

test('a clean killed half-way leaves no half object and no staged change; the next add works', async () => {
  const dir = await thetaRepo();
  try {
    // ~192 MB of tensors, written straight to disk
    const n = 6;
    const per = 8 << 20; // elements (32 MB) per tensor
    const path = join(dir, 'big.safetensors');
    const tensors = Array.from({ length: n }, (_, i) => ({ name: `layer.${i}`, dtype: 'F32' as const, shape: [per], data: new Uint8Array(per * 4).fill(i + 1) }));
    const fd = openSync(path, 'w');
    await getFormat('safetensors').write(tensors, { async write(b) { writeSync(fd, b); }, async close() {} });
    closeSync(fd);
    await git(dir, 'add', '.gitattributes');
    await git(dir, 'commit', '-q', '-m', 'attrs');
    const child = spawn('git', ['add', 'big.safetensors'], { cwd: dir, env: ENV, detached: true, stdio: 'ignore' });
    const exited = new Promise<string | null>((res) => child.on('exit', (_c, sig) => res(sig)));
    // kill as soon as the first object is on its way
    const tmp = join(dir, '.git', 'lfs', 'tmp');
    const start = Date.now();
    while (Date.now() - start < 60_000) {
      if (existsSync(tmp) && readdirSync(tmp).length) break;
      if (allObjects(dir).length > 1) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    process.kill(-child.pid!, 'SIGKILL');
    const sig = await exited;
    assert.is(sig, 'SIGKILL', 'git add was killed before it finished');
    // git's own lock, left by the killed git (git tells users to remove it the same way)
    rmSync(join(dir, '.git', 'index.lock'), { force: true });
    for (const f of allObjects(dir)) assert.is(sha256(readFileSync(f)), f.split('/').pop(), 'every stored object is whole');
    assert.is((await git(dir, 'diff', '--cached', '--name-only')).trim(), '', 'nothing staged');
    const r = await run('git', ['add', 'big.safetensors'], dir);
    assert.is(r.code, 0, r.stderr);
    await git(dir, 'commit', '-q', '-m', 'big');
    rmSync(path);
    await git(dir, 'checkout', '--', 'big.safetensors');
    assert.is(statSync(path).size, n * per * 4 + readFileSync(path).subarray(0, 8).readUInt32LE(0) + 8);
  } finally {
    cleanup(dir);
  }
});

void BIN;
test.run();
