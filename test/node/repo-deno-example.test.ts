// examples/deno/diff.ts end to end: a repository written with the real git and `git theta add` is
// served over smart HTTP (git http-backend) plus a minimal LFS batch API by a small server in
// this test; the Deno example clones it into memory and must print exactly what
// `git theta diff <a> <b> --json` prints, downloading only objects of tensors that changed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { parseMetadata, referencedObjects } from '../../src/theta/metadata.ts';
import { cleanup, ENV, fixturesDir, git, repoRoot, run, thetaOk, thetaRepo } from './helpers.ts';

const test = suite('examples/deno/diff.ts');
const HISTORY = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v4-sparse.safetensors'];
const DENO = join(repoRoot, 'node_modules/.bin/deno');

interface Served {
  url: string;
  server: Server;
  /** LFS objects downloaded, in order. */
  downloads: string[];
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/** git smart HTTP through `git http-backend` (CGI), an LFS batch endpoint, and object downloads. */
async function serve(repo: string): Promise<Served> {
  const root = dirname(repo);
  const name = basename(repo);
  const downloads: string[] = [];
  let base = '';
  const objectPath = (oid: string) => join(repo, '.git/lfs/objects', oid.slice(0, 2), oid.slice(2, 4), oid);

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url!, 'http://x');
    const body = await readBody(req);
    if (url.pathname === `/${name}/.git/info/lfs/objects/batch` && req.method === 'POST') {
      const batch = JSON.parse(body.toString());
      const objects = batch.objects.map((o: { oid: string; size: number }) =>
        /^[0-9a-f]{64}$/.test(o.oid) && existsSync(objectPath(o.oid))
          ? { oid: o.oid, size: o.size, actions: { download: { href: `${base}/lfs-objects/${o.oid}` } } }
          : { oid: o.oid, size: o.size, error: { code: 404, message: 'not found' } });
      res.writeHead(200, { 'content-type': 'application/vnd.git-lfs+json' });
      res.end(JSON.stringify({ transfer: 'basic', objects }));
      return;
    }
    const m = /^\/lfs-objects\/([0-9a-f]{64})$/.exec(url.pathname);
    if (m) {
      downloads.push(m[1]);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(readFileSync(objectPath(m[1])));
      return;
    }
    const child = spawn('git', ['http-backend'], {
      env: {
        ...ENV, GIT_PROJECT_ROOT: root, GIT_HTTP_EXPORT_ALL: '1', PATH_INFO: url.pathname, QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method!, CONTENT_TYPE: req.headers['content-type'] ?? '', CONTENT_LENGTH: String(body.length), REMOTE_ADDR: '127.0.0.1',
      },
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stdin.end(body);
    await new Promise((r) => child.on('close', r));
    const all = Buffer.concat(out);
    const split = all.indexOf('\r\n\r\n');
    const head = all.subarray(0, split).toString().split('\r\n');
    const headers: Record<string, string> = {};
    let status = 200;
    for (const line of head) {
      const [k, ...v] = line.split(':');
      if (k.toLowerCase() === 'status') status = parseInt(v.join(':'), 10);
      else headers[k] = v.join(':').trim();
    }
    res.writeHead(status, headers);
    res.end(all.subarray(split + 4));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => { res.writeHead(500); res.end(String(e)); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  base = `http://127.0.0.1:${port}`;
  return { url: `${base}/${name}/.git`, server, downloads };
}

const state: { dir?: string; served?: Served } = {};

test('prints the same JSON as git theta diff --json, downloading only changed tensors', async () => {
  const dir = (state.dir = await thetaRepo());
  await git(dir, 'add', '.gitattributes');
  for (const f of HISTORY) {
    copyFileSync(join(fixturesDir, f), join(dir, 'model.safetensors'));
    await thetaOk(dir, 'add', 'model.safetensors');
    await git(dir, 'commit', '-q', '-m', f);
  }
  const served = (state.served = await serve(dir));

  const r = await run(DENO, ['run', '--allow-net', '--allow-env=IGNORE_TEST_WIN32', 'examples/deno/diff.ts', served.url, 'HEAD~1', 'HEAD'], repoRoot);
  assert.is(r.code, 0, r.stderr);
  const cli = await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json');
  assert.is(r.stdout, cli, 'same bytes as the CLI');
  const parsed = JSON.parse(r.stdout);
  assert.ok(parsed.files[0].summary.modified > 0 && parsed.files[0].summary.unchanged > 0);

  // exactly the objects of the changed tensors' recipes, at both revisions; no skeleton, nothing unchanged
  const before = parseMetadata(await git(dir, 'cat-file', 'blob', 'HEAD~1:model.safetensors'));
  const after = parseMetadata(await git(dir, 'cat-file', 'blob', 'HEAD:model.safetensors'));
  const needed = new Set<string>();
  const unchanged = new Set<string>([before.skeleton.oid, after.skeleton.oid]);
  for (const [name, e] of Object.entries(after.tensors)) {
    const refs = [...referencedObjects({ ...after, tensors: { [name]: e } }), ...referencedObjects({ ...before, tensors: { [name]: before.tensors[name] } })]
      .filter((x) => x.oid !== after.skeleton.oid && x.oid !== before.skeleton.oid);
    for (const x of refs) (e.hash === before.tensors[name].hash ? unchanged : needed).add(x.oid);
  }
  for (const oid of needed) unchanged.delete(oid);
  assert.equal(new Set(served.downloads), needed);
  assert.is(served.downloads.length, needed.size, 'each object downloaded once');
  assert.ok(served.downloads.every((o) => !unchanged.has(o)));
});

test('--approx downloads nothing and matches git theta diff --approx --json', async () => {
  const { dir, served } = state as Required<typeof state>;
  served.downloads.length = 0;
  const r = await run(DENO, ['run', '--allow-net', '--allow-env=IGNORE_TEST_WIN32', 'examples/deno/diff.ts', served.url, 'HEAD~2', 'HEAD', '--approx'], repoRoot);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, await thetaOk(dir, 'diff', 'HEAD~2', 'HEAD', '--json', '--approx'));
  assert.equal(served.downloads, []);
});

test('a bad revision is one line on stderr and exit code 1', async () => {
  const { served } = state as Required<typeof state>;
  const r = await run(DENO, ['run', '--allow-net', '--allow-env=IGNORE_TEST_WIN32', 'examples/deno/diff.ts', served.url, 'no-such-branch', 'HEAD'], repoRoot);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^git-theta: revision 'no-such-branch' not found/);
  assert.is(r.stdout, '');
});

test.after(() => {
  state.served?.server.close();
  if (state.dir) cleanup(state.dir);
});

test.run();
