// Pushing and fetching theta objects through git with real processes: the pre-push hook uploads
// exactly what the server lacks, a clone checks out every version byte for byte (objects fetched
// in one batch per file), `git theta fetch`, and a server that fails once, throttles, or serves
// corrupt bytes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type ThetaServer } from '../../src/node/serve/server.ts';
import { parseMetadata, referencedObjects } from '../../src/theta/metadata.ts';
import { cleanup, fixturesDir, git, objectFiles, run, sha256, tempDir, theta, thetaOk, thetaRepo } from './helpers.ts';

const HISTORY = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v2.safetensors', 'history-v3-lowrank.safetensors', 'history-v4-sparse.safetensors'];

async function objectsAt(dir: string, rev: string): Promise<string[]> {
  return referencedObjects(parseMetadata(await git(dir, 'cat-file', 'blob', `${rev}:model.safetensors`))).map((r) => r.oid);
}

/** A clone with git-theta installed before anything is checked out. */
async function cloneInstalled(url: string, into: string): Promise<string> {
  const r = await run('git', ['clone', '-q', '--no-checkout', url, into], join(into, '..'));
  assert.is(r.code, 0, r.stderr);
  await thetaOk(into, 'install', '--local');
  return into;
}

const t = suite('lfs push and fetch through git');
const S: { root: string; work: string; srv: string; server: ThetaServer; commits: string[]; hashes: string[] } = {} as never;

t.before(async () => {
  S.root = tempDir('theta-push-');
  S.srv = join(S.root, 'model.git');
  await git(S.root, 'init', '-q', '--bare', '-b', 'main', S.srv);
  S.server = await startServer({ repo: S.srv, allowPush: true, webDir: null });
  S.work = await thetaRepo();
  S.commits = [];
  S.hashes = [];
  for (const [i, name] of HISTORY.entries()) {
    copyFileSync(join(fixturesDir, name), join(S.work, 'model.safetensors'));
    await thetaOk(S.work, 'add', 'model.safetensors', '.gitattributes');
    await git(S.work, 'commit', '-q', '-m', `v${i}`);
    S.commits.push((await git(S.work, 'rev-parse', 'HEAD')).trim());
    S.hashes.push(sha256(readFileSync(join(fixturesDir, name))));
  }
  await git(S.work, 'remote', 'add', 'origin', S.server.repoUrl);
});

t.after(async () => {
  await S.server?.close();
  cleanup(S.root);
  if (S.work) cleanup(S.work);
});

t('git push uploads every object the pushed commits need, once, through the pre-push hook', async () => {
  const r = await run('git', ['push', '-u', 'origin', 'main'], S.work);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /git-theta: \d+ objects uploaded/);
  const needed = new Set<string>();
  for (const c of S.commits) for (const oid of await objectsAt(S.work, c)) needed.add(oid);
  const stored = objectFiles(join(S.srv, 'lfs', 'objects'));
  assert.equal([...stored.keys()].sort(), [...needed].sort(), 'the server holds exactly the needed objects');
  for (const [oid, b] of stored) assert.is(sha256(b), oid);
  assert.is(S.server.stats.uploads.size, needed.size);
  assert.ok([...S.server.stats.uploads.values()].every((n) => n === 1), 'each object sent once');
  assert.is((await git(S.srv, 'rev-parse', 'main')).trim(), S.commits[4]);
});

t('a second push sends only the new objects, none twice', async () => {
  const before = new Map(S.server.stats.uploads);
  const data = readFileSync(join(fixturesDir, HISTORY[4]!));
  // 600 changed elements of the largest tensor: a sparse step of ~2.4 KB of indices and values, stored
  // as objects (a change of a few elements would ride inline in the metadata and need no upload)
  const headerLength = Number(data.readBigUInt64LE(0));
  const header = JSON.parse(data.subarray(8, 8 + headerLength).toString()) as Record<string, { data_offsets?: [number, number] }>;
  const [begin, end] = Object.values(header).filter((v) => v.data_offsets).map((v) => v.data_offsets!).sort((a, b) => (b[1] - b[0]) - (a[1] - a[0]))[0]!;
  assert.ok(end - begin >= 4 * 1200, 'the fixture has a tensor of at least 1,200 float32 elements');
  for (let i = 0; i < 600; i++) data[8 + headerLength + begin + 4 * i + 3] ^= 0x40;
  writeFileSync(join(S.work, 'model.safetensors'), data);
  await thetaOk(S.work, 'add', 'model.safetensors');
  await git(S.work, 'commit', '-q', '-m', 'v5');
  S.commits.push((await git(S.work, 'rev-parse', 'HEAD')).trim());
  S.hashes.push(sha256(data));
  const fresh = (await objectsAt(S.work, 'HEAD')).filter((o) => !before.has(o));
  assert.ok(fresh.length >= 1, 'the new version has new objects');
  const r = await run('git', ['push', 'origin', 'main'], S.work);
  assert.is(r.code, 0, r.stderr);
  assert.ok([...S.server.stats.uploads.values()].every((n) => n === 1), 'no object uploaded twice');
  assert.equal([...S.server.stats.uploads.keys()].filter((o) => !before.has(o)).sort(), fresh.sort(), 'exactly the new objects were sent');
});

