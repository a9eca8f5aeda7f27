/**
 * A cheaper form of clean's recipe check (exact.ts). The whole-file check rebuilds every byte, so
 * it reads back the object of every tensor: on a 0.28 GB model with 3 of 52 tensors changed that
 * was a third of `git theta add`'s time.
 *
 * Here both sides are digested in segments instead: the bytes a format's reader consumes outside
 * any tensor's `chunks()` (its structure: headers, padding) are hashed as they pass, and each
 * tensor's run is recorded as (where in the structure it sits, its length, its content hash). On
 * the rebuild side, a format's `rebuild` gets each tensor's pieces as arrays it can tell apart by
 * identity. A tensor whose bytes are known gets views of zeros of the right length (nothing is
 * read), with its entry's content hash: an unchanged tensor (its entry is the previous version's,
 * which checkout checks its rebuilt bytes against every time) and one this clean stored dense (its
 * object is the very bytes hashed, under their SHA-256, which every read checks). Any other tensor
 * (a sparse, low-rank or ia3 step) gets its real rebuilt bytes, hashed as written. Anything written
 * that is not such a piece is structure. So what this check proves is the layout: the structure
 * bytes, and which tensor's bytes go where, and the update steps' arithmetic.
 *
 * Only formats that promise `verbatimTensors` (types.ts) take this path: their tensors' bytes are
 * the file's bytes where the run is recorded, and their rebuild writes the pieces as given. For
 * them the two digests agree only when the rebuild puts the same structure bytes, and the same
 * tensors at the same places with the same lengths and content, as the input had. They can
 * disagree without the rebuild being wrong (e.g. a rebuild that copies pieces into a buffer of its
 * own): the caller then runs the whole-file check, which decides. A reader that hands out more or
 * fewer bytes for a tensor than it consumed meanwhile (read-ahead, compression) gives no digest.
 *
 * Read-ahead given back: the input's reader offers `unread` (io.ts). A format that parses its
 * header in blocks (GGUF reads up to 64 KiB past it, into the first tensor) gives the bytes past
 * the header back; they are taken out of the structure (its latest bytes, up to
 * `STRUCTURE_WINDOW`, are held unhashed for that, and must be the very bytes given back), and
 * count as whatever reads them next: the first tensor's. So `reader.position` before a tensor is
 * that tensor's offset in the input. Anything else (more given back than the window holds, bytes
 * that were not the latest read, bytes given back during a tensor's run or never read again)
 * gives no digest.
 */
import { concat, type ByteReader, type ByteSink } from '../core/io.ts';
import type { ContentHasher, Kernels } from '../core/kernels.ts';
import { ThetaError } from '../core/errors.ts';
import type { CheckpointFormat } from '../formats/types.ts';
import type { UpdateStore } from '../updates/types.ts';
import type { ModelMetadata } from './metadata.ts';
import { rebuildTensor } from './rebuild.ts';
import { readSkeleton } from './skeleton.ts';

/** The latest structure bytes a reader may give back: held unhashed, at most this many (plus one read's worth). */
export const STRUCTURE_WINDOW = 1 << 20;

