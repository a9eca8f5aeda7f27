import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSha256, sha256Hex, nobleSha256Factory, setSha256Factory, toHex } from '../../src/core/sha256.ts';

const test = suite('sha256');
const te = new TextEncoder();

// FIPS 180-2 / NIST example vectors.
const VECTORS: [string, string][] = [
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'],
];

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

test('known vectors', async () => {
  for (const [msg, hex] of VECTORS) {
    assert.is(await sha256Hex(te.encode(msg)), hex, JSON.stringify(msg));
    assert.is(toHex(createSha256().update(te.encode(msg)).digest()), hex);
  }
});

test('one million "a" fed in odd-sized chunks', async () => {
  const a = new Uint8Array(1_000_000).fill(97);
  const h = createSha256();
  for (let i = 0; i < a.length; i += 9973) h.update(a.subarray(i, i + 9973));
  assert.is(h.digestHex(), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

test('the digest does not depend on how the input is chunked', async () => {
  const data = bytes(200_003, 5);
  const whole = await sha256Hex(data);
  for (const size of [1, 63, 64, 65, 4096, 65536]) {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
    assert.is(await sha256Hex(parts), whole, `sync chunks of ${size}`);
    assert.is(await sha256Hex((async function* () { yield* parts; })()), whole, `async chunks of ${size}`);
  }
  // (digest of this xorshift stream as computed by node:crypto, an independent implementation)
  assert.is(whole, '1d591ee42656a503ab69aabf72623b36eadb4009d5b13f3bf7db4b27d6a07d61');
});

test('the factory can be replaced at the edge and restored', async () => {
  let calls = 0;
  setSha256Factory(() => { calls++; return nobleSha256Factory(); });
  try {
    assert.is(await sha256Hex(te.encode('abc')), VECTORS[1]![1]);
    assert.is(calls, 1);
  } finally {
    setSha256Factory(undefined);
  }
  await sha256Hex(te.encode('abc'));
  assert.is(calls, 1, 'restored to the default');
});

test.run();
