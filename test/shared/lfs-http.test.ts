// The protocol details of src/store/lfs-http.ts and how LfsClient uses them, against small mocked
// fetches (the real-server rows are in lfs-server-rows.ts): redirects, `_links`, expiry, 429 backoff,
// 401-only credential reject, error text.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LfsClient, type LfsAuth } from '../../src/lfs/client.ts';
import { describeFetchError, fetchErrorText, fetchFollowing, isExpired, rateLimitDelay, redactUrl } from '../../src/lfs/http.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { sha256Hex } from '../../src/core/sha256.ts';

const test = suite('lfs http details');
const BASE = 'https://lfs.example.test/org/model.git/info/lfs';

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/vnd.git-lfs+json', ...headers } });
}

async function errorOf(p: Promise<unknown>): Promise<Error & { code?: string; data?: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

test('redactUrl drops credentials and query strings', () => {
  assert.is(redactUrl('https://user:secret@host.test:8443/a/b.git/info/lfs?token=x'), 'https://host.test:8443/a/b.git/info/lfs?…');
  assert.is(redactUrl('http://host.test/x'), 'http://host.test/x');
});

test('isExpired: past expires_at / expires_in, a 5 s margin, and Go\'s zero time means none', () => {
  const now = Date.UTC(2030, 0, 1);
  assert.ok(isExpired({ href: 'x', expires_in: -5 }, now, now));
  assert.ok(isExpired({ href: 'x', expires_at: new Date(now - 60_000).toISOString() }, now, now));
  assert.ok(isExpired({ href: 'x', expires_at: new Date(now + 2_000).toISOString() }, now, now), 'within the margin');
  assert.not.ok(isExpired({ href: 'x', expires_at: new Date(now + 3_600_000).toISOString(), expires_in: 3600 }, now, now));
  assert.not.ok(isExpired({ href: 'x', expires_at: '0001-01-01T00:00:00Z' }, now, now));
  assert.not.ok(isExpired({ href: 'x' }, now, now));
});

test('429 backoff without Retry-After outlasts a 10 s window within four waits, bounded per step', () => {
  const waits = [0, 1, 2, 3].map((n) => rateLimitDelay(n));
  assert.ok(waits.reduce((a, b) => a + b) > 10_000);
  assert.is(rateLimitDelay(20), rateLimitDelay(30), 'capped');
});

test('describeFetchError: the code from the cause chain; TLS problems are not retried', () => {
  const tls = new TypeError('fetch failed', { cause: Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }) });
  const i = describeFetchError(tls);
  assert.is(i.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  assert.ok(i.tls);
  assert.not.ok(i.retryable);
  assert.match(fetchErrorText(tls), /TLS error: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
  const cut = new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
  assert.ok(describeFetchError(cut).retryable);
});

test('fetchFollowing: 307 resends the body, drops Authorization across origins; 303 becomes GET', async () => {
  const seen: { url: string; method: string; body: string | null; auth: string | null }[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const h = new Headers(init.headers);
    seen.push({ url: String(input), method: init.method ?? 'GET', body: init.body ? new TextDecoder().decode(init.body as Uint8Array) : null, auth: h.get('authorization') });
    if (String(input).endsWith('/a')) return new Response(null, { status: 307, headers: { Location: 'https://storage.test/b' } });
    if (String(input).endsWith('/b')) return new Response(null, { status: 303, headers: { Location: '/c' } });
    return new Response('done');
  }) as typeof fetch;
  const res = await fetchFollowing(fetchFn, 'https://lfs.test/a', () => ({ method: 'PUT', headers: { Authorization: 'Basic x' }, body: new TextEncoder().encode('payload') }));
  assert.is(await res.text(), 'done');
  assert.equal(seen.map((s) => [s.url, s.method, s.body, s.auth]), [
    ['https://lfs.test/a', 'PUT', 'payload', 'Basic x'],
    ['https://storage.test/b', 'PUT', 'payload', null],
    ['https://storage.test/c', 'GET', null, null],
  ]);
});

test('upload: `_links` is read as `actions` (the object is sent, not taken as present)', async () => {
  const data = new TextEncoder().encode('legacy links');
  const oid = await sha256Hex(data);
  const puts: string[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    if (String(input).endsWith('/objects/batch')) return json({ objects: [{ oid, size: data.length, _links: { upload: { href: `${BASE}/up/${oid}` } } }] });
    puts.push(String(input));
    assert.is(init.method, 'PUT');
    return new Response(null, { status: 200 });
  }) as typeof fetch;
  const store = createMemoryStore();
  await store.put(data);
  const r = await new LfsClient({ url: BASE, fetch: fetchFn }).upload([{ oid, size: data.length }], store);
  assert.equal(puts, [`${BASE}/up/${oid}`]);
  assert.is(r.transferred.length, 1);
});

test('credentials are rejected after a 401 only, never after a 403', async () => {
  for (const [status, rejected] of [[403, false], [401, true]] as const) {
    const calls: string[] = [];
    const auth: LfsAuth = {
      onUnauthorized: async () => ({ Authorization: 'Basic dTpw' }),
      approve: async () => void calls.push('approve'),
      reject: async () => void calls.push('reject'),
    };
    let n = 0;
    const fetchFn = (async () => (n++ === 0 ? json({ message: 'who are you' }, 401) : json({ message: 'Expected ref "refs/heads/main", got ""' }, status))) as typeof fetch;
    const e = await errorOf(new LfsClient({ url: BASE, fetch: fetchFn, auth }).batch('upload', []));
    assert.is(e.code, 'E_LFS_AUTH');
    assert.match(e.message, new RegExp(`HTTP ${status}`));
    if (status === 403) assert.match(e.message, /Expected ref "refs\/heads\/main", got ""/);
    assert.equal(calls, rejected ? ['reject'] : []);
  }
});

test('429 without Retry-After waits 1, 2, 4 s …; with Retry-After, as told', async () => {
  let n = 0;
  const fetchFn = (async () => (n++ < 3 ? new Response('slow down', { status: 429 }) : json({ objects: [] }))) as typeof fetch;
  const waits: number[] = [];
  await new LfsClient({ url: BASE, fetch: fetchFn, sleep: async (ms) => void waits.push(ms) }).batch('download', []);
  assert.equal(waits, [1000, 2000, 4000]);
});

test('an expired action is asked for again before it is used', async () => {
  const data = new TextEncoder().encode('expiring');
  const oid = await sha256Hex(data);
  let batches = 0;
  const fetchFn = (async (input: RequestInfo | URL) => {
    if (String(input).endsWith('/objects/batch')) {
      batches++;
      const expires_in = batches === 1 ? -5 : 3600;
      return json({ objects: [{ oid, size: data.length, actions: { download: { href: `${BASE}/get/${oid}?n=${batches}`, expires_in } } }] });
    }
    assert.match(String(input), /n=2$/, 'the fresh link is used');
    return new Response(data);
  }) as typeof fetch;
  const into = createMemoryStore();
  await new LfsClient({ url: BASE, fetch: fetchFn }).download([{ oid, size: data.length }], into);
  assert.is(batches, 2);
  assert.equal(await into.get(oid), data);
});

test.run();
