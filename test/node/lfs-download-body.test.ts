// The Node LFS edge sends downloads (GETs without a body) through undici's request() and hands the
// client its Node stream (BODY_CHUNKS) instead of fetch's web stream. Against a real HTTP server:
// the bytes come through either way of reading, a gzip answer the client did not ask for is
// decoded, a redirect comes back unfollowed (the client follows it), an answer nobody reads does
// not crash the process, and LfsClient downloads a body into a store through the chunks.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { nodeHttp } from '../../src/node/lfs/http-node.ts';
import { bodyChunks } from '../../src/lfs/http.ts';
import { LfsClient } from '../../src/lfs/client.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { sha256Hex } from '../../src/core/sha256.ts';

const t = suite('lfs downloads through undici request (node)');
const DATA = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 9)) & 255);

let server: Server;
let base = '';
let cwd = '';
const seen: Record<string, string | undefined>[] = [];

t.before(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'theta-dl-body-'));
  execFileSync('git', ['init', '-q', cwd]);
  const oid = await sha256Hex(DATA);
  server = createServer((req, res) => {
    seen.push({ url: req.url, 'accept-encoding': req.headers['accept-encoding'] as string | undefined });
    if (req.url === '/plain') { res.writeHead(200, { 'content-length': DATA.length }); res.end(DATA); return; }
    if (req.url === '/gzip') { const z = gzipSync(DATA); res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': z.length }); res.end(z); return; }
    if (req.url === '/moved') { res.writeHead(302, { location: '/plain' }); res.end('moved'); return; }
    if (req.url === '/objects/batch') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/vnd.git-lfs+json' });
        res.end(JSON.stringify({ transfer: 'basic', objects: [{ oid, size: DATA.length, actions: { download: { href: `${base}/moved` } } }] }));
      });
      return;
    }
    res.writeHead(404); res.end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

t.after(async () => {
  await new Promise((r) => server.close(r));
  rmSync(cwd, { recursive: true, force: true });
});

async function all(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

t('the body as Node chunks or as a web stream; gzip decoded; no content coding asked for', async () => {
  const http = await nodeHttp(cwd, `${base}/`);
  try {
    const r1 = await http.fetch(`${base}/plain`);
    assert.is(r1.status, 200);
    assert.ok(bodyChunks(r1), 'a download carries its Node stream');
    assert.equal(await all(bodyChunks(r1)!), DATA);
    const r2 = await http.fetch(`${base}/plain`);
    assert.equal(new Uint8Array(await r2.arrayBuffer()), DATA, 'the web stream reads the same bytes');
    const r3 = await http.fetch(`${base}/gzip`);
    assert.equal(await all(bodyChunks(r3)!), DATA, 'a gzip answer is decoded');
    assert.is(seen.at(-1)!['accept-encoding'], undefined);
    const r4 = await http.fetch(`${base}/moved`, { redirect: 'manual' });
    assert.is(r4.status, 302, 'redirects come back for the client to follow');
    assert.is(r4.headers.get('location'), '/plain');
    // a POST still goes through fetch (no chunks attached)
    const r5 = await http.fetch(`${base}/objects/batch`, { method: 'POST', body: '{}' });
    assert.is(bodyChunks(r5), null);
    await r5.text();
    // an answer nobody reads, then aborted: no unhandled error
    const ac = new AbortController();
    await http.fetch(`${base}/plain`, { signal: ac.signal });
    ac.abort();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    await http.close();
  }
});

t('LfsClient downloads through the chunks, following the redirect, into a store (SHA-256 checked)', async () => {
  const http = await nodeHttp(cwd, `${base}/`);
  try {
    const store = createMemoryStore();
    const client = new LfsClient({ url: base, fetch: http.fetch });
    const oid = await sha256Hex(DATA);
    const r = await client.download([{ oid, size: DATA.length }], store);
    assert.is(r.transferred.length, 1);
    assert.equal(await store.get(oid), DATA);
  } finally {
    await http.close();
  }
});

t.run();