t('clone, install, checkout: every version byte-identical, objects fetched in one batch per file', async () => {
  const c = await cloneInstalled(S.server.repoUrl, join(S.root, 'clone1'));
  const batches = S.server.stats.batches.length;
  const co = await run('git', ['checkout', 'main'], c);
  assert.is(co.code, 0, co.stderr);
  assert.is(sha256(readFileSync(join(c, 'model.safetensors'))), S.hashes[5]);
  const used = S.server.stats.batches.slice(batches);
  assert.equal(used, [{ operation: 'download', objects: (await objectsAt(c, 'HEAD')).length }], 'one batch request for the checkout');
  for (let i = S.commits.length - 1; i >= 0; i--) {
    const r = await run('git', ['-c', 'advice.detachedHead=false', 'checkout', '-q', S.commits[i]!], c);
    assert.is(r.code, 0, r.stderr);
    assert.is(sha256(readFileSync(join(c, 'model.safetensors'))), S.hashes[i], `version ${i}`);
  }
  const perCheckout = S.server.stats.batches.slice(batches + 1);
  assert.ok(perCheckout.every((b) => b.operation === 'download'));
  assert.ok(perCheckout.length <= S.commits.length - 1, `at most one batch per checkout (${perCheckout.length})`);
  for (const [oid, b] of objectFiles(join(c, '.git', 'lfs', 'objects'))) assert.is(sha256(b), oid);
});

t('git theta fetch downloads ahead of time; the checkout then needs no request', async () => {
  const c = await cloneInstalled(S.server.repoUrl, join(S.root, 'clone2'));
  const f = await theta(c, ['fetch', 'origin', S.commits[0]!, 'main']);
  assert.is(f.code, 0, f.stderr);
  assert.match(f.stderr, /objects downloaded/);
  const want = new Set([...(await objectsAt(c, S.commits[0]!)), ...(await objectsAt(c, 'main'))]);
  assert.equal([...objectFiles(join(c, '.git', 'lfs', 'objects')).keys()].sort(), [...want].sort());
  const batches = S.server.stats.batches.length;
  assert.is((await run('git', ['checkout', 'main'], c)).code, 0);
  assert.is((await run('git', ['-c', 'advice.detachedHead=false', 'checkout', '-q', S.commits[0]!], c)).code, 0);
  assert.is(sha256(readFileSync(join(c, 'model.safetensors'))), S.hashes[0]);
  assert.is(S.server.stats.batches.length, batches, 'no request during the checkouts');
  const again = await theta(c, ['fetch']);
  assert.is(again.code, 0);
  assert.is(S.server.stats.batches.length, batches, 'nothing missing, nothing asked');
});

t('a batch 500 once and a 429 with Retry-After are retried, then the checkout succeeds', async () => {
  const c = await cloneInstalled(S.server.repoUrl, join(S.root, 'clone3'));
  S.server.faults.batch500 = 1;
  S.server.faults.download429 = 1;
  S.server.faults.retryAfter = '1';
  const t0 = Date.now();
  const co = await run('git', ['checkout', 'main'], c);
  assert.is(co.code, 0, co.stderr);
  assert.is(S.server.faults.batch500, 0, 'the 500 was served');
  assert.is(S.server.faults.download429, 0, 'the 429 was served');
  assert.ok(Date.now() - t0 >= 1000, 'Retry-After: 1 was waited for');
  assert.is(sha256(readFileSync(join(c, 'model.safetensors'))), S.hashes[5]);
});

t('corrupt objects from the server: a clear error, nothing corrupt in the working tree or the store', async () => {
  const c = await cloneInstalled(S.server.repoUrl, join(S.root, 'clone4'));
  S.server.faults.corrupt = true;
  let co;
  try {
    co = await run('git', ['checkout', 'main'], c);
  } finally {
    S.server.faults.corrupt = false;
  }
  assert.is.not(co.code, 0, 'the checkout fails');
  assert.match(co.stderr, /corrupt/);
  assert.not.ok(existsSync(join(c, 'model.safetensors')), 'no file was written');
  assert.is(objectFiles(join(c, '.git', 'lfs', 'objects')).size, 0, 'nothing stored');
  const again = await run('git', ['checkout', '-f', 'main'], c);
  assert.is(again.code, 0, again.stderr);
  assert.is(sha256(readFileSync(join(c, 'model.safetensors'))), S.hashes[5]);
});

