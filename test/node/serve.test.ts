// `git theta serve` with real clients: the real git-lfs client pushes and fetches through its
// LFS API, real git clones through git http-backend; the CLI prints its URL and, read-only,
// refuses pushes; CORS, static files and oid validation.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type ThetaServer } from '../../src/node/serve/server.ts';
import { BIN, ENV, cleanup, git, objectFiles, rawRequest, requireTool, run, sha256, tempDir } from './helpers.ts';

const t = suite('serve');

function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

const raw = rawRequest;

let dirs: string[] = [];
let server: ThetaServer | null = null;
let child: ChildProcess | null = null;

t.before(() => {
  requireTool('git-lfs', 'git-lfs');
});

t.after.each(async () => {
  await server?.close();
  server = null;
  if (child && child.exitCode === null) {
    const done = new Promise((r) => child!.once('close', r));
    child.kill('SIGTERM');
    await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
  }
  child = null;
  for (const d of dirs) cleanup(d);
  dirs = [];
});

t('the real git-lfs client: git lfs push --all and git lfs fetch --all through serve, objects verified', async () => {
  const root = tempDir('theta-serve-lfs-');
  dirs.push(root);
  const srv = join(root, 'store.git');
  await git(root, 'init', '-q', '--bare', '-b', 'main', srv);
  server = await startServer({ repo: srv, allowPush: true, webDir: null });
  const lfsUrl = `${server.repoUrl}/info/lfs`;

  const w = join(root, 'work');
  mkdirSync(w);
  await git(w, 'init', '-q', '-b', 'main');
  await git(w, 'lfs', 'install', '--local');
  await git(w, 'lfs', 'track', '*.bin');
  const files = [bytes(70_000, 1), bytes(5, 2), bytes(300_000, 3)];
  files.forEach((b, i) => writeFileSync(join(w, `f${i}.bin`), b));
  await git(w, 'add', '.');
  await git(w, 'commit', '-q', '-m', 'lfs files');
  writeFileSync(join(w, 'f0.bin'), bytes(1000, 4));
  await git(w, 'commit', '-q', '-am', 'second version');
  const oids = [...files, bytes(1000, 4)].map(sha256);
  await git(w, 'remote', 'add', 'origin', server.repoUrl);
  await git(w, 'config', 'lfs.url', lfsUrl);

  const push = await run('git', ['lfs', 'push', '--all', 'origin'], w);
  assert.is(push.code, 0, `git lfs push failed: ${push.stderr}`);
  const stored = objectFiles(join(srv, 'lfs', 'objects'));
  assert.equal([...stored.keys()].sort(), [...oids].sort(), 'every object arrived');
  for (const [oid, b] of stored) assert.is(sha256(b), oid, 'stored bytes match their id');
  assert.equal([...server.stats.uploads.values()], [1, 1, 1, 1]);
  assert.ok(server.stats.batches.some((b) => b.operation === 'upload' && b.objects === 4));

  // git push runs git-lfs's pre-push hook: the server has everything, so nothing is sent again
  const gp = await run('git', ['push', '-q', 'origin', 'main'], w);
  assert.is(gp.code, 0, gp.stderr);
  assert.equal([...server.stats.uploads.values()], [1, 1, 1, 1], 'no object uploaded twice');
  assert.is((await git(srv, 'rev-parse', 'main')).trim(), (await git(w, 'rev-parse', 'main')).trim());

  // a fresh clone (pointer files only), then git lfs fetch --all
  const c = join(root, 'clone');
  const cl = await run('git', ['clone', '-q', server.repoUrl, c], root, { env: { GIT_LFS_SKIP_SMUDGE: '1' } });
  assert.is(cl.code, 0, cl.stderr);
  assert.match(readFileSync(join(c, 'f2.bin'), 'utf8'), /^version https:\/\/git-lfs/, 'pointer before fetching');
  await git(c, 'lfs', 'install', '--local');
  await git(c, 'config', 'lfs.url', lfsUrl);
  const fetched = await run('git', ['lfs', 'fetch', '--all'], c);
  assert.is(fetched.code, 0, fetched.stderr);
  const local = objectFiles(join(c, '.git', 'lfs', 'objects'));
  assert.equal([...local.keys()].sort(), [...oids].sort());
  for (const [oid, b] of local) assert.is(sha256(b), oid);
  assert.is((await run('git', ['lfs', 'checkout'], c)).code, 0);
  assert.equal(readFileSync(join(c, 'f2.bin')), files[2]);
  assert.equal(readFileSync(join(c, 'f0.bin')), bytes(1000, 4));
  assert.ok([...server.stats.downloads.values()].every((n) => n === 1));
});

