/**
 * Writing a sharded safetensors model back from its parts: the index file's bytes and each shard's
 * safetensors skeleton (header, padding included), with tensor bytes asked for by name. Used where
 * a merged model is the first model with merged values (`merge-models` on `*.safetensors.index.json`):
 * the index and every shard header are the first model's, byte for byte, shards keep their names.
 *
 * The skeleton frames the parts: a 4-byte little-endian length, a JSON description
 * `{"skeleton": "theta-sharded-safetensors/1", "index": n, "shards": [[name, n], ...]}`, then the
 * index bytes and each shard's skeleton in that order.
 */
import { ArgumentError, FormatError } from '../core/errors.ts';
import { concat, type ByteSink } from '../core/io.ts';
import { safetensors } from './safetensors.ts';
import { parseShardIndex, SHARDED_FORMAT_ID, SHARD_INDEX_SUFFIX } from './sharded.ts';
import type { CheckpointFormat } from './types.ts';

const MAGIC = 'theta-sharded-safetensors/1';

/** The framed skeleton of a sharded model: its index bytes and its shards' skeletons, in reading order. */
export function shardedSkeleton(index: Uint8Array, shards: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const order = parseShardIndex(index).shards;
  for (const s of order) if (!shards.has(s)) throw new ArgumentError(`no skeleton for shard '${s}': read the model to its end first`, { shard: s });
  const meta = new TextEncoder().encode(JSON.stringify({ skeleton: MAGIC, index: index.length, shards: order.map((s) => [s, shards.get(s)!.length]) }));
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, meta.length, true);
  return concat([head, meta, index, ...order.map((s) => shards.get(s)!)]);
}

function decode(skeleton: Uint8Array): { index: Uint8Array; shards: [string, Uint8Array][] } {
  const bad = (why: string) => new FormatError(`not a sharded safetensors skeleton: ${why}`, { file: '<skeleton>', format: SHARDED_FORMAT_ID });
  if (skeleton.length < 4) throw bad('too short');
  const n = new DataView(skeleton.buffer, skeleton.byteOffset, 4).getUint32(0, true);
  if (4 + n > skeleton.length) throw bad('its description runs past its end');
  let meta: { skeleton?: unknown; index?: unknown; shards?: unknown };
  try { meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(skeleton.subarray(4, 4 + n))); } catch { throw bad('its description is not JSON'); }
  if (meta.skeleton !== MAGIC || !Number.isSafeInteger(meta.index) || !Array.isArray(meta.shards)) throw bad('unknown description');
  let at = 4 + n;
  const take = (len: unknown): Uint8Array => {
    if (!Number.isSafeInteger(len) || (len as number) < 0 || at + (len as number) > skeleton.length) throw bad('a part runs past its end');
    const out = skeleton.subarray(at, at + (len as number));
    at += len as number;
    return out;
  };
  const index = take(meta.index);
  const shards = (meta.shards as unknown[]).map((s): [string, Uint8Array] => {
    if (!Array.isArray(s) || typeof s[0] !== 'string') throw bad('a shard entry is not [name, length]');
    return [s[0], take(s[1])];
  });
  if (at !== skeleton.length) throw bad('bytes after its last part');
  return { index, shards };
}

/**
 * Write the index (asked for first, under its own name) and then each shard through `sinkFor`,
 * closing each file once written.
 */
export async function rebuildShardedFiles(
  skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sinkFor: (path: string) => Promise<ByteSink>, indexName = 'model' + SHARD_INDEX_SUFFIX,
): Promise<void> {
  const { index, shards } = decode(skeleton);
  const head = await sinkFor(indexName);
  await head.write(index);
  await head.close();
  for (const [name, skel] of shards) {
    const sink = await sinkFor(name);
    await safetensors.rebuild(skel, tensor, sink);
    await sink.close();
  }
}

const refuse = (what: string) => (): never => {
  throw new ArgumentError(`${what} a sharded safetensors model this way is not supported: open it by its index (openSharded) and write a single .safetensors, or merge into the first model`);
};

/**
 * The sharded model as a multi-file format for writing a merge into the first model (its
 * `rebuildFiles`); it is not registered, since a model is opened by its index, not sniffed.
 */
export const shardedSafetensors: CheckpointFormat & {
  rebuildFiles: typeof rebuildShardedFiles;
  writeFiles: () => Promise<void>;
} = {
  id: SHARDED_FORMAT_ID,
  extensions: [],
  sniff: () => false,
  open: refuse('opening'),
  rebuild: refuse('rebuilding into one file'),
  write: refuse('writing'),
  rebuildFiles: rebuildShardedFiles,
  writeFiles: refuse('writing new tensors as'),
};
