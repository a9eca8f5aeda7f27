/**
 * A TF.js model as one model again: its weight shards are tracked file by file (format
 * `tfjs-shard`, see src/formats/tfjs-shard.ts), and this puts their tensors back together into the
 * model.json's weights, each with its name, dtype and shape, for diffs. A weight that lies in one
 * shard is that shard's tensor entry as it is (same hash and LSH); a weight split across shards
 * reads its pieces and joins them, and its hash is the list of the pieces' hashes (so the diff
 * compares bytes when such hashes differ, see `DiffTensor.composite`).
 *
 * The shards must have been cleaned against this very manifest (as `git add` of the directory
 * does): when a shard's entries do not match what the manifest says should be in it, a
 * ShardLayoutError says so and the caller shows the shards one by one instead.
 */
import { ThetaError } from '../core/errors.ts';
import { concat } from '../core/io.ts';
import { dirOf, findTfjsManifest, manifestShardPaths, pieceName, TFJS_SHARD_FORMAT_ID, weightSpans } from '../formats/tfjs-shard.ts';
import { MAX_MODEL_JSON_BYTES, parseTfjsModelJson, type TfjsManifest } from '../formats/tfjs.ts';
import type { FileAccess } from '../formats/types.ts';
import type { DiffTensor } from './diff.ts';
import { byCodePoint, entryObjects, type ModelMetadata, type ObjectRef, type TensorEntry } from './metadata.ts';

export class ShardLayoutError extends ThetaError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('E_SHARD_LAYOUT', message, data);
    this.name = 'ShardLayoutError';
  }
}

export interface TfjsModelSide {
  /** Path of the model.json ('/'-separated, relative to the repository root). */
  manifestPath: string;
  manifest: TfjsManifest;
  /** The git-theta metadata of a shard (a repository-relative path) on this side, or null when there is none. */
  shard(path: string): Promise<ModelMetadata | null>;
}

export type PieceLoader = (shardPath: string, name: string, entry: TensorEntry) => Promise<Uint8Array>;

/** A model's weight as the diff sees it, with the objects that rebuild it (to fetch them in one batch). */
export type TfjsWeight = DiffTensor & { refs: ObjectRef[] };


/** The objects an exact diff of two sides reads: those of weights whose content may differ. */
export function objectsToCompare(older: TfjsWeight[], newer: TfjsWeight[]): ObjectRef[] {
  const before = new Map(older.map((t) => [t.name, t]));
  const out: ObjectRef[] = [];
  for (const b of newer) {
    const a = before.get(b.name);
    if (a && a.hash !== b.hash && a.dtype === b.dtype && a.shape.join() === b.shape.join()) out.push(...a.refs, ...b.refs);
  }
  return out;
}

/** Every shard path the manifest lists, resolved against its directory. */
export function tfjsShardPaths(manifestPath: string, manifest: TfjsManifest): string[] {
  return manifestShardPaths(manifestPath, manifest).flat();
}

