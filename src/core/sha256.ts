/**
 * Streaming SHA-256, the hash that names every stored object (git-lfs oids). The default is
 * @noble/hashes (pure JS, every runtime); an edge may install a faster one with
 * `setSha256Factory` (src/node/files/sha256-node.ts installs node:crypto's). Results are identical
 * whichever implementation runs, so nothing else needs to know.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

export interface Sha256 {
  /** Feed more bytes; returns this for chaining. The bytes may be reused by the caller afterwards. */
  update(bytes: Uint8Array): Sha256;
  /** The 32-byte digest. Call once; the hasher cannot be used afterwards. */
  digest(): Uint8Array;
  /** The digest as 64 lowercase hex digits. Call once. */
  digestHex(): string;
}

export type Sha256Factory = () => Sha256;

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

/** The portable implementation (@noble/hashes). */
export const nobleSha256Factory: Sha256Factory = () => {
  const h = nobleSha256.create();
  const self: Sha256 = {
    update(bytes) { h.update(bytes); return self; },
    digest() { return h.digest(); },
    digestHex() { return toHex(h.digest()); },
  };
  return self;
};

let factory: Sha256Factory = nobleSha256Factory;

/** Install a faster implementation (pass undefined to go back to the portable one). */
export function setSha256Factory(f: Sha256Factory | undefined): void {
  factory = f ?? nobleSha256Factory;
}

/** A new streaming hasher from the current factory. */
export function createSha256(): Sha256 {
  return factory();
}

/** SHA-256 of bytes in memory or of a stream of chunks, as lowercase hex. */
export async function sha256Hex(data: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
  const h = createSha256();
  if (data instanceof Uint8Array) return h.update(data).digestHex();
  if (Symbol.asyncIterator in data) {
    for await (const c of data as AsyncIterable<Uint8Array>) h.update(c);
  } else {
    for (const c of data as Iterable<Uint8Array>) h.update(c);
  }
  return h.digestHex();
}
