/**
 * node:crypto's SHA-256 (OpenSSL, several times faster than pure JS on large checkpoints),
 * installed into src/core/sha256.ts at the Node edge.
 */
import { createHash } from 'node:crypto';
import { setSha256Factory, type Sha256, type Sha256Factory } from '../../core/sha256.ts';

export const nodeSha256Factory: Sha256Factory = () => {
  const h = createHash('sha256');
  const self: Sha256 = {
    update(bytes) { h.update(bytes); return self; },
    digest() { return new Uint8Array(h.digest()); },
    digestHex() { return h.digest('hex'); },
  };
  return self;
};

/** Make every `createSha256()` in this process use node:crypto. Idempotent. */
export function useNodeSha256(): void {
  setSha256Factory(nodeSha256Factory);
}
