// The library rows of LFS conformance (issue 11) against git-lfs's own test server, lfstest-gitserver:
// the same LfsClient code in Node and Deno. Behaviours are selected by object content ("magic"
// strings the server recognises by SHA-256) and by repository name, as in git-lfs's t/ tests.
// Not a *.test.ts file: the Node suite (test/node/lfs-conformance.test.ts) and the Deno entry
// (test/deno/lfs-server.ts) register these rows when the server runs; browsers cannot reach it
// (it sends no CORS headers).
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import { LfsClient, LfsTransferError, type LfsClientOptions, type LfsObject } from '../../src/lfs/client.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { sha256Hex } from '../../src/core/sha256.ts';

export interface LfsServerRowsContext {
  /** The server's base URL, http://127.0.0.1:PORT. */
  url: string;
  /** The server's log so far. */
  log(): Promise<string>;
  /** Distinguishes repository names per runtime (the server keeps rate-limit and expiry state per repo). */
  prefix: string;
  fetch?: typeof fetch;
}

/** The server wants HTTP Basic user:pass on every /info/lfs request. */
export const LFS_TEST_AUTH = { Authorization: `Basic ${btoa('user:pass')}` };

export async function magicObject(content: string): Promise<{ ref: LfsObject; data: Uint8Array }> {
  const data = new TextEncoder().encode(content);
  return { data, ref: { oid: await sha256Hex(data), size: data.length, name: `tensor '${content}'` } };
}

/** Lines `storage <METHOD> <oid> repo: <repo>` in the server log. */
export function storageRequests(log: string, method: string, oid: string, repo: string): number {
  return log.split('\n').filter((l) => l.includes(`storage ${method} ${oid} repo: ${repo}`)).length;
}

export function registerLfsServerRows(test: Test, ctx: () => LfsServerRowsContext): void {
  const client = (repo: string, extra: Partial<LfsClientOptions> = {}) =>
    new LfsClient({ url: `${ctx().url}/${repo}.git/info/lfs`, headers: LFS_TEST_AUTH, fetch: ctx().fetch, ...extra });

  /** Upload `content`, check the server logged its PUT, download it into an empty store, compare bytes. */
  async function roundTrip(repo: string, content: string, download = true): Promise<void> {
    const o = await magicObject(content);
    const from = createMemoryStore();
    await from.put(o.data);
    const up = await client(repo).upload([o.ref], from);
    assert.equal(up.transferred.map((x) => x.oid), [o.ref.oid], 'uploaded');
    assert.ok(storageRequests(await ctx().log(), 'PUT', o.ref.oid, repo) >= 1, `server log has storage PUT ${o.ref.oid} repo: ${repo}`);
    // asked again, the server confirms it has the object: no upload action
    const again = await client(repo).batch('upload', [o.ref]);
    assert.not.ok(again.objects[0]!.actions?.upload ?? again.objects[0]!._links?.upload, 'the server has the object');
    if (!download) return;
    const into = createMemoryStore();
    const down = await client(repo).download([o.ref], into);
    assert.is(down.transferred.length, 1);
    assert.equal(await into.get(o.ref.oid), o.data, 'byte-identical');
  }

  test('row 1: an upload href that answers 307 gets the body again at the redirect target', async () => {
    await roundTrip(`${ctx().prefix}-row1-redirect`, 'redirect-storage-upload');
  });

  test('row 5: an object marked authenticated gets no Authorization on its action requests', async () => {
    const repo = `${ctx().prefix}-row5-authenticated`;
    const o = await magicObject('object-authenticated');
    const from = createMemoryStore();
    await from.put(o.data);
    // this server answers 400 "Should not send authentication" to a PUT that carries Authorization
    const up = await client(repo).upload([o.ref], from);
    assert.is(up.transferred.length, 1);
    assert.is(storageRequests(await ctx().log(), 'PUT', o.ref.oid, repo), 1, 'one PUT, accepted');
  });

  test('row 6: legacy `_links` answers are followed like `actions` (the object is really uploaded)', async () => {
    await roundTrip(`${ctx().prefix}-row6-links`, 'send-deprecated-links');
  });

  test('row 7: a download cut mid-body resumes with a Range request', async () => {
    const repo = `${ctx().prefix}-row7-range`;
    const content = 'storage-download-retry-range';
    await roundTrip(repo, content);
    const o = await magicObject(content);
    // the server sends half the body (announcing all of it) unless asked with Range, so the
    // byte-identical download above means a Range request completed it
    assert.ok(storageRequests(await ctx().log(), 'GET', o.ref.oid, repo) >= 2, 'the cut GET, then Range GETs');
  });

  test('row 12: an action that has expired is asked for again; one that stays expired fails by name', async () => {
    const repo = `${ctx().prefix}-row12-expiry`;
    await roundTrip(repo, 'return-expired-action');
    const o = await magicObject('return-expired-action');
    assert.is(storageRequests(await ctx().log(), 'PUT', o.ref.oid, repo), 1, 'no upload to the expired link');
    // expired-absolute / expired-relative: every answer is expired; nothing is sent, the object is named
    for (const name of ['expired-absolute', 'expired-relative']) {
      const x = await magicObject(`${ctx().prefix} plain object for ${name}`);
      const from = createMemoryStore();
      await from.put(x.data);
      let err: unknown;
      try {
        await client(name).upload([x.ref], from);
      } catch (e) {
        err = e;
      }
      assert.instance(err, LfsTransferError);
      const f = (err as LfsTransferError).failures;
      assert.is(f[0]!.code, 'E_LFS_EXPIRED');
      assert.match((err as Error).message, x.ref.name!);
      assert.is(storageRequests(await ctx().log(), 'PUT', x.ref.oid, name), 0, `nothing sent to an expired link (${name})`);
    }
  });

  test('row 8: 429 without Retry-After is waited out (the server refuses for ~10 s)', async () => {
    const repo = `${ctx().prefix}-row8-ratelimit`;
    const o = await magicObject('storage-upload-retry-later-no-header');
    await roundTrip(repo, 'storage-upload-retry-later-no-header', false);
    assert.ok(storageRequests(await ctx().log(), 'PUT', o.ref.oid, repo) >= 2, 'refused at first, then accepted');
  });
}
