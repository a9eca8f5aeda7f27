// The LFS batch client against a mocked fetch (an in-memory LFS server with injectable faults),
// run in Node, Deno and Chromium: batching, upload/verify, retries, Retry-After, corrupt
// downloads, per-object errors, auth, progress, and the remote store on top of it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LfsClient, LFS_MEDIA_TYPE, parseRetryAfter, type LfsObject, type LfsProgress } from '../../src/lfs/client.ts';
import { createRemoteStore } from '../../src/lfs/remote-store.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { sha256Hex } from '../../src/core/sha256.ts';

const test = suite('lfs client (mocked fetch)');
const BASE = 'https://lfs.example.test/org/model.git/info/lfs';

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

async function obj(n: number, seed: number): Promise<{ ref: LfsObject; data: Uint8Array }> {
  const data = bytes(n, seed);
  return { ref: { oid: await sha256Hex(data), size: n, name: `tensor-${seed}` }, data };
}

interface Call { method: string; url: string; body?: unknown; headers: Record<string, string> }

/** A small in-memory LFS server behind a fetch function. `faults` is consulted per request. */
function mockServer(objects: Map<string, Uint8Array>, faults: {
  before?: (c: Call, n: number) => Response | null | 'throw';
  corrupt?: Set<string>;
  errors?: Map<string, { code: number; message: string }>;
} = {}) {
  const calls: Call[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const method = (init.method ?? 'GET').toUpperCase();
    let body: unknown = init.body;
    if (typeof body === 'string') body = JSON.parse(body);
    const call: Call = { method, url, body, headers };
    calls.push(call);
    const f = faults.before?.(call, calls.length);
    if (f === 'throw') throw new TypeError('fetch failed (mock network error)');
    if (f) return f;
    const path = url.slice(BASE.length);
    if (path === '/objects/batch' && method === 'POST') {
      assert.is(headers['content-type'], LFS_MEDIA_TYPE);
      assert.is(headers['accept'], LFS_MEDIA_TYPE);
      const req = body as { operation: string; objects: { oid: string; size: number }[]; hash_algo: string; transfers: string[] };
      assert.is(req.hash_algo, 'sha256');
      assert.equal(req.transfers, ['basic']);
      const out = req.objects.map(({ oid, size }) => {
        const err = faults.errors?.get(oid);
        if (err) return { oid, size, error: err };
        if (req.operation === 'download') {
          const have = objects.get(oid);
          if (!have) return { oid, size, error: { code: 404, message: 'Object does not exist' } };
          return { oid, size: have.length, actions: { download: { href: `${BASE}/objects/${oid}`, header: { 'X-Obj': oid.slice(0, 8) } } } };
        }
        if (objects.has(oid)) return { oid, size };
        return { oid, size, actions: { upload: { href: `${BASE}/objects/${oid}` }, verify: { href: `${BASE}/verify` } } };
      });
      return new Response(JSON.stringify({ transfer: 'basic', objects: out, hash_algo: 'sha256' }), { status: 200, headers: { 'content-type': LFS_MEDIA_TYPE } });
    }
    const m = /^\/objects\/([0-9a-f]{64})$/.exec(path);
    if (m && method === 'GET') {
      const data = objects.get(m[1]!);
      if (!data) return new Response('{"message":"not found"}', { status: 404 });
      const out = data.slice();
      if (faults.corrupt?.has(m[1]!)) out[0] ^= 1;
      return new Response(out, { status: 200 });
    }
    if (m && method === 'PUT') {
      const data = new Uint8Array(init.body as Uint8Array);
      if ((await sha256Hex(data)) !== m[1]) return new Response('{"message":"hash mismatch"}', { status: 422 });
      objects.set(m[1]!, data);
      return new Response(null, { status: 200 });
    }
    if (path === '/verify' && method === 'POST') {
      const { oid, size } = body as { oid: string; size: number };
      return new Response(null, { status: objects.get(oid)?.length === size ? 200 : 404 });
    }
    return new Response('no route', { status: 404 });
  }) as typeof fetch;
  return { fetchFn, calls };
}