t('CLI: prints its URL; read-only by default: clones work, git push and LFS uploads get 403', async () => {
  const root = tempDir('theta-serve-cli-');
  dirs.push(root);
  const srv = join(root, 'model');
  mkdirSync(srv);
  await git(srv, 'init', '-q', '-b', 'main');
  writeFileSync(join(srv, 'a.txt'), 'hello\n');
  await git(srv, 'add', 'a.txt');
  await git(srv, 'commit', '-q', '-m', 'one');
  const head = (await git(srv, 'rev-parse', 'HEAD')).trim();

  child = spawn(process.execPath, [BIN, 'serve', srv, '--port', '0'], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no URL in 10 s: ${out}`)), 10_000);
    child!.stdout!.on('data', (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/model\.git)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child!.once('close', (code) => { clearTimeout(timer); reject(new Error(`serve exited (${code}): ${out}`)); });
  });
  assert.match(out, /read-only/);

  // a work tree is served (its .git), under both /model and /model.git
  const ls = await run('git', ['ls-remote', url.replace(/\.git$/, '')], root);
  assert.is(ls.code, 0, ls.stderr);
  assert.ok(ls.stdout.includes(`${head}\trefs/heads/main`));
  const c = join(root, 'clone');
  assert.is((await run('git', ['clone', '-q', url, c], root)).code, 0);
  assert.is(readFileSync(join(c, 'a.txt'), 'utf8'), 'hello\n');

  writeFileSync(join(c, 'b.txt'), 'more\n');
  await git(c, 'add', 'b.txt');
  await git(c, 'commit', '-q', '-m', 'two');
  const push = await run('git', ['push', 'origin', 'HEAD:refs/heads/other'], c);
  assert.is.not(push.code, 0, 'the push is refused');
  assert.match(push.stderr, /403/);
  assert.is((await run('git', ['rev-parse', '--verify', '-q', 'refs/heads/other'], srv)).code, 1, 'no ref was created');

  const origin = new URL(url).origin;
  const batch = await raw(origin, '/model.git/info/lfs/objects/batch', 'POST', { 'Content-Type': 'application/vnd.git-lfs+json' },
    JSON.stringify({ operation: 'upload', objects: [{ oid: sha256(Buffer.from('x')), size: 1 }] }));
  assert.is(batch.status, 403);
  assert.match(JSON.parse(batch.body).message, /--allow-push/);
  const put = await raw(origin, `/model.git/info/lfs/objects/${sha256(Buffer.from('x'))}`, 'PUT', {}, 'x');
  assert.is(put.status, 403);
  assert.not.ok(existsSync(join(srv, '.git', 'lfs', 'objects')), 'nothing was stored');
});

t('CORS, preflight, oid validation, the page from build/web, and the info document', async () => {
  const root = tempDir('theta-serve-http-');
  dirs.push(root);
  const srv = join(root, 'm.git');
  await git(root, 'init', '-q', '--bare', srv);
  const web = join(root, 'web');
  mkdirSync(web);
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>theta</title>');
  writeFileSync(join(root, 'secret.txt'), 'do not serve');
  server = await startServer({ repo: srv, allowPush: true, webDir: web });
  const u = server.url;

  const pre = await raw(u, '/m.git/info/lfs/objects/batch', 'OPTIONS', { Origin: 'http://page.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,authorization' });
  assert.is(pre.status, 204);
  assert.is(pre.headers['access-control-allow-origin'], '*');
  assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
  assert.match(String(pre.headers['access-control-allow-headers']), /authorization/i);
  const refs = await raw(u, '/m.git/info/refs?service=git-upload-pack');
  assert.is(refs.status, 200);
  assert.is(refs.headers['access-control-allow-origin'], '*', 'git answers carry CORS too');
  assert.match(String(refs.headers['content-type']), /git-upload-pack-advertisement/);

  const page = await raw(u, '/');
  assert.is(page.status, 200);
  assert.match(page.body, /<title>theta<\/title>/);
  assert.is((await raw(u, '/../secret.txt')).status, 404);
  assert.is((await raw(u, '/%2e%2e/secret.txt')).status, 404);
  const info = JSON.parse((await raw(u, '/.theta/serve.json')).body);
  assert.equal(info, { name: 'm', repo: '/m.git', lfs: '/m.git/info/lfs', allowPush: true });

  for (const bad of ['..%2F..%2Fconfig', 'ABC', 'a'.repeat(63), 'A'.repeat(64), '..']) {
    const r = await raw(u, `/m.git/info/lfs/objects/${bad}`, 'PUT', {}, 'x');
    assert.ok(r.status === 422 || r.status === 404, `${bad}: ${r.status}`);
  }
  const b = await raw(u, '/m.git/info/lfs/objects/batch', 'POST', {}, JSON.stringify({ operation: 'download', objects: [{ oid: '../../config', size: 1 }] }));
  assert.is(JSON.parse(b.body).objects[0].error.code, 422);
  // an upload whose bytes are not its id is refused and leaves nothing behind
  const oid = sha256(Buffer.from('right'));
  const wrong = await raw(u, `/m.git/info/lfs/objects/${oid}`, 'PUT', { 'Content-Length': '5' }, 'wrong');
  assert.is(wrong.status, 422);
  assert.equal(objectFiles(join(srv, 'lfs', 'objects')).size, 0);
  assert.equal(readdirSync(join(srv, 'lfs', 'tmp')), [], 'no temp file left');
  const right = await raw(u, `/m.git/info/lfs/objects/${oid}`, 'PUT', {}, 'right');
  assert.is(right.status, 200);
  const verify = await raw(u, '/m.git/info/lfs/verify', 'POST', {}, JSON.stringify({ oid, size: 5 }));
  assert.is(verify.status, 200);
  assert.is((await raw(u, '/m.git/info/lfs/verify', 'POST', {}, JSON.stringify({ oid, size: 6 }))).status, 422);
});

t.run();