/** The model's weights in manifest order, as the diff wants them. */
export async function tfjsModelTensors(side: TfjsModelSide, load: PieceLoader): Promise<TfjsWeight[]> {
  const out: TfjsWeight[] = [];
  const groups = manifestShardPaths(side.manifestPath, side.manifest);
  for (const [gi, g] of side.manifest.groups.entries()) {
    // each shard's range in the group's byte stream, from the sizes recorded in its metadata
    const shards: { path: string; meta: ModelMetadata; start: number; end: number }[] = [];
    let at = 0;
    for (const path of groups[gi]) {
      const meta = await side.shard(path);
      if (!meta) throw new ShardLayoutError(`${side.manifestPath}: its shard ${path} is not stored by git-theta (track it with 'git theta track ${side.manifestPath}')`, { model: side.manifestPath, shard: path });
      if (meta.format !== TFJS_SHARD_FORMAT_ID) throw new ShardLayoutError(`${side.manifestPath}: its shard ${path} is stored as '${meta.format}', not as a TF.js shard`, { model: side.manifestPath, shard: path });
      shards.push({ path, meta, start: at, end: at + meta.size });
      at += meta.size;
    }
    const expected = new Map(shards.map((s) => [s.path, new Set<string>()]));
    for (const [wi, w] of weightSpans(g).entries()) {
      // uint8/uint16 affine-quantized weights are compared on their values (scale and min from this manifest)
      const mq = g.weights[wi].quantization;
      const quant = mq && mq.dtype !== 'float16' ? { quant: { scheme: `tfjs:${mq.dtype}`, shape: w.shape.slice(), scale: mq.scale!, min: mq.min! } } : {};
      if (w.end === w.start) {
        out.push({ name: w.name, dtype: w.dtype, shape: w.shape, ...quant, hash: 'empty', lsh: [], refs: [], load: async () => new Uint8Array(0) });
        continue;
      }
      const pieces: { path: string; name: string; entry: TensorEntry }[] = [];
      for (const s of shards) {
        const from = Math.max(w.start, s.start);
        const to = Math.min(w.end, s.end);
        if (from >= to) continue;
        const name = pieceName(w, from, to);
        const entry = s.meta.tensors[name];
        if (!entry || entry.bytes !== to - from) {
          throw new ShardLayoutError(
            `${side.manifestPath}: shard ${s.path} does not hold '${name}' as this model.json lays it out (the shards were added with a different model.json); run 'git theta add ${dirOf(side.manifestPath) || '.'}' again`,
            { model: side.manifestPath, shard: s.path, tensor: name },
          );
        }
        expected.get(s.path)!.add(name);
        pieces.push({ path: s.path, name, entry });
      }
      const covered = pieces.reduce((n, p) => n + p.entry.bytes, 0);
      if (covered !== w.end - w.start) {
        throw new ShardLayoutError(`${side.manifestPath}: weight '${w.name}' needs ${w.end - w.start} bytes but its shards hold ${covered}`, { model: side.manifestPath, tensor: w.name });
      }
      const refs = pieces.flatMap((p) => entryObjects(p.entry));
      if (pieces.length === 1) {
        const [{ path, name, entry }] = pieces;
        out.push({ name: w.name, dtype: w.dtype, shape: w.shape, ...quant, hash: entry.hash, lsh: quant.quant && !entry.quant ? [] : entry.lsh, update: entry.update, refs, load: () => load(path, name, entry) });
      } else {
        out.push({
          refs,
          name: w.name, dtype: w.dtype, shape: w.shape, ...quant,
          hash: `pieces:${pieces.map((p) => p.entry.hash).join(',')}`,
          lsh: [],
          update: [...new Set(pieces.map((p) => p.entry.update))].join('+'),
          composite: true,
          load: async () => concat(await Promise.all(pieces.map((p) => load(p.path, p.name, p.entry)))),
        });
      }
    }
    // anything else in a shard (other than bytes past the group's end) means another layout
    for (const s of shards) {
      const stray = Object.keys(s.meta.tensors).find((n) => !expected.get(s.path)!.has(n) && !n.startsWith('#extra@'));
      if (stray !== undefined) {
        throw new ShardLayoutError(`${side.manifestPath}: shard ${s.path} holds '${stray}', which this model.json does not put there; run 'git theta add ${dirOf(side.manifestPath) || '.'}' again`, { model: side.manifestPath, shard: s.path, tensor: stray });
      }
    }
  }
  return out;
}


// ---------------------------------------------------------------------------------------------
// Which models a change touches, and one side of a model, over any FileAccess (the work tree, a
// revision through git or isomorphic-git): shared by the CLI's diff and the repository library.

/** A model.json's manifest, or null when the file is missing or not a TF.js manifest. */
export async function readTfjsManifest(files: FileAccess, path: string): Promise<TfjsManifest | null> {
  const bytes = await files.read(path, MAX_MODEL_JSON_BYTES);
  if (!bytes) return null;
  try {
    return parseTfjsModelJson(bytes, path);
  } catch {
    return null;
  }
}

/**
 * The model.json files a change touches: those listing a changed shard (looked up on each side in
 * turn), and changed JSON files that are manifests whose shards are all TF.js shards
 * (`isShard`). Sorted.
 */
export async function tfjsModelsTouched(o: {
  shards: string[]; changed: string[]; sides: FileAccess[]; isShard(path: string): Promise<boolean>;
}): Promise<string[]> {
  const models = new Set<string>();
  for (const s of o.shards) {
    for (const files of o.sides) {
      const hit = await findTfjsManifest(s, files).catch(() => null);
      if (hit) { models.add(hit.path); break; }
    }
  }
  for (const j of o.changed.filter((p) => p.toLowerCase().endsWith('.json'))) {
    for (const files of o.sides) {
      const m = await readTfjsManifest(files, j);
      if (!m) continue;
      const paths = tfjsShardPaths(j, m);
      let all = paths.length > 0;
      for (const p of paths) all &&= await o.isShard(p);
      if (all) models.add(j);
      break;
    }
  }
  return [...models].sort(byCodePoint);
}

/** One side of a model: its weights and shard paths, or null when the model.json is not there. */
export async function tfjsModelAt(
  files: FileAccess, manifestPath: string, shard: TfjsModelSide['shard'], load: PieceLoader,
): Promise<{ tensors: TfjsWeight[]; shards: string[] } | null> {
  const manifest = await readTfjsManifest(files, manifestPath);
  if (!manifest) return null;
  return { tensors: await tfjsModelTensors({ manifestPath, manifest, shard }, load), shards: tfjsShardPaths(manifestPath, manifest) };
}
