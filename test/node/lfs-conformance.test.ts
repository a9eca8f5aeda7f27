// LFS protocol conformance (issue 11) against git-lfs's own integration-test server, lfstest-gitserver:
// one test per row of the issue, with real git, git-theta installed globally (plain clones, the hook
// installed by the filter), pushes, clones, `git theta fetch` and `pull`. Asserts what git-lfs 3.3
// achieves: the server log lists `storage PUT <oid>` for every object the pushed commits need, clones
// are byte-identical, the credentials file is unchanged after a 403, errors name what failed.
// Behaviours are selected by repository name and by object content ("magic" strings), as in git-lfs's
// t/ tests; a dense U8 tensor's object is its raw bytes, so a tensor can carry a magic string.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseMetadata, referencedObjects } from '../../src/theta/metadata.ts';
import { cleanup, run, sha256, tempDir, theta, type Run } from './helpers.ts';
import { cleanupLfsTestServerBuild, locateLfsTestServer, startLfsTestServer, type LfsTestServer } from './lfs-test-server.ts';
import { registerLfsServerRows, storageRequests } from '../shared/lfs-server-rows.ts';
import { nodeHttp } from '../../src/node/lfs/http-node.ts';

const where = locateLfsTestServer();
const TITLE = 'lfs conformance with lfstest-gitserver';

if (!where.dir) {
  if (process.env.CI) {
    const t = suite(TITLE);
    t('lfs-test-server is present (CI builds git-lfs\'s test server from shared/lfs-test-server)', () => {
      throw new Error(`${where.reason}; CI must provide it (copy shared/ beside the clone)`);
    });
    t.run();
  } else {
    console.log(`${TITLE}: skipped (${where.reason})`);
  }
} else {
  register(where.dir);
}

/** A safetensors file of U8 tensors (each tensor's object is then exactly its bytes). */
function safetensors(tensors: Record<string, Uint8Array>): Buffer {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, b] of Object.entries(tensors)) {
    header[name] = { dtype: 'U8', shape: [b.length], data_offsets: [off, off + b.length] };
    off += b.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), ...Object.values(tensors)]);
}

function noise(n: number, seed: string): Uint8Array {
  const out = new Uint8Array(n);
  let x = [...seed].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7) || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

function model(row: string, magic?: string): Buffer {
  return safetensors({ ...(magic ? { magic: new TextEncoder().encode(magic) } : {}), 'layer.weight': noise(4096, row) });
}

