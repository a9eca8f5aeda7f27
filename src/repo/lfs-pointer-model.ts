/**
 * Checkpoints that git-lfs stores: the one code path the library, the page and the CLI use to read
 * a model whose blob is a git-lfs pointer (the object in the LFS store is the whole file), a
 * sharded safetensors model whose `*.safetensors.index.json` is a plain blob and whose shards are
 * pointers (the Hugging Face layout), and git-theta metadata read as a checkpoint. Objects come
 * from an ObjectStore: the local git-lfs store, or one that downloads from the LFS server.
 * Runtime-neutral (no `node:*`).
 */
import { ThetaError } from '../core/errors.ts';
import type { Kernels } from '../core/kernels.ts';
import { isNumeric } from '../core/dtypes.ts';
import { openOrClose, peekChunks, readerFromBytes, readerFromChunks, type ByteReader } from '../core/io.ts';
import { listFormats, sniffFormat, SNIFF_BYTES } from '../formats/registry.ts';
import { isShardIndexName, openSharded } from '../formats/sharded.ts';
import { TFJS_FORMAT_ID } from '../formats/tfjs.ts';
import { TFJS_SHARD_FORMAT_ID } from '../formats/tfjs-shard.ts';
import type { CheckpointReader, StreamedTensor } from '../formats/types.ts';
import type { ObjectStore } from '../store/types.ts';
import { DEFAULT_LSH_SIZE, finiteSignature, hashOf, lshOf } from '../theta/clean.ts';
import type { DiffTensor } from '../theta/diff.ts';
import { byCodePoint, type ModelMetadata } from '../theta/metadata.ts';
import { rebuildTensor } from '../theta/rebuild.ts';
import { parseLfsPointer, type LfsPointer } from './lfs-pointer.ts';