t('git theta pull: a new version pushed elsewhere arrives with its objects', async () => {
  const c = join(S.root, 'clone1'); // tracks origin/main since the clone test
  const data = readFileSync(join(fixturesDir, HISTORY[2]!));
  data[data.length - 2] ^= 0x01;
  writeFileSync(join(S.work, 'model.safetensors'), data);
  await thetaOk(S.work, 'add', 'model.safetensors');
  await git(S.work, 'commit', '-q', '-m', 'v6');
  assert.is((await run('git', ['push', 'origin', 'main'], S.work)).code, 0);
  assert.is((await run('git', ['checkout', '-q', 'main'], c)).code, 0);
  const p = await theta(c, ['pull', '--ff-only', 'origin', 'main']);
  assert.is(p.code, 0, p.stderr);
  assert.is((await git(c, 'rev-parse', 'HEAD')).trim(), (await git(S.work, 'rev-parse', 'HEAD')).trim());
  assert.is(sha256(readFileSync(join(c, 'model.safetensors'))), sha256(data));
  for (const oid of await objectsAt(c, 'HEAD')) assert.ok(existsSync(join(c, '.git', 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid)));
});

t('credentials: a 401 is answered through git credential fill', async () => {
  const c = await cloneInstalled(S.server.repoUrl, join(S.root, 'clone5'));
  await git(c, 'config', 'credential.helper', '!f() { test "$1" = get && printf "username=alice\\npassword=s3cret\\n"; }; f');
  S.server.faults.authorization = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
  try {
    const co = await run('git', ['checkout', 'main'], c);
    assert.is(co.code, 0, co.stderr);
    assert.is(sha256(readFileSync(join(c, 'model.safetensors'))), sha256(readFileSync(join(S.work, 'model.safetensors'))));
    // without credentials the same checkout fails with a clear message
    const c2 = await cloneInstalled(S.server.repoUrl, join(S.root, 'clone6'));
    const bad = await run('git', ['checkout', 'main'], c2);
    assert.is.not(bad.code, 0);
    assert.match(bad.stderr, /401/);
    assert.not.ok(existsSync(join(c2, 'model.safetensors')));
  } finally {
    S.server.faults.authorization = undefined;
  }
});

t('a remote that is a local path: objects are copied store to store on push and on checkout', async () => {
  const bare = join(S.root, 'local.git');
  await git(S.root, 'init', '-q', '--bare', '-b', 'main', bare);
  const r = await run('git', ['push', bare, 'main'], S.work);
  assert.is(r.code, 0, r.stderr);
  const needed = new Set<string>();
  for (const c of S.commits) for (const oid of await objectsAt(S.work, c)) needed.add(oid);
  const copied = objectFiles(join(bare, 'lfs', 'objects'));
  for (const oid of needed) assert.ok(copied.has(oid), `object ${oid.slice(0, 12)} copied`);
  for (const [oid, b] of copied) assert.is(sha256(b), oid);
  const c = await cloneInstalled(bare, join(S.root, 'clone-local'));
  const co = await run('git', ['-c', 'advice.detachedHead=false', 'checkout', '-q', S.commits[3]!], c);
  assert.is(co.code, 0, co.stderr);
  assert.is(sha256(readFileSync(join(c, 'model.safetensors'))), S.hashes[3]);
});

t('an upload the server refuses stops the push with a clear message', async () => {
  const ro = await startServer({ repo: S.srv, allowPush: false, webDir: null });
  try {
    const w = await thetaRepo();
    try {
      copyFileSync(join(fixturesDir, HISTORY[1]!), join(w, 'model.safetensors'));
      await thetaOk(w, 'add', 'model.safetensors', '.gitattributes');
      await git(w, 'commit', '-q', '-m', 'x');
      // push to a read-only server, but with lfs.url on it and git's own transport writable (the allow-push one)
      await git(w, 'config', 'lfs.url', `${ro.repoUrl}/info/lfs`);
      const r = await run('git', ['push', S.server.repoUrl, 'HEAD:refs/heads/refused'], w);
      assert.is.not(r.code, 0);
      assert.match(r.stderr, /read-only/);
      assert.match(r.stderr, /push was refused/);
      assert.is((await run('git', ['rev-parse', '--verify', '-q', 'refs/heads/refused'], S.srv)).code, 1, 'git sent nothing');
    } finally {
      cleanup(w);
    }
  } finally {
    await ro.close();
  }
});

t.run();