function recorder() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => { waits.push(ms); } };
}

async function errorOf(p: Promise<unknown>): Promise<any> {
  try { await p; } catch (e) { return e; }
  assert.unreachable('expected an error');
}

test('download: objects come in batches of batchSize, verified, and only the missing ones are asked for', async () => {
  const server = new Map<string, Uint8Array>();
  const objs = await Promise.all(Array.from({ length: 7 }, (_, i) => obj(100 + i * 37, i + 1)));
  for (const o of objs) server.set(o.ref.oid, o.data);
  const { fetchFn, calls } = mockServer(server);
  const store = createMemoryStore();
  await store.put(objs[0]!.data); // one is already local
  const progress: LfsProgress[] = [];
  const client = new LfsClient({ url: BASE + '/', fetch: fetchFn, batchSize: 3, onProgress: (p) => progress.push(p) });
  const r = await client.download(objs.map((o) => o.ref), store);
  assert.is(r.transferred.length, 6);
  assert.equal(r.skipped.map((x) => x.oid), [objs[0]!.ref.oid]);
  const batches = calls.filter((c) => c.url.endsWith('/objects/batch'));
  assert.equal(batches.map((b) => (b.body as any).objects.length), [3, 3], '6 missing objects in batches of 3');
  assert.ok(batches.every((b) => (b.body as any).operation === 'download'));
  assert.is(calls.filter((c) => c.method === 'GET').length, 6);
  assert.ok(calls.filter((c) => c.method === 'GET').every((c) => c.headers['x-obj'] === c.url.slice(-64, -56)), 'action headers sent');
  for (const o of objs) assert.equal(await store.get(o.ref.oid), o.data);
  const last = progress[progress.length - 1]!;
  assert.is(last.doneObjects, 6);
  assert.is(last.doneBytes, objs.slice(1).reduce((a, o) => a + o.ref.size, 0));
});

test('upload: sends only what the server lacks, then verifies', async () => {
  const server = new Map<string, Uint8Array>();
  const objs = await Promise.all(Array.from({ length: 4 }, (_, i) => obj(64 + i, 50 + i)));
  const local = createMemoryStore();
  for (const o of objs) await local.put(o.data);
  server.set(objs[1]!.ref.oid, objs[1]!.data);
  const { fetchFn, calls } = mockServer(server);
  const r = await new LfsClient({ url: BASE, fetch: fetchFn }).upload(objs.map((o) => o.ref), local);
  assert.is(r.transferred.length, 3);
  assert.equal(r.skipped.map((x) => x.oid), [objs[1]!.ref.oid]);
  const puts = calls.filter((c) => c.method === 'PUT').map((c) => c.url.slice(-64));
  assert.is(puts.length, 3);
  assert.not.ok(puts.includes(objs[1]!.ref.oid), 'the object the server has is not sent');
  assert.is(calls.filter((c) => c.url.endsWith('/verify')).length, 3);
  for (const o of objs) assert.equal(server.get(o.ref.oid), o.data);
  // a second upload sends nothing
  const again = await new LfsClient({ url: BASE, fetch: fetchFn }).upload(objs.map((o) => o.ref), local);
  assert.is(again.transferred.length, 0);
  assert.is(calls.filter((c) => c.method === 'PUT').length, 3);
});

test('retries: a 500 then success, with exponential backoff', async () => {
  const o = await obj(300, 7);
  const server = new Map([[o.ref.oid, o.data]]);
  let failed = 0;
  const { fetchFn, calls } = mockServer(server, {
    before: (c) => (c.url.endsWith('/batch') && failed++ < 2 ? new Response('{"message":"boom"}', { status: 500 }) : null),
  });
  const rec = recorder();
  const store = createMemoryStore();
  await new LfsClient({ url: BASE, fetch: fetchFn, sleep: rec.sleep, backoffMs: 100 }).download([o.ref], store);
  assert.is(calls.filter((c) => c.url.endsWith('/batch')).length, 3);
  assert.equal(rec.waits, [100, 200]);
  assert.ok(await store.has(o.ref.oid));
});

