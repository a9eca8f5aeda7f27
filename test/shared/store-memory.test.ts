import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createMemoryStore } from '../../src/store/memory.ts';
import { lfsObjectPath } from '../../src/store/local.ts';
import { isOid } from '../../src/store/types.ts';
import { sha256Hex } from '../../src/core/sha256.ts';
import { concat } from '../../src/core/io.ts';

const test = suite('store (memory)');
const te = new TextEncoder();
const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return (e as { code?: string }).code ?? `untyped: ${(e as Error).message}`;
  }
  return undefined;
}

async function collectChunks(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

test('put names objects by SHA-256 and lays them out as git-lfs does', async () => {
  const s = createMemoryStore();
  const r = await s.put(te.encode('abc'));
  assert.equal(r, { oid: ABC, size: 3 });
  assert.is(s.objectPath(ABC), `/lfs/objects/ba/78/${ABC}`);
  assert.equal(s.fs.files(), [`/lfs/objects/ba/78/${ABC}`], 'nothing left in tmp');
  assert.ok(await s.has(ABC));
  assert.is(await s.size(ABC), 3);
  assert.is(new TextDecoder().decode(await s.get(ABC)), 'abc');
  assert.is(lfsObjectPath('/x/lfs/', ABC), `/x/lfs/objects/ba/78/${ABC}`);
});

test('streamed put (sync and async chunks, empty chunks) equals a one-shot put', async () => {
  const s = createMemoryStore();
  const data = bytes(300_001, 9);
  const oid = await sha256Hex(data);
  const parts = [data.subarray(0, 0), data.subarray(0, 1000), data.subarray(1000, 1000), data.subarray(1000)];
  assert.equal(await s.put(parts), { oid, size: data.length });
  assert.equal(await s.put((async function* () { yield* parts; })()), { oid, size: data.length });
  assert.equal(await s.put(data), { oid, size: data.length });
  assert.equal(await s.get(oid), data);
  const empty = await s.put(new Uint8Array(0));
  assert.equal(empty, { oid: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', size: 0 });
  assert.is((await s.get(empty.oid)).length, 0);
  const listed: string[] = [];
  for await (const o of s.list()) listed.push(o);
  assert.equal(listed.sort(), [oid, empty.oid].sort());
});

test('getChunks streams in bounded chunks and verifies', async () => {
  const s = createMemoryStore();
  const data = bytes(10_000, 4);
  const { oid } = await s.put(data);
  const chunks = await collectChunks(s.getChunks(oid, 4096));
  assert.equal(chunks.map((c) => c.length), [4096, 4096, 1808]);
  assert.equal(concat(chunks), data);
  assert.is(await codeOf(() => s.getChunks(oid, 0)), 'E_ARGUMENT');
});

test('a corrupt object is a typed error naming the oid, for get and getChunks', async () => {
  const s = createMemoryStore();
  const data = bytes(5000, 2);
  const { oid } = await s.put(data);
  const bad = data.slice();
  bad[1234] ^= 1;
  s.fs.poke(s.objectPath(oid), bad);
  try {
    await s.get(oid);
    assert.unreachable('get should fail');
  } catch (e: any) {
    assert.is(e.code, 'E_OBJECT_CORRUPT');
    assert.is(e.data.oid, oid);
    assert.ok(e.message.includes(oid));
  }
  assert.is(await codeOf(collectChunks(s.getChunks(oid, 1000))), 'E_OBJECT_CORRUPT');
  // putting the right bytes again does not rewrite a same-size object...
  await s.put(data);
  assert.is(await codeOf(s.get(oid)), 'E_OBJECT_CORRUPT');
  // ...but a wrong-sized one is repaired
  s.fs.poke(s.objectPath(oid), data.subarray(0, 10));
  await s.put(data);
  assert.equal(await s.get(oid), data);
});

test('missing objects and invalid ids are typed errors; no path is built from a bad id', async () => {
  const s = createMemoryStore();
  const missing = 'a'.repeat(64);
  assert.is(await codeOf(s.get(missing)), 'E_OBJECT_MISSING');
  assert.is(await codeOf(s.size(missing)), 'E_OBJECT_MISSING');
  assert.is(await codeOf(collectChunks(s.getChunks(missing))), 'E_OBJECT_MISSING');
  assert.is(await s.has(missing), false);
  assert.is(await s.delete(missing), false);
  for (const bad of ['A'.repeat(64), 'a'.repeat(63), '../../' + 'a'.repeat(58), 'a'.repeat(64) + '/', '', 42]) {
    assert.is(await codeOf(s.has(bad as string)), 'E_INVALID_OID', `has(${String(bad)})`);
    assert.is(await codeOf(s.get(bad as string)), 'E_INVALID_OID');
    assert.is(await codeOf(() => s.getChunks(bad as string)), 'E_INVALID_OID');
    assert.is(await codeOf(s.delete(bad as string)), 'E_INVALID_OID');
  }
  assert.ok(isOid(ABC));
  assert.not.ok(isOid(ABC.toUpperCase()));
});

test('a put whose input fails half-way leaves no object and no temp file', async () => {
  const s = createMemoryStore();
  async function* failing() {
    yield bytes(1000);
    throw new Error('source broke');
  }
  try {
    await s.put(failing());
    assert.unreachable('put should reject');
  } catch (e: any) {
    assert.is(e.message, 'source broke');
  }
  assert.equal(s.fs.files(), []);
  const listed: string[] = [];
  for await (const o of s.list()) listed.push(o);
  assert.equal(listed, []);
});

test('put with an expected id keeps bytes that match it and nothing that does not', async () => {
  const s = createMemoryStore();
  const good = bytes(3000, 7);
  const id = await sha256Hex(good);
  assert.equal(await s.put([good.subarray(0, 1000), good.subarray(1000)], id), { oid: id, size: 3000 });
  const other = bytes(3000, 8);
  const e = await s.put(other, id).then(() => null, (x) => x);
  assert.is(e?.code, 'E_OBJECT_CORRUPT');
  assert.is(e.data.oid, id);
  assert.is(e.data.actual, await sha256Hex(other), 'the error names what the bytes hash to');
  assert.equal(s.fs.files(), [s.objectPath(id)], 'the wrong bytes are under no name, and no temp file is left');
  assert.ok(await s.has(id), 'an object already stored under the expected id stays');
});

test('delete removes; list ignores foreign files', async () => {
  const s = createMemoryStore();
  const { oid } = await s.put(te.encode('abc'));
  s.fs.poke('/lfs/objects/ba/78/not-an-oid', te.encode('x'));
  await s.fs.mkdirp('/lfs/objects/zz/78');
  s.fs.poke(`/lfs/objects/zz/78/${'b'.repeat(64)}`, te.encode('x'));
  s.fs.poke(`/lfs/objects/ba/78/${'c'.repeat(64)}`, te.encode('x')); // wrong directory for its name
  const listed: string[] = [];
  for await (const o of s.list()) listed.push(o);
  assert.equal(listed, [oid]);
  assert.is(await s.delete(oid), true);
  assert.is(await s.has(oid), false);
});

test.run();
