/**
 * Sharded safetensors: a `model.safetensors.index.json` of the form
 * `{"metadata": {...}, "weight_map": {tensor: shard-file}}` next to the shard files. The model is
 * read as one: shards in file-name order, each shard's tensors in its data-offset order, one tensor
 * at a time. Shards are opened through a callback (the caller decides what a file name means: a
 * path next to the index, a git blob, a URL), and each shard's tensor list must match the index.
 */
import { ArgumentError, FormatError } from '../core/errors.ts';
import type { ByteReader } from '../core/io.ts';
import { findDuplicateKey, openSafetensors, type SafetensorsReader, type SafetensorsTensor } from './safetensors.ts';
import type { CheckpointReader } from './types.ts';

export const SHARDED_FORMAT_ID = 'safetensors-sharded';

/** The conventional index file name (`<prefix>.safetensors.index.json`). */
export const SHARD_INDEX_SUFFIX = '.safetensors.index.json';

/** Largest index we parse; indexes list one short line per tensor, so 100 MB is far beyond any real model. */
export const MAX_INDEX_BYTES = 100_000_000;

export interface ShardIndex {
  metadata: Record<string, unknown>;
  /** tensor name -> shard file name */
  weightMap: Record<string, string>;
  /** Shard file names, sorted (the order they are read in). */
  shards: string[];
  /** Tensor names per shard, in the index's order. */
  tensorsByShard: Map<string, string[]>;
}

export interface ShardedTensor extends SafetensorsTensor {
  shard: string;
}

export interface ShardedReader extends CheckpointReader {
  readonly index: ShardIndex;
  readonly metadata: Record<string, unknown>;
  tensors(): AsyncIterable<ShardedTensor>;
  /** The index file's bytes as given. */
  skeleton(): Uint8Array;
  /** Each shard's safetensors skeleton, filled in as shards are read (complete once tensors() ends). */
  shardSkeletons(): Map<string, Uint8Array>;
}

function indexError(file: string, message: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, format: SHARDED_FORMAT_ID, ...extra });
}

function checkShardName(file: string, tensor: string, shard: unknown): string {
  if (typeof shard !== 'string' || shard === '') {
    throw indexError(file, `weight_map entry for tensor '${tensor}' must be a non-empty file name, found ${JSON.stringify(shard)}`, { tensor });
  }
  // Shards sit next to the index: a path separator or a parent reference could reach any file.
  if (shard.includes('/') || shard.includes('\\') || shard === '.' || shard === '..' || shard.includes('..') || shard.includes('\0')) {
    throw indexError(file, `shard name ${JSON.stringify(shard)} for tensor '${tensor}' must be a plain file name (no '/', '\\' or '..')`, { tensor, shard });
  }
  return shard;
}

/** Parse and check an index file's bytes (or text). */
export function parseShardIndex(index: Uint8Array | string, fileName = 'model' + SHARD_INDEX_SUFFIX): ShardIndex {
  const file = fileName;
  let text: string;
  if (typeof index === 'string') {
    text = index;
  } else {
    if (index.length > MAX_INDEX_BYTES) throw indexError(file, `index is ${index.length} bytes, over the ${MAX_INDEX_BYTES}-byte limit`);
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(index);
    } catch {
      throw indexError(file, 'index is not valid UTF-8');
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw indexError(file, `index is not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw indexError(file, 'index must be a JSON object');
  const dup = findDuplicateKey(text);
  if (dup && dup.path.length === 1 && dup.path[0] === 'weight_map') {
    throw indexError(file, `tensor '${dup.key}' appears twice in weight_map`, { tensor: dup.key });
  }
  if (dup && dup.path.length === 0) throw indexError(file, `key '${dup.key}' appears twice`);
  const { metadata = {}, weight_map: weightMap } = parsed as Record<string, unknown>;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw indexError(file, "'metadata' must be an object");
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) throw indexError(file, "'weight_map' must be an object {tensor: shard file}");
  const tensorsByShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    const name = checkShardName(file, tensor, shard);
    let list = tensorsByShard.get(name);
    if (!list) tensorsByShard.set(name, (list = []));
    list.push(tensor);
  }
  if (!tensorsByShard.size) throw indexError(file, 'weight_map lists no tensors');
  const shards = [...tensorsByShard.keys()].sort();
  return { metadata: metadata as Record<string, unknown>, weightMap: weightMap as Record<string, string>, shards, tensorsByShard };
}

export interface OpenShardedOptions {
  /** The index file's name, for error messages. */
  fileName?: string;
}

/**
 * Open a sharded model. Each shard is opened when reading reaches it and closed when its last
 * tensor has been handed out; before any of a shard's tensors is yielded, its header is checked
 * against the index (every listed tensor present, nothing unlisted).
 */
export async function openSharded(
  index: Uint8Array | string,
  openShard: (fileName: string) => Promise<ByteReader>,
  opts: OpenShardedOptions = {},
): Promise<ShardedReader> {
  if (typeof openShard !== 'function') throw new ArgumentError('openSharded: openShard(fileName) callback is required');
  const file = opts.fileName ?? 'model' + SHARD_INDEX_SUFFIX;
  const indexBytes = typeof index === 'string' ? new TextEncoder().encode(index) : index.slice();
  const parsed = parseShardIndex(indexBytes, file);
  const skeletons = new Map<string, Uint8Array>();
  let iterated = false;
  let open: SafetensorsReader | undefined;

  async function* tensors(): AsyncGenerator<ShardedTensor> {
    if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once`);
    iterated = true;
    for (const shard of parsed.shards) {
      const reader = await openShard(shard);
      try {
        open = await openSafetensors(reader, { fileName: shard });
        const listed = new Set(parsed.tensorsByShard.get(shard));
        const present = new Set(open.header.entries.map((e) => e.name));
        for (const name of present) {
          if (!listed.has(name)) {
            const elsewhere = Object.prototype.hasOwnProperty.call(parsed.weightMap, name) ? parsed.weightMap[name] : undefined;
            throw indexError(file, `shard '${shard}' holds tensor '${name}', which the index ${elsewhere ? `places in '${elsewhere}'` : 'does not list'}`, { tensor: name, shard });
          }
        }
        for (const name of listed) {
          if (!present.has(name)) throw indexError(file, `tensor '${name}' is listed in shard '${shard}' but that shard does not hold it`, { tensor: name, shard });
        }
        skeletons.set(shard, open.skeleton());
        for await (const t of open.tensors()) {
          yield Object.assign(t, { shard });
        }
      } finally {
        open = undefined;
        await reader.close();
      }
    }
  }

  return {
    format: SHARDED_FORMAT_ID,
    index: parsed,
    metadata: parsed.metadata,
    tensors,
    skeleton: () => indexBytes.slice(),
    shardSkeletons: () => new Map(skeletons),
    async close() {
      await open?.close();
    },
  };
}

/** True when a file name looks like a sharded safetensors index. */
export function isShardIndexName(fileName: string): boolean {
  return fileName.toLowerCase().endsWith(SHARD_INDEX_SUFFIX);
}