test('retries: 429 honours Retry-After (seconds and HTTP date)', async () => {
  assert.is(parseRetryAfter('2'), 2000);
  assert.is(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 3)).toUTCString(), Date.UTC(2030, 0, 1)), 3000);
  assert.is(parseRetryAfter(null), null);
  const o = await obj(50, 9);
  const server = new Map([[o.ref.oid, o.data]]);
  let n = 0;
  const { fetchFn } = mockServer(server, {
    before: (c) => (c.method === 'GET' && n++ === 0 ? new Response('slow down', { status: 429, headers: { 'Retry-After': '3' } }) : null),
  });
  const rec = recorder();
  const store = createMemoryStore();
  await new LfsClient({ url: BASE, fetch: fetchFn, sleep: rec.sleep }).download([o.ref], store);
  assert.equal(rec.waits, [3000]);
  assert.ok(await store.has(o.ref.oid));
});

test('retries: network errors are retried, and the count is bounded', async () => {
  const o = await obj(50, 10);
  const server = new Map([[o.ref.oid, o.data]]);
  const { fetchFn, calls } = mockServer(server, { before: () => 'throw' });
  const rec = recorder();
  const e = await errorOf(new LfsClient({ url: BASE, fetch: fetchFn, sleep: rec.sleep, retries: 3, backoffMs: 10 }).download([o.ref], createMemoryStore()));
  assert.is(e.code, 'E_LFS_REQUEST');
  assert.match(e.message, /network error after 4 attempts/);
  assert.is(calls.length, 4);
  assert.equal(rec.waits, [10, 20, 40]);
  // a 500 that never ends is given up on too, with the server's message
  const always500 = mockServer(server, { before: () => new Response('{"message":"database down"}', { status: 503 }) });
  const e2 = await errorOf(new LfsClient({ url: BASE, fetch: always500.fetchFn, sleep: rec.sleep, retries: 2 }).download([o.ref], createMemoryStore()));
  assert.is(e2.code, 'E_LFS_REQUEST');
  assert.match(e2.message, /HTTP 503.*database down/);
  assert.is(always500.calls.length, 3);
});

test('a corrupt download is rejected and nothing is stored', async () => {
  const good = await obj(200, 11);
  const bad = await obj(200, 12);
  const server = new Map([[good.ref.oid, good.data], [bad.ref.oid, bad.data]]);
  const { fetchFn, calls } = mockServer(server, { corrupt: new Set([bad.ref.oid]) });
  const store = createMemoryStore();
  const e = await errorOf(new LfsClient({ url: BASE, fetch: fetchFn, sleep: recorder().sleep }).download([good.ref, bad.ref], store));
  assert.is(e.code, 'E_LFS_TRANSFER');
  assert.is(e.failures.length, 1);
  assert.is(e.failures[0].oid, bad.ref.oid);
  assert.is(e.failures[0].code, 'E_LFS_CORRUPT');
  assert.match(e.message, /tensor-12/);
  assert.ok(await store.has(good.ref.oid), 'the good object is stored');
  assert.not.ok(await store.has(bad.ref.oid));
  assert.equal(store.fs.files(), [store.objectPath(good.ref.oid)], 'no corrupt bytes under any name, no temp file left');
  assert.is(calls.filter((c) => c.method === 'GET' && c.url.endsWith(bad.ref.oid)).length, 1, 'a complete wrong body is not retried');
});