/** The pointer git-lfs commits for an object (spec v1; keys in the spec's order). */
export function lfsPointerText(p: LfsPointer): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${p.oid}\nsize ${p.size}\n`;
}

/** Hugging Face's PyTorch weights (`pytorch_model.bin`, `pytorch_model-00001-of-00002.bin`). */
const PYTORCH_BIN_RE = /(^|\/)pytorch_model[^/]*\.bin$/i;

/**
 * Whether a path git-lfs stores is worth reading as a checkpoint: its extension belongs to a
 * registered format (plug-ins included). `.bin` only for Hugging Face's PyTorch weights: other
 * `.bin` files (TF.js shards, tokenizers, anything) have no format of their own.
 */
export function isLfsCheckpointPath(path: string): boolean {
  if (PYTORCH_BIN_RE.test(path)) return true;
  const base = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return false;
  const ext = base.slice(dot);
  if (ext === '.bin' || ext === '.json') return false;
  return listFormats().some((f) => f.id !== TFJS_FORMAT_ID && f.id !== TFJS_SHARD_FORMAT_ID && f.extensions.includes(ext));
}

/** The format a checkpoint path's extension suggests (for listings, before any object is read). */
export function formatFromPath(path: string): string {
  if (PYTORCH_BIN_RE.test(path)) return 'pytorch';
  const base = path.toLowerCase();
  const f = listFormats().find((x) => x.extensions.some((e) => base.endsWith(e)));
  return f?.id ?? 'unknown';
}

/** Ask a store that can download (a remote-backed one) for these objects in one batch. */
export async function prefetchObjects(store: ObjectStore, refs: LfsPointer[]): Promise<void> {
  const s = store as ObjectStore & { prefetch?: (refs: LfsPointer[]) => Promise<unknown> };
  if (refs.length && typeof s.prefetch === 'function') await s.prefetch(refs);
}

/** A sequential reader over an LFS object (downloaded first when the store can and must). */
export async function lfsObjectReader(store: ObjectStore, pointer: LfsPointer, name: string): Promise<ByteReader> {
  await prefetchObjects(store, [pointer]);
  return readerFromChunks(store.getChunks(pointer.oid), name, pointer.size);
}

/**
 * Open the checkpoint an LFS object holds, detecting its format from its first bytes. Every
 * byte is read through the store, which checks the object's SHA-256 at its end.
 */
export async function openLfsObject(store: ObjectStore, pointer: LfsPointer, filepath: string): Promise<CheckpointReader> {
  return (await openLfsObjectTracked(store, pointer, filepath)).reader;
}

/** openLfsObject, and the byte stream under it (its `position` says where a tensor's bytes start). */
export async function openLfsObjectTracked(store: ObjectStore, pointer: LfsPointer, filepath: string): Promise<{ reader: CheckpointReader; bytes: ByteReader }> {
  await prefetchObjects(store, [pointer]);
  const { head, stream } = await peekChunks(store.getChunks(pointer.oid), SNIFF_BYTES);
  const format = sniffFormat(head, filepath);
  const bytes = readerFromChunks(stream, filepath, pointer.size);
  return { reader: await openOrClose(bytes, (r) => format.open(r, { fileName: filepath })), bytes };
}

/**
 * A Rereader for an LFS object that reads a tensor back straight from its byte range when the
 * store can read ranges (the local store can): the range noted on the first pass is read and its
 * content hash checked against the first pass's, so the bytes are verified per tensor; any
 * mismatch (a format whose tensors are not stored contiguously) falls back to a second pass.
 */
export function lfsRereader(store: ObjectStore, kernels: Kernels, pointer: LfsPointer, filepath: string, what: string): Rereader {
  const ranges = new Map<string, { offset: number; length: number; hash: string }>();
  const stream = rereader(() => openLfsObject(store, pointer, filepath), what);
  return {
    note(name, offset, length, hash) {
      ranges.set(name, { offset, length, hash });
    },
    async load(name) {
      const r = ranges.get(name);
      if (r && r.length > 0 && store.readRanges) {
        const [bytes] = await store.readRanges(pointer.oid, [{ offset: r.offset, length: r.length }]);
        if (bytes && bytes.length === r.length && hashOf(kernels, bytes) === r.hash) return bytes;
      }
      return stream.load(name);
    },
    close: () => stream.close(),
  };
}

/** How to open objects when only part of them will be read (lfs-partial.ts: by Range requests). */
export interface PartialOpeners {
  object(store: ObjectStore, pointer: LfsPointer, path: string): Promise<CheckpointReader>;
  shard(store: ObjectStore, pointer: LfsPointer, path: string): Promise<ByteReader>;
}

/** Reads a file next to the one being opened, at the same revision (null when absent). */
export type SiblingBlob = (path: string) => Promise<Uint8Array | null>;

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/**
 * A sharded safetensors model from its index blob: each shard is read from the blob next to the
 * index at the same revision, from its LFS object when that blob is a pointer.
 */
export async function openShardedBlobs(
  store: ObjectStore, index: Uint8Array, filepath: string, sibling: SiblingBlob,
  shardReader: (store: ObjectStore, pointer: LfsPointer, path: string) => Promise<ByteReader> = lfsObjectReader,
): Promise<CheckpointReader> {
  const dir = dirOf(filepath);
  return openSharded(index, async (shard) => {
    const path = dir ? `${dir}/${shard}` : shard;
    const blob = await sibling(path);
    if (!blob) throw new ThetaError('E_SHARD_MISSING', `${filepath} lists shard '${shard}', but ${path} is not in that revision; commit the shard or fix the index`, { file: filepath, shard: path });
    const pointer = parseLfsPointer(blob);
    return pointer ? shardReader(store, pointer, path) : readerFromBytes(blob, path);
  }, { fileName: filepath });
}

/**
 * The checkpoint a blob stands for when git-lfs keeps it: an LFS pointer's object, or a sharded
 * index (its shards read through `sibling`). null for anything else (git-theta metadata, a plain
 * blob), which the caller reads its own way.
 */
export async function openLfsBlob(store: ObjectStore, blob: Uint8Array, filepath: string, sibling?: SiblingBlob, partial?: PartialOpeners): Promise<CheckpointReader | null> {
  const pointer = parseLfsPointer(blob);
  if (pointer) return (partial?.object ?? openLfsObject)(store, pointer, filepath);
  if (sibling && isShardIndexName(filepath)) return openShardedBlobs(store, blob, filepath, sibling, partial?.shard);
  return null;
}

/**
 * git-theta metadata as a CheckpointReader: tensors in name order, each rebuilt from its objects
 * (and verified by its content hash) when read. No skeleton: for reading values, not rebuilding.
 */
export function metadataReader(meta: ModelMetadata, store: ObjectStore, kernels: Kernels): CheckpointReader {
  return {
    format: meta.format,
    async *tensors(): AsyncGenerator<StreamedTensor> {
      for (const name of Object.keys(meta.tensors).sort(byCodePoint)) {
        const e = meta.tensors[name];
        const bytes = () => rebuildTensor(name, e, store, kernels);
        yield {
          name, dtype: e.dtype, shape: e.shape, byteLength: e.bytes, bytes,
          async *chunks(chunkBytes = 4 << 20) {
            const all = await bytes();
            for (let o = 0; o < all.length; o += chunkBytes) yield all.subarray(o, Math.min(all.length, o + chunkBytes));
          },
        };
      }
    },
    skeleton() {
      throw new ThetaError('E_ARGUMENT', 'a checkpoint read from git-theta metadata has no skeleton here; use smudge to rebuild the file', {});
    },
    async close() {},
  };
}

/**
 * A checkpoint's tensors as a diff wants them: content hash (the one git-theta metadata records,
 * so an LFS version and a git-theta version compare exactly), LSH signature when `approx`, and
 * the bytes for the numbers of a modified tensor.
 */
export async function* readerDiffTensors(kernels: Kernels, reader: CheckpointReader, approx: boolean, again?: Rereader, bytesUnder?: ByteReader): AsyncGenerator<DiffTensor> {
  try {
    for await (const t of reader.tensors()) {
      if (again) {
        // hashed as it streams; the bytes are read again only if the diff needs them (memory: one chunk)
        const h = kernels.contentHasher();
        const lsh = approx && isNumeric(t.dtype) ? kernels.lshAccumulator(t.dtype, { size: DEFAULT_LSH_SIZE }) : null;
        for await (const c of t.chunks()) {
          h.update(c);
          lsh?.update(c);
        }
        const name = t.name;
        const hash = h.digest();
        // where its bytes ended, less its length (padding before a tensor may be skipped inside chunks())
        if (bytesUnder) again.note?.(name, bytesUnder.position - t.byteLength, t.byteLength, hash);
        yield { name, dtype: t.dtype, shape: t.shape, hash, lsh: lsh ? finiteSignature(lsh.signature()) : [], load: () => again.load(name) };
        continue;
      }
      const bytes = await t.bytes();
      yield {
        name: t.name, dtype: t.dtype, shape: t.shape,
        hash: hashOf(kernels, bytes),
        lsh: approx ? lshOf(kernels, t.dtype, bytes, DEFAULT_LSH_SIZE) : [],
        load: async () => bytes,
      };
    }
  } finally {
    await reader.close();
  }
}

/** Tensor name -> content hash, dtype and shape of a checkpoint (what a log compares), reading every tensor once. */
export async function tensorHashes(kernels: Kernels, reader: CheckpointReader): Promise<Map<string, { hash: string; dtype: string; shape: number[] }>> {
  const out = new Map<string, { hash: string; dtype: string; shape: number[] }>();
  try {
    for await (const t of reader.tensors()) {
      const h = kernels.contentHasher();
      for await (const c of t.chunks()) h.update(c);
      out.set(t.name, { hash: h.digest(), dtype: t.dtype, shape: t.shape });
    }
  } finally {
    await reader.close();
  }
  return out;
}

/**
 * A checkpoint's tensors read a second time, on demand: requests in file order are served by one
 * forward pass (tensors in between are skipped); a request behind the pass starts a new one. So a
 * diff keeps one side's tensors as hashes only and reads back the bytes of the modified ones.
 */
export interface Rereader {
  /** Where a tensor's bytes were on the first pass (a hint; its content hash verifies the bytes read back). */
  note?(name: string, offset: number, length: number, hash: string): void;
  load(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

export function rereader(open: () => Promise<CheckpointReader>, what: string): Rereader {
  let reader: CheckpointReader | null = null;
  let it: AsyncIterator<StreamedTensor> | null = null;
  const passed = new Set<string>();
  const close = async () => {
    const r = reader;
    reader = null;
    it = null;
    await r?.close();
  };
  return {
    async load(name) {
      for (let pass = 0; pass < 2; pass++) {
        if (!it || passed.has(name)) {
          await close();
          reader = await open();
          it = reader.tensors()[Symbol.asyncIterator]();
          passed.clear();
        }
        for (;;) {
          const r = await it!.next();
          if (r.done) {
            await close();
            break;
          }
          passed.add(r.value.name);
          if (r.value.name === name) return r.value.bytes();
        }
      }
      throw new ThetaError('E_TENSOR_MISSING', `${what}: tensor '${name}' was there on the first read but not on the second; is the object being changed?`, { tensor: name });
    },
    close,
  };
}
