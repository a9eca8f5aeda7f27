// The remote store's downloads one object at a time: a read waits only for the object it needs,
// not for the whole batch (a checkout writes a file's first tensors while later ones download),
// an object already being downloaded is never asked for twice, and a failed object's reader gets
// that object's error. A scripted downloader stores objects when the test releases them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LfsTransferError, type LfsObject } from '../../src/lfs/client.ts';
import { createRemoteStore, whileFetching, type ObjectDownloader } from '../../src/lfs/remote-store.ts';
import { createMemoryStore } from '../../src/store/memory.ts';
import { sha256Hex } from '../../src/core/sha256.ts';
import type { ThetaError } from '../../src/core/errors.ts';

const test = suite('remote store: per-object waits');

async function objects(n: number): Promise<{ ref: LfsObject; data: Uint8Array }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const data = Uint8Array.from({ length: 100 + i }, (_, j) => (i * 31 + j) & 255);
    out.push({ ref: { oid: await sha256Hex(data), size: data.length }, data });
  }
  return out;
}

/** A downloader that stores each asked object when `release(oid)` is called (in any order); `fail(oid)` fails it. */
function scripted(all: Map<string, Uint8Array>) {
  const asked: string[][] = [];
  const gates = new Map<string, { open: () => void; shut: (e: Error) => void }>();
  const downloader: ObjectDownloader = {
    async download(objs, into) {
      asked.push(objs.map((o) => o.oid));
      const failures: { oid: string; size: number; status: number; code: string; message: string }[] = [];
      const transferred: LfsObject[] = [];
      await Promise.all(objs.map(async (o) => {
        try {
          await new Promise<void>((open, shut) => gates.set(o.oid, { open, shut }));
          await into.put(all.get(o.oid)!, o.oid);
          transferred.push(o);
        } catch (e) {
          failures.push({ oid: o.oid, size: o.size, status: 404, code: 'E_LFS_OBJECT', message: (e as Error).message });
        }
      }));
      if (failures.length) throw new LfsTransferError('download', failures, transferred.length);
      return { transferred, skipped: [], bytes: transferred.reduce((a, o) => a + o.size, 0) };
    },
  };
  const gate = async (oid: string) => {
    for (let i = 0; i < 100 && !gates.has(oid); i++) await new Promise((r) => setTimeout(r, 1));
    const g = gates.get(oid);
    if (!g) throw new Error(`the downloader was never asked for ${oid}`);
    return g;
  };
  return {
    downloader, asked,
    release: async (oid: string) => (await gate(oid)).open(),
    fail: async (oid: string) => (await gate(oid)).shut(new Error('not on the server')),
  };
}

const settledSoon = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 1));
  return done;
};

test('a read waits for its own object only; objects on their way are not asked for again', async () => {
  const objs = await objects(3);
  const s = scripted(new Map(objs.map((o) => [o.ref.oid, o.data])));
  const store = createRemoteStore(createMemoryStore(), { remote: s.downloader });
  const prefetch = store.prefetch(objs.map((o) => o.ref));
  // asked for while the prefetch is still checking the local store: waits, no second download
  const second = store.get(objs[1]!.ref.oid);
  const first = store.get(objs[0]!.ref.oid);
  await s.release(objs[1]!.ref.oid);
  assert.ok(await settledSoon(second), 'the second object is read before the others arrive');
  assert.equal(await second, objs[1]!.data);
  assert.not.ok(await settledSoon(first), 'the first object is still on its way');
  assert.not.ok(await settledSoon(prefetch), 'the prefetch ends with its last object');
  // partial reads wait for an object on its way, and never download
  const ranged = store.readRanges!(objs[0]!.ref.oid, [{ offset: 2, length: 3 }]);
  await s.release(objs[0]!.ref.oid);
  assert.equal(await first, objs[0]!.data);
  assert.equal((await ranged)[0], objs[0]!.data.subarray(2, 5));
  await s.release(objs[2]!.ref.oid);
  const r = await prefetch;
  assert.is(r!.transferred.length, 3);
  assert.equal(s.asked, [objs.map((o) => o.ref.oid)], 'one download call, each object asked once');
});

test("a failed object's reader gets its error at once; whileFetching lets the fetch's error win", async () => {
  const objs = await objects(2);
  const s = scripted(new Map(objs.map((o) => [o.ref.oid, o.data])));
  const store = createRemoteStore(createMemoryStore(), { remote: s.downloader });
  const prefetch = store.prefetch(objs.map((o) => o.ref));
  const read = store.get(objs[0]!.ref.oid).then(() => null, (e: ThetaError) => e);
  await s.fail(objs[0]!.ref.oid);
  await s.release(objs[1]!.ref.oid);
  const e = await read;
  assert.ok(e, 'the read of the failed object throws');
  assert.is(e!.code, 'E_LFS_OBJECT');
  assert.match(e!.message, objs[0]!.ref.oid);
  assert.is(await prefetch, null, 'per-object failures are recorded, not thrown');
  // a partial read of an object that is not here and not on its way fails without downloading
  const calls = s.asked.length;
  const other = (await objects(3))[2]!;
  const ranged = await store.readRanges!(other.ref.oid, [{ offset: 0, length: 1 }]).then(() => null, (x: ThetaError) => x);
  assert.ok(ranged, 'a partial read of a missing object fails');
  assert.is(s.asked.length, calls, 'partial reads never download');

  const fetchError = new Error('the server is down');
  const thrown = await whileFetching(Promise.reject(fetchError), async () => { throw new Error('object missing'); }).then(() => null, (x: Error) => x);
  assert.is(thrown, fetchError);
  const workError = new Error('disk full');
  const thrown2 = await whileFetching(Promise.resolve(null), async () => { throw workError; }).then(() => null, (x: Error) => x);
  assert.is(thrown2, workError);
  assert.is(await whileFetching(Promise.resolve(null), async () => 7), 7);
});

test('a download that fails as a whole: who waited gets its error, and the server is not asked again', async () => {
  const objs = await objects(2);
  let calls = 0;
  let fail!: (e: Error) => void;
  const down = new Error('LFS batch download: HTTP 401 (credentials refused)');
  const store = createRemoteStore(createMemoryStore(), {
    remote: { download: async () => { calls++; await new Promise<void>((_, rej) => (fail = rej)); throw new Error('unreachable'); } },
  });
  const prefetch = store.prefetch(objs.map((o) => o.ref)).then(() => null, (e: Error) => e);
  const read = store.get(objs[1]!.ref.oid).then(() => null, (e: Error) => e);
  const ranged = store.readRanges!(objs[0]!.ref.oid, [{ offset: 0, length: 1 }]).then(() => null, (e: Error) => e);
  for (let i = 0; i < 20 && !fail; i++) await new Promise((r) => setTimeout(r, 1));
  fail(down);
  assert.is(await prefetch, down, 'the prefetch rejects with it');
  assert.is(await read, down, 'a read that waited gets the same error');
  assert.is(await ranged, down, 'so does a partial read that waited');
  assert.is(calls, 1, 'nobody asked the server again');
});

test.run();
