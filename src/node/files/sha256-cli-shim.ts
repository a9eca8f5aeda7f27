/**
 * The command line's stand-in for `@noble/hashes/sha2.js`: scripts/build.mjs points
 * core/sha256.ts's import of it here when it bundles the CLI (build/js/cli), so a CLI process
 * never loads the portable implementation (4 modules, ~55 KB: ~5 ms of every filter process,
 * merge driver and pre-push start, bench/startup.ts). node:crypto's SHA-256 behind the one shape
 * core/sha256.ts uses (`sha256.create()`, `update`, `digest`); the digests are the same. The
 * library (src/index.ts) and the tests still use @noble/hashes.
 */
import { createHash } from 'node:crypto';

interface Hasher {
  update(bytes: Uint8Array): Hasher;
  digest(): Uint8Array;
}

export const sha256 = {
  create(): Hasher {
    const h = createHash('sha256');
    const self: Hasher = {
      update(bytes) { h.update(bytes); return self; },
      digest() { return new Uint8Array(h.digest()); },
    };
    return self;
  },
};
