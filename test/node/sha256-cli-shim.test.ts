// The CLI bundle's SHA-256 (src/node/files/sha256-cli-shim.ts, put in place of @noble/hashes by
// scripts/build.mjs) gives @noble/hashes's digests, whole or fed in pieces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256 as noble } from '@noble/hashes/sha2.js';
import { sha256 as shim } from '../../src/node/files/sha256-cli-shim.ts';

test('sha256 CLI shim: the same digests as @noble/hashes, whole and in pieces', () => {
  for (const n of [0, 1, 55, 56, 64, 65, 1000, 1 << 20]) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 131 + n) & 255);
    assert.equal(shim.create().update(bytes).digest(), noble.create().update(bytes).digest(), `${n} bytes`);
    const h = shim.create();
    for (let at = 0; at < n; at += 777) h.update(bytes.subarray(at, at + 777));
    assert.equal(h.digest(), noble(bytes), `${n} bytes in pieces`);
  }
});

test.run();
