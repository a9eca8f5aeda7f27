/**
 * Which tracked paths are TF.js weight shards. `git theta track <model.json or dir>` writes
 * `theta-format=tfjs-shard` next to the filter, but a shard can also be bound by a plain glob
 * (`git theta track 'web/*.bin'`): clean then recognises it by the manifest nearby that lists it and
 * records `"format": "tfjs-shard"` in its metadata. Both count here, so diff and log put such
 * shards back together into their model as they do for shards bound by `track <model.json>`.
 */
import { TFJS_SHARD_FORMAT_ID } from '../../formats/tfjs-shard.ts';
import { batchReadBlob } from '../git/git-batch.ts';
import type { ThetaRepo } from './theta-repo.ts';

const blobSpec = (rev: string, path: string) => `${rev === ':' ? '' : rev}:${path}`;

/**
 * The paths among `paths` that are TF.js shards: by their `theta-format` attribute, or (filter=theta
 * with no format attribute) by the format their metadata records in the index or at one of `revs`.
 */
export async function tfjsShardsAmong(repo: ThetaRepo, paths: string[], revs: string[] = []): Promise<Set<string>> {
  const attrs = await repo.attributes(paths);
  const out = new Set<string>();
  for (const p of paths) {
    const a = attrs.get(p)!;
    if (a.format === TFJS_SHARD_FORMAT_ID) out.add(p);
    else if (a.filter === 'theta' && a.format === 'unspecified' && (await recordedAsShard(repo, p, revs))) out.add(p);
  }
  return out;
}

/** The format line of git-theta metadata (its second line), read without parsing the whole document. */
const FORMAT_LINE = /^\{\n "git-theta": \d+,\n "format": "([^"]*)",/;

async function recordedAsShard(repo: ThetaRepo, path: string, revs: string[]): Promise<boolean> {
  for (const rev of new Set([':', ...revs])) {
    const blob = await batchReadBlob(repo.root, blobSpec(rev, path)).catch(() => null);
    if (!blob) continue;
    const m = FORMAT_LINE.exec(new TextDecoder().decode(blob.subarray(0, 128)));
    return m?.[1] === TFJS_SHARD_FORMAT_ID;
  }
  return false;
}