test('a corrupt download is rejected by the id the store computes, also when the store ignores the expected id', async () => {
  const bad = await obj(300, 14);
  const { fetchFn } = mockServer(new Map([[bad.ref.oid, bad.data]]), { corrupt: new Set([bad.ref.oid]) });
  const inner = createMemoryStore();
  // a user's store wrapping ours, forwarding only the bytes (the ObjectStore API before `expect`)
  const plain = { ...inner, put: (data: Uint8Array | AsyncIterable<Uint8Array>) => inner.put(data) };
  const e = await errorOf(new LfsClient({ url: BASE, fetch: fetchFn, sleep: recorder().sleep }).download([bad.ref], plain));
  assert.is(e.failures[0].code, 'E_LFS_CORRUPT');
  assert.match(e.failures[0].message, /hash to [0-9a-f]{64}/);
  assert.not.ok(await inner.has(bad.ref.oid), 'nothing under the announced id');
});

test('a download longer than announced is cut off and not stored', async () => {
  const o = await obj(100, 13);
  const longer = new Uint8Array(150);
  longer.set(o.data);
  const { fetchFn } = mockServer(new Map([[o.ref.oid, longer]]));
  const store = createMemoryStore();
  const e = await errorOf(new LfsClient({ url: BASE, fetch: fetchFn }).download([o.ref], store));
  assert.is(e.failures[0].code, 'E_LFS_CORRUPT');
  assert.equal(store.fs.files(), []);
});

test('per-object errors are reported by oid and name; the other objects still arrive', async () => {
  const a = await obj(10, 21);
  const b = await obj(10, 22);
  const c = await obj(10, 23);
  const server = new Map([[a.ref.oid, a.data], [c.ref.oid, c.data]]);
  const { fetchFn } = mockServer(server, { errors: new Map([[c.ref.oid, { code: 410, message: 'Gone for good' }]]) });
  const store = createMemoryStore();
  const e = await errorOf(new LfsClient({ url: BASE, fetch: fetchFn }).download([a.ref, b.ref, c.ref], store));
  assert.is(e.code, 'E_LFS_TRANSFER');
  const byOid = new Map<string, any>(e.failures.map((f: any) => [f.oid, f]));
  assert.is(byOid.get(b.ref.oid).status, 404);
  assert.is(byOid.get(b.ref.oid).name, 'tensor-22');
  assert.is(byOid.get(c.ref.oid).status, 410);
  assert.match(e.message, /2 objects/);
  assert.match(e.message, /Gone for good/);
  assert.ok(await store.has(a.ref.oid));
});

test('401: asks auth once, retries with its headers and approves them; caller headers are sent', async () => {
  const o = await obj(10, 31);
  const server = new Map([[o.ref.oid, o.data]]);
  const { fetchFn, calls } = mockServer(server, {
    before: (c) => (c.url.endsWith('/batch') && c.headers['authorization'] !== 'Basic dTpw' ? new Response('{"message":"need auth"}', { status: 401 }) : null),
  });
  const seen: string[] = [];
  const client = new LfsClient({
    url: BASE, fetch: fetchFn, headers: { 'X-Trace': 't1' },
    auth: {
      onUnauthorized: async (url) => { seen.push(`ask ${url}`); return { Authorization: 'Basic dTpw' }; },
      approve: async () => { seen.push('approve'); },
      reject: async () => { seen.push('reject'); },
    },
  });
  await client.download([o.ref], createMemoryStore());
  assert.equal(seen, [`ask ${BASE}`, 'approve']);
  assert.ok(calls.every((c) => !c.url.endsWith('/batch') || c.headers['x-trace'] === 't1'));
  // refused credentials are rejected and reported as an auth error
  const refusing = mockServer(server, { before: (c) => (c.url.endsWith('/batch') ? new Response('{"message":"bad credentials"}', { status: 401 }) : null) });
  const seen2: string[] = [];
  const e = await errorOf(new LfsClient({
    url: BASE, fetch: refusing.fetchFn,
    auth: { onUnauthorized: async () => ({ Authorization: 'Basic eDp5' }), approve: async () => { seen2.push('approve'); }, reject: async () => { seen2.push('reject'); } },
  }).download([o.ref], createMemoryStore()));
  assert.is(e.code, 'E_LFS_AUTH');
  assert.match(e.message, /401.*bad credentials/);
  assert.equal(seen2, ['reject']);
});