/** Structure hashed as it passes, tensor runs recorded: one side's digest. */
class SegmentDigest {
  readonly #structure: ContentHasher;
  #structureBytes = 0;
  #runBytes = 0;
  readonly #runs: string[] = [];
  // the latest structure bytes, copied and not hashed yet (only with a window)
  #tail: Uint8Array[] = [];
  #tailBytes = 0;
  constructor(kernels: Kernels, private readonly window = 0) {
    this.#structure = kernels.contentHasher();
  }
  structure(b: Uint8Array): void {
    this.#structureBytes += b.length;
    if (!this.window) {
      this.#structure.update(b);
      return;
    }
    // keep the last `window` bytes of what passes (a copy: a reader may reuse its views)
    if (b.length > this.window) {
      this.#flush();
      this.#structure.update(b.subarray(0, b.length - this.window));
      b = b.subarray(b.length - this.window);
    }
    this.#tail.push(b.slice());
    this.#tailBytes += b.length;
    while (this.#tailBytes - this.#tail[0].length >= this.window) {
      const first = this.#tail.shift()!;
      this.#structure.update(first);
      this.#tailBytes -= first.length;
    }
  }
  /** Take the latest structure bytes out again, when they are these bytes; false (nothing taken) otherwise. */
  retract(b: Uint8Array): boolean {
    if (b.length > this.#tailBytes) return false;
    const held = concat(this.#tail, this.#tailBytes);
    const keep = held.length - b.length;
    for (let i = 0; i < b.length; i++) if (held[keep + i] !== b[i]) return false;
    this.#tail = keep ? [held.subarray(0, keep)] : [];
    this.#tailBytes = keep;
    this.#structureBytes -= b.length;
    return true;
  }
  #flush(): void {
    for (const part of this.#tail) this.#structure.update(part);
    this.#tail = [];
    this.#tailBytes = 0;
  }
  /** A tensor's run at the current place in the structure (empty runs leave no trace on either side). */
  run(length: number, hash: string): void {
    // structure before a run is settled: nothing before it can be given back
    this.#flush();
    if (length === 0) return;
    this.#runs.push(`${this.#structureBytes}:${length}:${hash}`);
    this.#runBytes += length;
  }
  get size(): number {
    return this.#structureBytes + this.#runBytes;
  }
  digest(): string {
    this.#flush();
    return `${this.#structureBytes}/${this.#structure.digest()}/${this.#runs.join(',')}`;
  }
}

/** The input side: wrap the reader a format opens, tell it where each tensor's bytes are read. */
export interface SegmentedInput {
  /** The reader to give the format: it sees every byte the format consumes. */
  readonly reader: ByteReader;
  /** The bytes consumed from now until `endTensor` are one tensor's. */
  beginTensor(): void;
  /** That tensor's run ends: `length` bytes were handed out, with this content hash. */
  endTensor(length: number, hash: string): void;
  /** The segmented digest, or null when a tensor's consumed bytes were not the bytes handed out (compressed). */
  digest(): string | null;
}

export function segmentedInput(inner: ByteReader, kernels: Kernels): SegmentedInput {
  const d = new SegmentDigest(kernels, STRUCTURE_WINDOW);
  let inTensor = false;
  let consumed = 0;
  let usable = true;
  // bytes given back (unread), served before the inner reader's
  let back: Uint8Array = new Uint8Array(0);
  const seen = (b: Uint8Array) => {
    if (inTensor) consumed += b.length;
    else d.structure(b);
    return b;
  };
  const fromBack = (n: number) => {
    const out = back.subarray(0, n);
    back = back.subarray(n);
    return out;
  };
  const readExactly = async (n: number): Promise<Uint8Array> => {
    if (!back.length) return seen(await inner.readExactly(n));
    if (n <= back.length) return seen(fromBack(n));
    const first = fromBack(back.length);
    return seen(concat([first, await inner.readExactly(n - first.length)], n));
  };
  const reader: ByteReader = {
    get name() { return inner.name; },
    get size() { return inner.size; },
    get position() { return inner.position - back.length; },
    readExactly,
    async readUpTo(n) { return seen(back.length ? fromBack(Math.max(0, n)) : await inner.readUpTo(n)); },
    async skip(n) {
      // skipped bytes are part of what the rebuild must give back: read and account them
      let left = n;
      while (left > 0) left -= (await readExactly(Math.min(left, 1 << 20))).length;
    },
    unread(b) {
      if (!b.length) return;
      // only the structure's latest bytes can be given back: a tensor's, already handed out, cannot
      if (inTensor || !d.retract(b)) usable = false;
      back = back.length ? concat([b, back]) : b.slice();
    },
    close: () => inner.close(),
  };
  return {
    reader,
    beginTensor() {
      inTensor = true;
      consumed = 0;
    },
    endTensor(length, hash) {
      inTensor = false;
      if (consumed !== length) usable = false;
      d.run(length, hash);
    },
    // bytes given back and never read again were not accounted for
    digest: () => (usable && !inTensor && !back.length ? d.digest() : null),
  };
}

const ZEROS = new Uint8Array(1 << 20);

/**
 * Rebuild `metadata` through `format.rebuild` into a digesting sink, the tensors named in `known`
 * as zeros of their length with their entries' hashes, the others from the store. Returns the
 * segmented digest and the rebuilt size.
 */
export async function segmentedRebuild(o: {
  metadata: ModelMetadata; format: CheckpointFormat; store: UpdateStore; kernels: Kernels; known: ReadonlySet<string>;
}): Promise<{ digest: string; size: number }> {
  const d = new SegmentDigest(o.kernels);
  // the pieces handed to the format, by identity: whose they are
  const pieces = new WeakMap<Uint8Array, { name: string; hasher: ContentHasher | null; hash: string | null }>();
  let run: { owner: { name: string; hasher: ContentHasher | null; hash: string | null }; length: number } | null = null;
  const endRun = () => {
    if (!run) return;
    d.run(run.length, run.owner.hash ?? run.owner.hasher!.digest());
    run = null;
  };
  const sink: ByteSink = {
    async write(b) {
      const owner = pieces.get(b);
      if (!owner) {
        endRun();
        d.structure(b);
        return;
      }
      if (run && run.owner !== owner) endRun();
      run ??= { owner, length: 0 };
      run.length += b.length;
      owner.hasher?.update(b);
    },
    async close() {},
  };
  const skeleton = await readSkeleton(o.metadata, o.store, o.kernels);
  await o.format.rebuild(
    skeleton,
    async function* (name: string) {
      const entry = o.metadata.tensors[name];
      if (!entry) throw new ThetaError('E_METADATA', `the file's layout names tensor '${name}' but the metadata has no entry for it`, { tensor: name });
      if (o.known.has(name)) {
        const owner = { name, hasher: null, hash: entry.hash };
        for (let off = 0; off < entry.bytes; off += ZEROS.length) {
          const piece = ZEROS.subarray(0, Math.min(ZEROS.length, entry.bytes - off));
          pieces.set(piece, owner);
          yield piece;
        }
        return;
      }
      const owner = { name, hasher: o.kernels.contentHasher(), hash: null };
      const bytes = await rebuildTensor(name, entry, o.store, o.kernels);
      for (let off = 0; off < bytes.length; off += 1 << 20) {
        const piece = bytes.subarray(off, Math.min(bytes.length, off + (1 << 20)));
        pieces.set(piece, owner);
        yield piece;
      }
    },
    sink,
  );
  endRun();
  return { digest: d.digest(), size: d.size };
}
