/** Deterministic test data shared by test files (same values in every runtime). */
import type { FileAccess } from '../../src/formats/types.ts';
import { isInline, storedObjects, type ModelMetadata } from '../../src/theta/metadata.ts';
import { createMemoryStore } from '../../src/store/memory.ts';

/** n float32 values in [-0.5, 0.5) from a linear congruential sequence started at `seed`. */
export function lcgFloats(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    a[i] = x / 2147483648 - 0.5;
  }
  return a;
}

/** A FileAccess over an in-memory map of '/'-separated paths (a model directory without a disk). */
export function memoryFiles(files: Map<string, Uint8Array>): FileAccess {
  return {
    async list(dir) {
      const prefix = dir ? `${dir}/` : '';
      return [...files.keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length));
    },
    async read(path, max) { const b = files.get(path); return b && b.length <= max ? b : null; },
    async size(path) { return files.get(path)?.length ?? null; },
  };
}

/** Bytes of a hex string ('0a1b...'). */
export const hexBytes = (s: string) => new Uint8Array(s.match(/../g)!.map((x) => parseInt(x, 16)));

/** Float32 values of base64-encoded little-endian bytes (as the ggml oracle data stores them). */
export function base64Floats(b64: string): Float32Array {
  const bin = atob(b64);
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return new Float32Array(b.buffer);
}

/**
 * Bytes of the inline objects (carried in the metadata, theta/inline-objects.ts) that the `after`
 * documents hold and the `before` ones did not, by id: what a commit stored in its metadata rather
 * than in the object store. Counted with the store's new bytes, it is all a commit stored.
 */
export function inlineBytesAdded(before: Iterable<ModelMetadata | null>, after: Iterable<ModelMetadata>): number {
  const ids = (ms: Iterable<ModelMetadata | null>) => {
    const out = new Map<string, number>();
    for (const m of ms) for (const r of m ? storedObjects(m) : []) if (isInline(r)) out.set(r.oid, r.size);
    return out;
  };
  const old = ids(before);
  let n = 0;
  for (const [oid, size] of ids(after)) if (!old.has(oid)) n += size;
  return n;
}

/** An in-memory store that records which objects are read (get, ranged reads, chunks). */
export function countingStore() {
  const inner = createMemoryStore();
  const reads: string[] = [];
  const store = {
    ...inner,
    put: inner.put.bind(inner),
    async get(oid: string) { reads.push(oid); return inner.get(oid); },
    async readRanges(oid: string, rs: { offset: number; length: number }[]) { reads.push(oid); return inner.readRanges!(oid, rs); },
    getChunks: (oid: string, n?: number) => { reads.push(oid); return inner.getChunks(oid, n); },
  };
  return { store, reads };
}

/** A hand-built safetensors file: 8-byte length (n, or the header's own length), the header bytes, the buffer. */
export function rawSafetensors(header: string | Uint8Array, buffer: number | Uint8Array = 0, n?: number | bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const b = typeof buffer === 'number' ? new Uint8Array(buffer) : buffer;
  const out = new Uint8Array(8 + h.length + b.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n ?? h.length), true);
  out.set(h, 8);
  out.set(b, 8 + h.length);
  return out;
}