test('remote store: local first, prefetch in one batch, lazy downloader, missing objects named', async () => {
  const objs = await Promise.all(Array.from({ length: 5 }, (_, i) => obj(40 + i, 60 + i)));
  const server = new Map(objs.map((o) => [o.ref.oid, o.data] as const));
  const { fetchFn, calls } = mockServer(server);
  const local = createMemoryStore();
  await local.put(objs[0]!.data);
  let made = 0;
  const store = createRemoteStore(local, { remote: async () => { made++; return new LfsClient({ url: BASE, fetch: fetchFn }); } });
  assert.equal(await store.get(objs[0]!.ref.oid), objs[0]!.data);
  assert.is(made, 0, 'no downloader made while objects are local');
  assert.is(calls.length, 0);
  const r = await store.prefetch(objs.map((o) => o.ref));
  assert.is(r!.transferred.length, 4);
  assert.is(calls.filter((c) => c.url.endsWith('/batch')).length, 1, 'one batch for all missing objects');
  assert.is(await store.prefetch(objs.map((o) => o.ref)), null, 'nothing left to fetch');
  for (const o of objs) assert.equal(await store.get(o.ref.oid), o.data);
  assert.is(store.objectPath(objs[1]!.ref.oid), local.objectPath(objs[1]!.ref.oid), 'local store properties stay reachable');
  // an object read without prefetch is fetched on demand
  const extra = await obj(33, 99);
  server.set(extra.ref.oid, extra.data);
  assert.equal(await store.get(extra.ref.oid), extra.data);
  // objects that fail one by one do not reject prefetch; reading one throws its error, with no new request
  const gone = await obj(20, 98);
  const corrupt = await obj(20, 97);
  server.set(corrupt.ref.oid, corrupt.data);
  const faulty = mockServer(server, { corrupt: new Set([corrupt.ref.oid]) });
  const store2 = createRemoteStore(createMemoryStore(), { remote: new LfsClient({ url: BASE, fetch: faulty.fetchFn }) });
  const r2 = await store2.prefetch([gone.ref, corrupt.ref, objs[2]!.ref]);
  assert.is(r2, null, 'the per-object failures were recorded, not thrown');
  assert.ok(await store2.has(objs[2]!.ref.oid), 'the good object arrived');
  const requests = faulty.calls.length;
  const e1 = await errorOf(store2.get(gone.ref.oid));
  assert.is(e1.code, 'E_LFS_OBJECT');
  assert.match(e1.message, new RegExp(`${gone.ref.oid}.*404`));
  assert.is((await errorOf(store2.get(corrupt.ref.oid))).code, 'E_LFS_CORRUPT');
  assert.is(faulty.calls.length, requests, 'no request repeated for a known failure');
  assert.not.ok(await store2.has(corrupt.ref.oid));
  // a failed request as a whole rejects prefetch
  const down = mockServer(server, { before: () => new Response('{"message":"maintenance"}', { status: 503 }) });
  const store3 = createRemoteStore(createMemoryStore(), { remote: new LfsClient({ url: BASE, fetch: down.fetchFn, retries: 0 }) });
  assert.is((await errorOf(store3.prefetch([gone.ref]))).code, 'E_LFS_REQUEST');
  // no remote: the local store's own error
  const none = createRemoteStore(createMemoryStore(), { remote: null });
  assert.is((await errorOf(none.get(extra.ref.oid))).code, 'E_OBJECT_MISSING');
});

test.run();
