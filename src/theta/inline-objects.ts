/**
 * Small objects carried in the metadata instead of the object store. A model of thousands of
 * small tensors (TF.js models: biases, norms, scalars) cost one object file per tensor, and each
 * file costs the same few file-system calls whatever its size (on this machine ~0.5 ms per object
 * to write, the same again to read on checkout), where git-lfs writes one file per model. So an
 * object of at most INLINE_MAX_BYTES is written into the step that names it, as base64 beside its
 * id and size:
 *
 *   "chain":[{"update":"dense","object":{"oid":"<sha-256>","size":16,"data":"<base64>"}}]
 *
 * The reference keeps its SHA-256, so it is the same object as before, only carried elsewhere: it
 * is checked against that id when it is read, and the update types read it through the store they
 * are given (`withInlineReads`), unchanged. Inline references are not in the object store, so
 * `entryObjects`/`referencedObjects` leave them out: push, fetch, gc and fsck never look for them.
 * Documents with inline references have metadata version 3 (metadata.ts), which an older
 * git-theta refuses with "upgrade git-theta" instead of failing on a missing object.
 */
import { ThetaError } from '../core/errors.ts';
import { sha256Hex } from '../core/sha256.ts';
import type { UpdateStore } from '../updates/types.ts';
import { isInline, stepRefs, type ObjectRef, type UpdateStep } from './metadata.ts';

/** Objects of at most this many bytes are written inline (1 KiB: ~1.4 KB of base64 per object). */
export const INLINE_MAX_BYTES = 1024;

/** An object reference that carries its bytes. */
export interface InlineRef extends ObjectRef {
  data: string;
}

/** The `theta.inlineMax` setting: a whole number of bytes >= 0 (0: every object in the store); null = the default. */
export function parseInlineMax(value: string | null): number {
  if (value === null) return INLINE_MAX_BYTES;
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0 || n > MAX_INLINE_SETTING) {
    throw new ThetaError('E_CONFIG', `theta.inlineMax must be a whole number of bytes from 0 to ${MAX_INLINE_SETTING} (got '${value}'); fix it with 'git config theta.inlineMax 1024'`, { key: 'theta.inlineMax', value });
  }
  return n;
}

/** Larger inline objects would make the metadata blob (which git stores whole per version) the bulk of a commit. */
export const MAX_INLINE_SETTING = 1 << 20;

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** An inline object whose bytes do not match its id or size (the metadata was edited or damaged). */
export class InlineObjectError extends ThetaError {
  constructor(oid: string, why: string) {
    super('E_OBJECT_CORRUPT', `inline object ${oid} in the metadata is corrupt (${why}); check out the metadata again from git ('git checkout -- <file>') or run 'git theta fsck'`, { oid });
    this.name = 'InlineObjectError';
  }
}

/** The bytes of an inline reference, checked against its size and SHA-256. */
export async function inlineBytes(ref: InlineRef): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(ref.data);
  } catch {
    throw new InlineObjectError(ref.oid, 'its data is not base64');
  }
  if (bytes.length !== ref.size) throw new InlineObjectError(ref.oid, `${bytes.length} bytes, expected ${ref.size}`);
  if ((await sha256Hex(bytes)) !== ref.oid) throw new InlineObjectError(ref.oid, 'its bytes do not match its SHA-256');
  return bytes;
}

/** `store` whose `put` keeps objects of at most `max` bytes inline (their reference carries the bytes). */
export function withInlinePuts(store: UpdateStore, max = INLINE_MAX_BYTES): UpdateStore {
  if (max <= 0) return store;
  const ranges = store.readRanges?.bind(store);
  return {
    get: (oid) => store.get(oid),
    ...(ranges ? { readRanges: ranges } : {}),
    async put(bytes) {
      if (bytes.length > max) return store.put(bytes);
      const ref: InlineRef = { oid: await sha256Hex(bytes), size: bytes.length, data: toBase64(bytes) };
      return ref;
    },
  };
}

/**
 * `store` whose `get` answers the inline objects of `steps` from their references; everything else
 * goes to `store`. Returns `store` itself when the steps carry no inline object.
 */
export function withInlineReads(store: UpdateStore, steps: readonly UpdateStep[]): UpdateStore {
  const inline = new Map(stepRefs(steps).filter(isInline).map((r) => [r.oid, r]));
  if (!inline.size) return store;
  const ranges = store.readRanges?.bind(store);
  return {
    put: (b) => store.put(b),
    async get(oid) {
      const ref = inline.get(oid);
      return ref ? inlineBytes(ref) : store.get(oid);
    },
    ...(ranges ? {
      async readRanges(oid: string, rs: { offset: number; length: number }[]) {
        const ref = inline.get(oid);
        if (!ref) return ranges(oid, rs);
        const b = await inlineBytes(ref);
        return rs.map(({ offset, length }) => b.slice(offset, Math.min(b.length, offset + length)));
      },
    } : {}),
  };
}