function register(dir: string): void {
  const t = suite(TITLE);
  const S: { server: LfsTestServer; root: string; home: string; bare: string; proxy?: Server; connects: string[]; fetch: typeof fetch } = { connects: [] } as never;
  // GIT_SSL_CAINFO / GIT_SSL_NO_VERIFY in the environment would override http.sslCAInfo / sslVerify (for git and for us)
  const envFor = (home: string): NodeJS.ProcessEnv => ({ HOME: home, XDG_CONFIG_HOME: join(home, '.config'), GIT_SSL_CAINFO: undefined, GIT_SSL_NO_VERIFY: undefined, GIT_SSL_CAPATH: undefined });
  const env = () => envFor(S.home);
  const creds = () => join(S.home, '.git-credentials');
  const hostOf = (u: string) => new URL(u).host;

  async function gitOk(cwd: string, args: string[], e = env()): Promise<Run> {
    const r = await run('git', args, cwd, { env: e });
    assert.is(r.code, 0, `git ${args.join(' ')}: ${r.stderr}`);
    return r;
  }

  /** A HOME with git-theta installed globally (no local install anywhere), and optionally credentials. */
  async function makeHome(withCredentials: boolean): Promise<string> {
    const home = tempDir('theta-lfs-home-');
    mkdirSync(join(home, '.config'), { recursive: true });
    const r = await theta(home, ['install', '--global'], { env: envFor(home) });
    assert.is(r.code, 0, r.stderr);
    await gitOk(home, ['config', '--global', 'init.defaultBranch', 'main'], envFor(home));
    if (withCredentials) {
      await gitOk(home, ['config', '--global', 'credential.helper', 'store'], envFor(home));
      writeFileSync(join(home, '.git-credentials'), `http://user:pass@${hostOf(S.server.url)}\nhttps://user:pass@${hostOf(S.server.sslUrl)}\n`);
    }
    return home;
  }

  /** Every object the committed metadata at `rev` names. */
  async function objectsAt(repo: string, rev = 'HEAD'): Promise<string[]> {
    const blob = await gitOk(repo, ['cat-file', 'blob', `${rev}:model.safetensors`]);
    return referencedObjects(parseMetadata(blob.out)).map((r) => r.oid);
  }

  /** Plain clone of a new bare repo `name`, commit a model, push `branch`. */
  async function pushRow(name: string, magic?: string, o: { e?: NodeJS.ProcessEnv; url?: string; branch?: string; cloneArgs?: string[]; configure?: (work: string) => Promise<unknown> } = {}) {
    const e = o.e ?? env();
    const httpUrl = await S.server.mkrepo(name);
    const url = o.url ?? httpUrl;
    const work = join(S.root, name);
    await gitOk(S.root, [...(o.cloneArgs ?? []), 'clone', '-q', url, work], e);
    // the server's test behaviours are keyed on objects whose bytes are a magic string: the small
    // 'magic' tensor must be an object in the store, not carried inline in the metadata
    await gitOk(work, ['config', 'theta.inlineMax', '0'], e);
    await o.configure?.(work);
    const data = model(name, magic);
    writeFileSync(join(work, 'model.safetensors'), data);
    writeFileSync(join(work, '.gitattributes'), '*.safetensors filter=theta diff=theta merge=theta -text\n');
    await gitOk(work, ['add', '.gitattributes', 'model.safetensors'], e);
    await gitOk(work, ['commit', '-q', '-m', name], e);
    const branch = o.branch ?? 'main';
    if (branch !== 'main') await gitOk(work, ['checkout', '-q', '-b', branch], e);
    const push = await run('git', ['push', 'origin', branch], work, { env: e });
    return { url, work, data, push, oids: await objectsAt(work) };
  }

  function assertAllStored(name: string, oids: string[]): void {
    const log = S.server.log();
    for (const oid of oids) assert.ok(storageRequests(log, 'PUT', oid, name) >= 1, `server log has storage PUT ${oid} repo: ${name}`);
  }

  async function assertCloneIdentical(url: string, into: string, data: Buffer, e = env(), args: string[] = []): Promise<string> {
    const dest = join(S.root, into);
    await gitOk(S.root, [...args, 'clone', '-q', url, dest], e);
    assert.ok(readFileSync(join(dest, 'model.safetensors')).equals(data), `${into}: byte-identical`);
    return dest;
  }

  t.before(async () => {
    S.server = await startLfsTestServer(dir);
    S.root = tempDir('theta-lfs-conf-');
    S.home = await makeHome(true);
    S.fetch = (await nodeHttp(S.root, S.server.url)).fetch;
  });

  t.after(async () => {
    S.proxy?.closeAllConnections();
    S.proxy?.close();
    await S.server?.stop();
    if (S.root) cleanup(S.root);
    if (S.home) cleanup(S.home);
    cleanupLfsTestServerBuild();
  });

  t('row 11: global install, plain clone: the filter installs the pre-push hook; the push uploads every object', async () => {
    const name = 'row11-global';
    const url = await S.server.mkrepo(name);
    const work = join(S.root, name);
    await gitOk(S.root, ['clone', '-q', url, work]);
    const hook = join(work, '.git', 'hooks', 'pre-push');
    assert.not.ok(existsSync(hook), 'a plain clone has no pre-push hook');
    // a hook the user already had is kept and still runs (chained)
    const user = join(work, '.git', 'hooks', 'user-hook-ran');
    const data = model(name);
    writeFileSync(join(work, 'model.safetensors'), data);
    writeFileSync(join(work, '.gitattributes'), '*.safetensors filter=theta diff=theta merge=theta -text\n');
    await gitOk(work, ['add', '.gitattributes', 'model.safetensors']);
    assert.ok(existsSync(hook) && readFileSync(hook, 'utf8').includes('git-theta pre-push hook'), 'the filter installed the hook');
    await gitOk(work, ['commit', '-q', '-m', name]);
    const push = await run('git', ['push', 'origin', 'main'], work, { env: env() });
    assert.is(push.code, 0, push.stderr);
    assertAllStored(name, await objectsAt(work));
    await assertCloneIdentical(url, `${name}-clone`, data);

    const name2 = 'row11-chained';
    const url2 = await S.server.mkrepo(name2);
    const work2 = join(S.root, name2);
    await gitOk(S.root, ['clone', '-q', url2, work2]);
    writeFileSync(join(work2, '.git', 'hooks', 'pre-push'), `#!/bin/sh\necho "$1" > "${user}"\n`, { mode: 0o755 });
    const data2 = model(name2);
    writeFileSync(join(work2, 'model.safetensors'), data2);
    writeFileSync(join(work2, '.gitattributes'), '*.safetensors filter=theta diff=theta merge=theta -text\n');
    await gitOk(work2, ['add', '.gitattributes', 'model.safetensors']);
    await gitOk(work2, ['commit', '-q', '-m', name2]);
    const push2 = await run('git', ['push', 'origin', 'main'], work2, { env: env() });
    assert.is(push2.code, 0, push2.stderr);
    assert.is(readFileSync(user, 'utf8').trim(), 'origin', 'the user\'s hook ran, chained');
    assertAllStored(name2, await objectsAt(work2));
  });

  t('row 6: legacy `_links` answers: the object is really uploaded, the clone is byte-identical', async () => {
    const r = await pushRow('row6-links', 'send-deprecated-links');
    assert.is(r.push.code, 0, r.push.stderr);
    assertAllStored('row6-links', r.oids);
    await assertCloneIdentical(r.url, 'row6-clone', r.data);
  });

  t('push safety: an object the server refuses in its batch answer fails the push, naming object and tensor', async () => {
    const before = readFileSync(creds());
    const r = await pushRow('row4-object-403', 'status-batch-403');
    assert.is.not(r.push.code, 0, 'the push is refused');
    assert.match(r.push.stderr, /tensor 'magic'/);
    assert.match(r.push.stderr, /welp/);
    assert.match(r.push.stderr, new RegExp(sha256(new TextEncoder().encode('status-batch-403')).slice(0, 12)));
    assert.ok(readFileSync(creds()).equals(before), 'credentials unchanged');
    const refs = await gitOk(S.root, ['ls-remote', r.url]);
    assert.is(refs.stdout.trim(), '', 'git sent nothing');
  });

  t('row 3: a server that requires the batch `ref`: push and clone send it', async () => {
    const name = 'row3-main-branch-required';
    const r = await pushRow(name);
    assert.is(r.push.code, 0, r.push.stderr);
    assertAllStored(name, r.oids);
    const c = await assertCloneIdentical(r.url, 'row3-clone', r.data);
    // and `git theta pull` of a new version (downloads carry the ref too)
    const next = model('row3-v2');
    writeFileSync(join(r.work, 'model.safetensors'), next);
    await gitOk(r.work, ['commit', '-q', '-am', 'v2']);
    const p = await run('git', ['push', 'origin', 'main'], r.work, { env: env() });
    assert.is(p.code, 0, p.stderr);
    const pull = await theta(c, ['pull', '-q'], { env: env() });
    assert.is(pull.code, 0, pull.stderr);
    assert.ok(readFileSync(join(c, 'model.safetensors')).equals(next), 'pulled version byte-identical');
  });

  t('row 4: a 403 on the batch does not erase stored credentials; the message carries status and server text', async () => {
    const before = readFileSync(creds());
    const r = await pushRow('row4-main-branch-required', undefined, { branch: 'dev' });
    assert.is.not(r.push.code, 0, 'the push is refused');
    assert.match(r.push.stderr, /HTTP 403/);
    assert.match(r.push.stderr, /Expected ref \\?"refs\/heads\/main\\?", got \\?"refs\/heads\/dev\\?"/);
    assert.ok(readFileSync(creds()).equals(before), 'credentials file unchanged');
  });

  t('row 5: `authenticated: true`: the upload carries no Authorization (the server answers 400 if it does)', async () => {
    const r = await pushRow('row5-authenticated', 'object-authenticated');
    assert.is(r.push.code, 0, r.push.stderr);
    // this server accepts such a PUT without storing it, so only the log can show it was sent
    assertAllStored('row5-authenticated', r.oids);
  });

  t('row 1: upload hrefs that redirect (307) get the body again; the clone is byte-identical', async () => {
    const r = await pushRow('row1-redirect', 'redirect-storage-upload');
    assert.is(r.push.code, 0, r.push.stderr);
    assertAllStored('row1-redirect', r.oids);
    await assertCloneIdentical(r.url, 'row1-clone', r.data);
  });

  t('row 2: an upload action with `Transfer-Encoding: chunked` is sent chunked', async () => {
    const name = 'batch-storage-upload-encoding-chunked';
    const r = await pushRow(name);
    assert.is(r.push.code, 0, r.push.stderr);
    assertAllStored(name, r.oids);
    await assertCloneIdentical(r.url, 'row2-clone', r.data);
  });

  t('row 12: an expired action is asked for again; a server whose links are always expired fails the push by name', async () => {
    const r = await pushRow('row12-expiring', 'return-expired-action');
    assert.is(r.push.code, 0, r.push.stderr);
    assertAllStored('row12-expiring', r.oids);
    await assertCloneIdentical(r.url, 'row12-clone', r.data);
    const x = await pushRow('expired-both');
    assert.is.not(x.push.code, 0, 'the push is refused');
    assert.match(x.push.stderr, /expired/);
    assert.match(x.push.stderr, /model\.safetensors tensor 'layer\.weight'/);
    for (const oid of x.oids) assert.is(storageRequests(S.server.log(), 'PUT', oid, 'expired-both'), 0, 'nothing sent to an expired link');
  });

  t('row 7: a download cut mid-body resumes with Range (`git theta fetch`, then checkout)', async () => {
    const name = 'row7-range';
    const r = await pushRow(name, 'storage-download-retry-range');
    assert.is(r.push.code, 0, r.push.stderr);
    const dest = join(S.root, 'row7-clone');
    await gitOk(S.root, ['clone', '-q', '--no-checkout', r.url, dest]);
    const f = await theta(dest, ['fetch', 'origin', 'main'], { env: env() });
    assert.is(f.code, 0, f.stderr);
    await gitOk(dest, ['checkout', '-q', 'main']);
    assert.ok(readFileSync(join(dest, 'model.safetensors')).equals(r.data), 'byte-identical');
    const oid = sha256(new TextEncoder().encode('storage-download-retry-range'));
    // without Range this server never sends more than half the body, so success means the resume worked
    assert.ok(storageRequests(S.server.log(), 'GET', oid, name) >= 2, 'the cut GET, then Range GETs');
  });

  t('row 8: a 429 without Retry-After is waited out (the server refuses for ~10 s)', async () => {
    const name = 'row8-ratelimit';
    const r = await pushRow(name, 'storage-upload-retry-later-no-header');
    assert.is(r.push.code, 0, r.push.stderr);
    assertAllStored(name, r.oids);
    const oid = sha256(new TextEncoder().encode('storage-upload-retry-later-no-header'));
    assert.ok(storageRequests(S.server.log(), 'PUT', oid, name) >= 2, 'refused first, then accepted');
    await assertCloneIdentical(r.url, 'row8-clone', r.data);
  });

  t('row 9: HTTPS with http.sslCAInfo, http.sslVerify=false, and http.<url>.proxy', async () => {
    const name = 'row9-tls';
    const sslRepo = `${S.server.sslUrl}/${name}.git`;
    const ca = ['-c', `http.sslCAInfo=${S.server.certPath}`];
    // the clone's own config carries the CA for its later commands (git's -c applies to the clone only)
    const r = await pushRow(name, undefined, { url: sslRepo, cloneArgs: ca, configure: (w) => gitOk(w, ['config', 'http.sslCAInfo', S.server.certPath]) });
    assert.is(r.push.code, 0, r.push.stderr);
    assertAllStored(name, r.oids);
    await assertCloneIdentical(sslRepo, 'row9-clone-ca', r.data, env(), ca);
    await assertCloneIdentical(sslRepo, 'row9-clone-noverify', r.data, env(), ['-c', 'http.sslVerify=false']);
    // a CONNECT proxy for the LFS API only (http.<url>.proxy matches the info/lfs path, not git's own URLs)
    S.proxy = createServer((_req, res) => { res.writeHead(405); res.end(); });
    S.proxy.on('connect', (req, socket, head) => {
      S.connects.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const up = connect(Number(port), host!, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        up.write(head);
        up.pipe(socket);
        socket.pipe(up);
      });
      up.on('error', () => socket.destroy());
      socket.on('error', () => up.destroy());
    });
    await new Promise<void>((res) => S.proxy!.listen(0, '127.0.0.1', res));
    const proxyUrl = `http://127.0.0.1:${(S.proxy.address() as AddressInfo).port}`;
    await assertCloneIdentical(sslRepo, 'row9-clone-proxy', r.data, env(), [...ca, '-c', `http.${sslRepo}/info/lfs.proxy=${proxyUrl}`]);
    assert.ok(S.connects.includes(hostOf(S.server.sslUrl)), `the LFS request went through the proxy (${S.connects.join(', ')})`);
  });

  t('row 10: credentials only in http.<url>.extraHeader (as CI checkouts pass tokens)', async () => {
    const home = await makeHome(false);
    try {
      const e = envFor(home);
      const header = `Authorization: Basic ${Buffer.from('user:pass').toString('base64')}`;
      const name = 'row10-extraheader';
      const r = await pushRow(name, undefined, { e, configure: (w) => gitOk(w, ['config', `http.${S.server.url}/.extraheader`, header], e) });
      assert.is(r.push.code, 0, r.push.stderr);
      assertAllStored(name, r.oids);
      await assertCloneIdentical(r.url, 'row10-clone', r.data, e, ['-c', `http.extraHeader=${header}`]);
    } finally {
      cleanup(home);
    }
  });

  t('row 13: a TLS failure is reported once, with its code, and the URL without credentials', async () => {
    const name = 'row9-tls'; // pushed by row 9
    const dest = join(S.root, 'row13');
    await gitOk(S.root, ['-c', `http.sslCAInfo=${S.server.certPath}`, 'clone', '-q', '--no-checkout', `${S.server.sslUrl}/${name}.git`, dest]);
    const lfsUrl = `${S.server.sslUrl.replace('https://', 'https://user:secret-token@')}/${name}.git/info/lfs`;
    await gitOk(dest, ['config', 'lfs.url', lfsUrl]);
    const f = await theta(dest, ['fetch'], { env: env() });
    assert.is.not(f.code, 0);
    assert.match(f.stderr, /TLS error/);
    assert.match(f.stderr, /[A-Z_]*(CERT|SIGNED|UNABLE_TO)[A-Z_]*/, 'the TLS error code');
    assert.match(f.stderr, new RegExp(`https://${hostOf(S.server.sslUrl).replace('.', '\\.')}/`));
    assert.not.match(f.stderr, /secret-token/);
    assert.not.match(f.stderr, /attempts/, 'not retried');
  });

  // the library rows with the Node edge's fetch (as git-theta's commands use it)
  registerLfsServerRows(t, () => ({ url: S.server.url, log: async () => S.server.log(), prefix: 'node', fetch: S.fetch }));

  t.run();
}
