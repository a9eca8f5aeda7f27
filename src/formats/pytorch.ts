/**
 * PyTorch checkpoints: the zip format `torch.save` writes by default since PyTorch 1.6.
 *
 * Layout: a zip archive whose entries share one top-level folder (the archive name): `data.pkl`, a
 * protocol-2 pickle of the saved object in which every storage is a persistent id
 * `('storage', torch.FloatStorage, '<key>', 'cpu', numel)`; `data/<key>`, each storage's raw
 * little-endian bytes, stored (not compressed) and 64-byte aligned; `version`, and in newer
 * releases `byteorder` and `.data/...`. Entries carry their CRC and sizes in data descriptors after
 * the data, and the central directory sits at the end.
 *
 * Reading streams. Entries are read in file order from a one-way ByteReader: `data.pkl` comes
 * first, is unpickled by the weights-only unpickler (pickle.ts: an allow-list of globals, nothing
 * executed, every count bounded), and tells us each storage's dtype and size, so the storages that
 * follow can be delimited and handed out without the central directory. The central directory and
 * end records are read last and checked against what the local headers said.
 *
 * Tensor names. Tensors are found by walking the unpickled object in pickle order and joining the
 * keys on the way with '.': a state dict gives its own keys (`layers.0.weight`), a training checkpoint
 * `{"epoch": 7, "model": {...}, "optimizer": {...}}` gives `model.layers.0.weight` and
 * `optimizer.state.0.momentum_buffer`. Non-string keys are written as Python would print them
 * (ints `0`, `True`/`False`/`None`, tuples `(a, b)`); list and tuple items by index; a tensor saved
 * on its own is named `tensor`. A name that repeats (a key containing a dot can collide with a
 * nested path) gets `~2`, `~3`, … appended. A container reached twice (the same dict under two keys)
 * is named under its first path only; tensors inside sets, dict keys or attributes are not named,
 * and their storages' bytes stay in the skeleton (below).
 *
 * Storages, views and tied weights (the unit we yield). Every named tensor is yielded with the
 * contiguous little-endian bytes of its view (what `inspect` and expected.json's SHA-256 describe).
 * - A storage used by exactly one tensor that covers it entirely and contiguously from offset 0 (the
 *   usual state-dict case) is streamed straight from the input in chunks: memory stays at one chunk.
 * - Any other storage (tied weights, slices with a storage offset, transposed or otherwise
 *   non-contiguous views, several tensors sharing one storage) is read whole (memory: that storage),
 *   and each tensor's view is gathered from it. Storage bytes that no named view covers are kept in
 *   the skeleton. Tied weights (the same tensor under two names) are yielded under both names with
 *   `tiedTo` naming the first; their bytes are identical, so a content-addressed store keeps them once.
 * On rebuild each storage is reassembled: skeleton bytes first, then every view's bytes scattered
 * into place in file order (when views overlap and disagree, e.g. one of two tied names was changed,
 * the later name wins), then its CRC-32 is recomputed and patched into the data descriptor and the
 * central directory. Because the original pickle is replayed byte for byte, tying, offsets and strides
 * come back exactly as they were.
 *
 * Skeleton = 'GTPTSK01' + u32 JSON length + JSON {segments, storages} + blob. The blob holds every
 * byte of the file that is not storage data (local headers with their padding, the pickle, the
 * descriptors, `version`/`byteorder`/other entries, the central directory and end records) plus any
 * uncovered storage bytes. Segments list, in file order, raw blob ranges and storages.
 *
 * Strictness: every inconsistency is a FormatError or TruncatedError naming the file (and the zip
 * entry or tensor): forbidden pickle globals, unsafe entry names (`..`, absolute), encrypted or
 * unknown compression, compressed storages (torch.save never writes them), deflated entries past a
 * named inflation limit (zip bombs), storage sizes that disagree with the pickle, views that reach
 * past their storage, CRC mismatches, and central-directory records that disagree with the local
 * headers. The legacy (pre-1.6) format is recognised and refused with the command that converts it.
 *
 * Files: this one reads (open, one streaming pass over the zip, so it stays one function of shared
 * state, hence the length) and registers; pytorch/ holds the limits and types (common.ts), views and
 * naming, the pushback input, the skeleton rebuild and the writer.
 */
import { memoryTensor, DEFAULT_CHUNK_BYTES, streamingTensor } from './read-once.ts';
import { fflate, loadFflate } from './deflate-libs.ts';
import { dtypeSize } from '../core/dtypes.ts';
import { ArgumentError, FormatError } from '../core/errors.ts';
import type { ByteReader } from '../core/io.ts';
import type { CheckpointFormat, OpenOptions } from './types.ts';
import { PyDict, PySet, PyTuple, StorageRef, TensorRef, type PyValue, unpickle } from './pickle.ts';
import { CENTRAL_HEADER_BYTES, FLAG_DESCRIPTOR, FLAG_ENCRYPTED, LOCAL_HEADER_BYTES, METHOD_DEFLATED, METHOD_STORED, SIG_CENTRAL, SIG_DESCRIPTOR, SIG_EOCD, SIG_EOCD64, SIG_LOCAL, SIG_LOCATOR64, crc32, descriptor, extraFields, put32, u16, u32, u64, unsafeEntryName } from './pytorch-zip.ts';
import {
  MAX_ENTRIES, MAX_INFLATED_BYTES, MAX_OTHER_ENTRY_BYTES, MAX_PICKLE_BYTES, MAX_TAIL_BYTES, PYTORCH_FORMAT_ID, SKELETON_MAGIC, U32_MAX,
  type PytorchReader, type PytorchTensor, type Segment, type SkeletonDoc, type StoragePlan, type ViewPlan,
} from './pytorch/common.ts';
import { contiguousStrides, forEachRun, gather, isContiguous, nameTensors, viewNumel } from './pytorch/views.ts';
import { Input } from './pytorch/input.ts';
import { rebuild } from './pytorch/skeleton.ts';
import { write } from './pytorch/write.ts';

export {
  MAX_ENTRIES, MAX_INFLATED_BYTES, MAX_NAME_DEPTH, MAX_OTHER_ENTRY_BYTES, MAX_PICKLE_BYTES, MAX_TAIL_BYTES, PYTORCH_FORMAT_ID,
  type PytorchReader, type PytorchTensor,
} from './pytorch/common.ts';
export { writePytorch, type PytorchWriteOptions } from './pytorch/write.ts';

/** The first bytes of a legacy (pre-1.6, non-zip) torch.save file: a pickled magic number. */
const LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

// ---------------------------------------------------------------------------------------------
// Reading

interface LocalEntry {
  name: string;
  offset: number;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Blob offset of the local header (for CRC patches when the header holds the CRC). */
  headerBlobAt: number;
  headerHasCrc: boolean;
  descriptorCrcBlobAt?: number;
  storage?: StoragePlan;
}

function isLegacy(head: Uint8Array): boolean {
  if (head.length < LEGACY_MAGIC.length) return false;
  for (let i = 0; i < LEGACY_MAGIC.length; i++) if (head[i] !== LEGACY_MAGIC[i]) return false;
  return true;
}

const LEGACY_HINT = 'this is the legacy (pre-1.6) torch.save format; convert it with a recent PyTorch: '
  + 'torch.save(torch.load(path), path, _use_new_zipfile_serialization=True)';

async function open(reader: ByteReader, opts: OpenOptions = {}): Promise<PytorchReader> {
  const file = opts.fileName ?? reader.name;
  const input = new Input(reader, file);
  const fail = (msg: string, extra: { entry?: string; tensor?: string; [k: string]: unknown } = {}) =>
    new FormatError(extra.entry !== undefined && extra.tensor === undefined ? `entry '${extra.entry}': ${msg}` : msg, { file, format: PYTORCH_FORMAT_ID, ...extra });

  const head = await input.peek(LEGACY_MAGIC.length);
  if (head.length === 0) throw input.truncated(4, 0, 0);
  if (isLegacy(head)) throw fail(LEGACY_HINT, { legacy: true });
  if (head.length < 4) throw input.truncated(4, head.length, 0);
  if (u32(head, 0) !== SIG_LOCAL) throw fail('not a torch.save zip archive (it does not start with a zip local header "PK\\x03\\x04")');

  // Skeleton under construction.
  const blobParts: Uint8Array[] = [];
  let blobLen = 0;
  const segments: Segment[] = [];
  const plans: StoragePlan[] = [];
  const addRaw = (b: Uint8Array): number => {
    const at = blobLen;
    if (!b.length) return at;
    const last = segments[segments.length - 1];
    if (last && last[0] === 'r' && last[1] + last[2] === at) last[2] += b.length;
    else segments.push(['r', at, b.length]);
    blobParts.push(b);
    blobLen += b.length;
    return at;
  };
  const addBlobOnly = (b: Uint8Array): number => {
    const at = blobLen;
    blobParts.push(b);
    blobLen += b.length;
    return at;
  };

  const entries: LocalEntry[] = [];
  const byName = new Map<string, LocalEntry>();
  let prefix: string | undefined;
  let object: PyValue = null;
  let storagePlans = new Map<string, StoragePlan>();
  let storageRefs = new Map<string, StorageRef>();
  let tensorCount = 0;

  /** Read one local header; undefined when the next record is not a local header. */
  async function readLocalHeader(): Promise<{ e: LocalEntry; raw: Uint8Array; zip64: boolean } | undefined> {
    const sig = await input.peek(4);
    if (sig.length < 4) throw input.truncated(4, sig.length, input.pos);
    if (u32(sig, 0) !== SIG_LOCAL) return undefined;
    if (entries.length >= MAX_ENTRIES) throw fail(`more than ${MAX_ENTRIES} zip entries`);
    const offset = input.pos;
    const fixed = await input.readExactly(LOCAL_HEADER_BYTES);
    const nameLen = u16(fixed, 26);
    const extraLen = u16(fixed, 28);
    const rest = await input.readExactly(nameLen + extraLen);
    const nameBytes = rest.subarray(0, nameLen);
    let name: string;
    try { name = new TextDecoder('utf-8', { fatal: true }).decode(nameBytes); } catch { throw fail(`zip entry at offset ${offset} has a name that is not UTF-8`); }
    const why = unsafeEntryName(name);
    if (why) throw fail(`unsafe zip entry name ${JSON.stringify(name)}: it ${why}`, { entry: name });
    if (byName.has(name)) throw fail('appears twice in the archive', { entry: name });
    const flags = u16(fixed, 6);
    const method = u16(fixed, 8);
    if (flags & FLAG_ENCRYPTED) throw fail('is encrypted', { entry: name });
    if (method !== METHOD_STORED && method !== METHOD_DEFLATED) throw fail(`uses compression method ${method} (only stored and deflated are supported)`, { entry: name });
    const extras = extraFields(rest.subarray(nameLen));
    if (!extras) throw fail('has a malformed extra field', { entry: name });
    let compressedSize = u32(fixed, 18);
    let size = u32(fixed, 22);
    const z = extras.find((x) => x.id === 0x0001);
    if (z) {
      let at = 0;
      const next = () => {
        if (at + 8 > z.data.length) throw fail('has a zip64 field too short for its 0xFFFFFFFF sizes', { entry: name });
        const v = u64(z.data, at);
        at += 8;
        if (Number.isNaN(v)) throw fail('has a zip64 size past 2^53', { entry: name });
        return v;
      };
      if (size === U32_MAX) size = next();
      if (compressedSize === U32_MAX) compressedSize = next();
    }
    const raw = new Uint8Array(LOCAL_HEADER_BYTES + rest.length);
    raw.set(fixed);
    raw.set(rest, LOCAL_HEADER_BYTES);
    const e: LocalEntry = {
      name, offset, flags, method, crc: u32(fixed, 14), compressedSize, size, headerBlobAt: 0, headerHasCrc: false,
    };
    return { e, raw, zip64: !!z };
  }

  /** Sizes are known from the local header (not deferred to a data descriptor)? */
  const sizesKnown = (e: LocalEntry) => !(e.flags & FLAG_DESCRIPTOR) || e.compressedSize !== 0 || e.size !== 0;

  /** Read and check the data descriptor after an entry's data; returns its CRC. */
  async function readDescriptor(e: LocalEntry, zip64: boolean, compressed: number, size: number): Promise<{ crc: number; raw: Uint8Array }> {
    const sig = await input.readExactly(4, undefined, e.name);
    const hasSig = u32(sig, 0) === SIG_DESCRIPTOR;
    const wide = zip64 || compressed >= U32_MAX || size >= U32_MAX;
    const body = await input.readExactly((hasSig ? 4 : 0) + (wide ? 16 : 8), undefined, e.name);
    const crc = hasSig ? u32(body, 0) : u32(sig, 0);
    const at = hasSig ? 4 : 0;
    const c = wide ? u64(body, at) : u32(body, at);
    const s = wide ? u64(body, at + (wide ? 8 : 4)) : u32(body, at + 4);
    if (c !== compressed || s !== size) {
      throw fail(`data descriptor says ${c} compressed / ${s} bytes but the entry holds ${compressed} / ${size}`, { entry: e.name });
    }
    const raw = new Uint8Array(4 + body.length);
    raw.set(sig);
    raw.set(body, 4);
    return { crc, raw };
  }

  /**
   * Data of an entry whose size the local header does not give (torch writes all entries this
   * way): scan for a data descriptor whose sizes equal the bytes before it and whose CRC matches.
   */
  async function readUnsized(e: LocalEntry, limit: number): Promise<{ data: Uint8Array; crc: number; desc: Uint8Array }> {
    let buf = new Uint8Array(64 << 10);
    let have = 0;
    let searched = 0;
    for (;;) {
      // Look for candidates in what we have.
      for (let p = searched; p + 16 <= have; p++) {
        if (buf[p] !== 0x50 || buf[p + 1] !== 0x4b || buf[p + 2] !== 0x07 || buf[p + 3] !== 0x08) continue;
        let descLen = 0;
        if (u32(buf, p + 8) === p && u32(buf, p + 12) === p) descLen = 16;
        else if (p + 24 <= have && u64(buf, p + 8) === p && u64(buf, p + 16) === p) descLen = 24;
        if (!descLen) continue;
        const data = buf.slice(0, p);
        const crc = crc32(data);
        if (crc !== u32(buf, p + 4)) continue;
        input.unread(buf.slice(p + descLen, have));
        return { data, crc, desc: buf.slice(p, p + descLen) };
      }
      searched = Math.max(0, have - 23);
      if (have > limit + 24) throw fail(`is larger than the ${limit}-byte limit for this kind of entry (or its data descriptor is missing)`, { entry: e.name });
      if (have === buf.length) { const b = new Uint8Array(buf.length * 2); b.set(buf); buf = b; }
      const part = await input.readUpTo(buf.length - have);
      if (!part.length) throw input.truncated(have + 1, have, input.pos - have, undefined, e.name); // no data descriptor before the end
      buf.set(part, have);
      have += part.length;
    }
  }

  /** Inflate with a hard cap (zip bombs): the declared size must be under the limit, and so must the output. */
  function inflateBounded(e: LocalEntry, compressed: Uint8Array, declared: number): Uint8Array {
    if (declared > MAX_INFLATED_BYTES) throw fail(`declares ${declared} inflated bytes, over the ${MAX_INFLATED_BYTES}-byte limit`, { entry: e.name, declared });
    const out = new Uint8Array(declared);
    let at = 0;
    let ended = false;
    const inf = new (fflate().Inflate)((chunk, final) => {
      if (at + chunk.length > declared) throw fail(`inflates past its declared ${declared} bytes (a zip bomb or a lying header)`, { entry: e.name, declared });
      out.set(chunk, at);
      at += chunk.length;
      if (final) ended = true;
    });
    try {
      // Small pieces bound the output of each push (deflate expands at most ~1032:1).
      for (let i = 0; i < compressed.length; i += 4096) inf.push(compressed.subarray(i, Math.min(compressed.length, i + 4096)), i + 4096 >= compressed.length);
      if (compressed.length === 0) inf.push(new Uint8Array(0), true);
    } catch (err) {
      if (err instanceof FormatError) throw err;
      throw fail(`is not valid deflate data (${(err as Error).message})`, { entry: e.name });
    }
    if (!ended || at !== declared) throw fail(`inflates to ${at} bytes but declares ${declared}`, { entry: e.name });
    return out;
  }

  /** A non-storage entry: its bytes (inflated if needed) and everything kept raw in the blob. */
  async function readWholeEntry(e: LocalEntry, zip64: boolean, limit: number): Promise<Uint8Array> {
    let data: Uint8Array;
    let crc: number;
    if (sizesKnown(e)) {
      if (e.compressedSize > limit) throw fail(`is ${e.compressedSize} bytes, over the ${limit}-byte limit for this kind of entry`, { entry: e.name });
      const stored = await input.readExactly(e.compressedSize, undefined, e.name);
      addRaw(stored);
      if (e.method === METHOD_DEFLATED) await loadFflate(); // (imported on first use: deflate-libs.ts)
      data = e.method === METHOD_DEFLATED ? inflateBounded(e, stored, e.size) : stored;
      if (e.method === METHOD_STORED && e.size !== e.compressedSize) throw fail(`is stored but its sizes differ (${e.compressedSize} vs ${e.size})`, { entry: e.name });
      if (e.flags & FLAG_DESCRIPTOR) {
        const d = await readDescriptor(e, zip64, e.compressedSize, e.size);
        addRaw(d.raw);
        crc = d.crc;
        if (e.crc !== 0 && e.crc !== crc) throw fail('local header and data descriptor disagree on the CRC', { entry: e.name });
      } else crc = e.crc;
    } else {
      if (e.method !== METHOD_STORED) throw fail('is deflated with its sizes deferred to a data descriptor; torch.save never writes that', { entry: e.name });
      const r = await readUnsized(e, limit);
      addRaw(r.data);
      addRaw(r.desc);
      data = r.data;
      crc = r.crc;
      e.compressedSize = e.size = data.length;
    }
    if (crc32(data) !== crc) throw fail(`CRC-32 mismatch (the data is corrupt)`, { entry: e.name });
    e.crc = crc;
    return data;
  }

  // --- Entries up to and including data.pkl ---------------------------------------------------
  for (;;) {
    const h = await readLocalHeader();
    if (!h) throw fail('the archive has no data.pkl entry (not a torch.save checkpoint)');
    const { e, raw, zip64 } = h;
    e.headerBlobAt = addRaw(raw);
    entries.push(e);
    byName.set(e.name, e);
    const slash = e.name.indexOf('/');
    const isPickle = slash > 0 && e.name.slice(slash + 1) === 'data.pkl';
    if (!isPickle) {
      if (e.name.slice(slash + 1).startsWith('data/')) throw fail('storage entry comes before data.pkl; torch.save writes data.pkl first', { entry: e.name });
      await readWholeEntry(e, zip64, MAX_OTHER_ENTRY_BYTES);
      continue;
    }
    prefix = e.name.slice(0, slash + 1);
    const pkl = await readWholeEntry(e, zip64, MAX_PICKLE_BYTES);
    const u = unpickle(pkl, { file, entry: e.name });
    if (u.length !== pkl.length) throw fail(`has ${pkl.length - u.length} bytes after the pickle's STOP`, { entry: e.name });
    object = u.value;
    storageRefs = u.storages;
    break;
  }

  // --- Plan: which tensor views each storage has --------------------------------------------
  const named = nameTensors(object, file);
  tensorCount = named.length;
  storagePlans = new Map();
  for (const s of storageRefs.values()) {
    const bytes = s.numel * dtypeSize(s.dtype);
    if (!Number.isSafeInteger(bytes)) throw fail(`storage '${s.key}' declares ${s.numel} elements, too many bytes`, { storage: s.key });
    storagePlans.set(s.key, { key: s.key, dtype: s.dtype, bytes, crcAt: [], views: [], fill: [] });
  }
  const firstName = new Map<TensorRef, string>();
  for (const { name, ref } of named) {
    const plan = storagePlans.get(ref.storage.key)!;
    const es = dtypeSize(plan.dtype);
    const numel = viewNumel(ref.shape);
    const bytes = numel * es;
    if (!Number.isSafeInteger(bytes)) throw fail(`shape ${JSON.stringify(ref.shape)} has too many elements`, { tensor: name });
    if (numel > 0) {
      let last = ref.offset;
      for (let i = 0; i < ref.shape.length; i++) last += (ref.shape[i] - 1) * ref.stride[i];
      if (!Number.isSafeInteger(last) || last >= ref.storage.numel) {
        throw fail(`view (offset ${ref.offset}, size ${JSON.stringify(ref.shape)}, stride ${JSON.stringify(ref.stride)}) reaches element ${last} of storage '${ref.storage.key}', which has ${ref.storage.numel}`, { tensor: name });
      }
    } else if (ref.offset > ref.storage.numel) {
      throw fail(`storage offset ${ref.offset} is past the end of storage '${ref.storage.key}' (${ref.storage.numel} elements)`, { tensor: name });
    }
    const tied = firstName.get(ref);
    if (tied === undefined) firstName.set(ref, name);
    plan.views.push({ name, offset: ref.offset, shape: ref.shape.slice(), stride: ref.stride.slice(), ...(tied !== undefined ? { tiedTo: tied } : {}) });
  }
  const archive = prefix!.slice(0, -1);

  const isDirect = (p: StoragePlan) => {
    if (p.views.length !== 1) return false;
    const v = p.views[0];
    return v.offset === 0 && viewNumel(v.shape) * dtypeSize(p.dtype) === p.bytes && isContiguous(v.shape, v.stride);
  };

  let iterated = false;
  let finished = false;
  let skeletonBytes: Uint8Array | undefined;

  async function* tensors(): AsyncGenerator<PytorchTensor> {
    if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once (the input is read sequentially)`);
    iterated = true;
    const seenStorages = new Set<string>();

    for (;;) {
      const h = await readLocalHeader();
      if (!h) break;
      const { e, raw, zip64 } = h;
      e.headerBlobAt = addRaw(raw);
      entries.push(e);
      byName.set(e.name, e);
      const storageKey = e.name.startsWith(`${prefix}data/`) ? e.name.slice(prefix!.length + 5) : undefined;
      const plan = storageKey !== undefined ? storagePlans.get(storageKey) : undefined;
      if (!plan) {
        // Not a storage data.pkl references (version, byteorder, .data/..., extras): kept raw.
        await readWholeEntry(e, zip64, MAX_OTHER_ENTRY_BYTES);
        continue;
      }
      if (e.method !== METHOD_STORED) throw fail('storage is compressed; torch.save stores storages uncompressed (re-save it with torch.save)', { entry: e.name });
      if (sizesKnown(e) && (e.compressedSize !== plan.bytes || e.size !== plan.bytes)) {
        throw fail(`holds ${e.size} bytes but data.pkl declares ${plan.bytes} for storage '${plan.key}' (${plan.bytes / dtypeSize(plan.dtype)} × ${plan.dtype})`, { entry: e.name, storage: plan.key });
      }
      seenStorages.add(plan.key);
      e.storage = plan;
      e.headerHasCrc = !(e.flags & FLAG_DESCRIPTOR) || e.crc !== 0;
      if (e.headerHasCrc) plan.crcAt.push(e.headerBlobAt + 14);
      segments.push(['s', plans.length]);
      plans.push(plan);
      const es = dtypeSize(plan.dtype);

      const finishEntry = async (crc: number | undefined) => {
        let fileCrc = e.crc;
        if (e.flags & FLAG_DESCRIPTOR) {
          const d = await readDescriptor(e, zip64, plan.bytes, plan.bytes);
          const at = addRaw(d.raw);
          plan.crcAt.push(at + (u32(d.raw, 0) === SIG_DESCRIPTOR ? 4 : 0));
          if (e.headerHasCrc && e.crc !== d.crc) throw fail('local header and data descriptor disagree on the CRC', { entry: e.name });
          fileCrc = d.crc;
        }
        e.crc = fileCrc;
        e.compressedSize = e.size = plan.bytes;
        if (crc !== undefined && crc !== fileCrc) throw fail(`CRC-32 mismatch: the storage data is corrupt (crc ${crc.toString(16)}, recorded ${fileCrc.toString(16)})`, { entry: e.name });
      };

      if (isDirect(plan)) {
        const v = plan.views[0];
        let crc = 0;
        const dataAt = input.pos;
        const streamed = streamingTensor(file, {
          name: v.name, dtype: plan.dtype, shape: v.shape.slice(), byteLength: plan.bytes,
          storageKey: plan.key, storageOffset: 0, stride: v.stride.slice(),
        }, {
          readUpTo: (max) => input.readUpTo(max),
          truncated: (done) => input.truncated(plan.bytes, done, dataAt, v.name),
          onPart: (part) => { crc = crc32(part, crc); },
        });
        yield streamed.tensor;
        streamed.retire();
        const consumed = streamed.consumed();
        const complete = consumed === plan.bytes;
        if (!complete) await input.skip(plan.bytes - consumed, v.name);
        await finishEntry(complete ? crc : undefined);
        continue;
      }

      // Buffered: the whole storage in memory, each view gathered from it.
      const storage = await input.readExactly(plan.bytes, plan.views[0]?.name, e.name);
      await finishEntry(crc32(storage));
      const covered = new Uint8Array(plan.bytes / es);
      for (const v of plan.views) forEachRun(v, es, (src, _dst, len) => covered.fill(1, src / es, (src + len) / es));
      for (let i = 0; i < covered.length;) {
        if (covered[i]) { i++; continue; }
        let j = i;
        while (j < covered.length && !covered[j]) j++;
        const at = addBlobOnly(storage.slice(i * es, j * es));
        plan.fill.push([i * es, at, (j - i) * es]);
        i = j;
      }
      for (const v of plan.views) {
        const tensor: PytorchTensor = {
          ...memoryTensor(file, { name: v.name, dtype: plan.dtype, shape: v.shape.slice(), byteLength: viewNumel(v.shape) * es }, () => gather(storage, v, es), DEFAULT_CHUNK_BYTES),
          storageKey: plan.key, storageOffset: v.offset, stride: v.stride.slice(), ...(v.tiedTo !== undefined ? { tiedTo: v.tiedTo } : {}),
        };
        yield tensor;
      }
    }

    for (const key of storagePlans.keys()) {
      if (!seenStorages.has(key)) throw fail(`data.pkl references storage '${key}' but the archive has no entry '${prefix}data/${key}'`, { storage: key });
    }
    await readTail();
    finished = true;
  }

  /** Central directory and end records: read to the end, check against the local headers, keep raw. */
  async function readTail(): Promise<void> {
    const cdOffset = input.pos;
    const tail = await input.rest(MAX_TAIL_BYTES, 'the central directory');
    const tailAt = addRaw(tail);
    const bad = (msg: string, extra: Record<string, unknown> = {}) => fail(`central directory: ${msg}`, extra);
    let at = 0;
    const matched = new Set<string>();
    const dec = new TextDecoder('utf-8', { fatal: true });
    while (at + 4 <= tail.length && u32(tail, at) === SIG_CENTRAL) {
      if (at + CENTRAL_HEADER_BYTES > tail.length) throw input.truncated(CENTRAL_HEADER_BYTES, tail.length - at, cdOffset + at);
      const nameLen = u16(tail, at + 28);
      const extraLen = u16(tail, at + 30);
      const commentLen = u16(tail, at + 32);
      const end = at + CENTRAL_HEADER_BYTES + nameLen + extraLen + commentLen;
      if (end > tail.length) throw input.truncated(end - at, tail.length - at, cdOffset + at);
      let name: string;
      try { name = dec.decode(tail.subarray(at + CENTRAL_HEADER_BYTES, at + CENTRAL_HEADER_BYTES + nameLen)); } catch { throw bad(`entry at offset ${cdOffset + at} has a name that is not UTF-8`); }
      const why = unsafeEntryName(name);
      if (why) throw bad(`unsafe zip entry name ${JSON.stringify(name)}: it ${why}`, { entry: name });
      const local = byName.get(name);
      if (!local) throw bad(`names '${name}', which has no local header in the archive`, { entry: name });
      if (matched.has(name)) throw bad(`lists '${name}' twice`, { entry: name });
      matched.add(name);
      let csize = u32(tail, at + 20);
      let usize = u32(tail, at + 24);
      let offset = u32(tail, at + 42);
      const extras = extraFields(tail.subarray(at + CENTRAL_HEADER_BYTES + nameLen, at + CENTRAL_HEADER_BYTES + nameLen + extraLen));
      if (!extras) throw bad(`entry '${name}' has a malformed extra field`, { entry: name });
      const z = extras.find((x) => x.id === 0x0001);
      if (z) {
        let p = 0;
        const next = () => { const v = p + 8 <= z.data.length ? u64(z.data, p) : NaN; p += 8; return v; };
        if (usize === U32_MAX) usize = next();
        if (csize === U32_MAX) csize = next();
        if (offset === U32_MAX) offset = next();
      }
      if (offset !== local.offset) throw bad(`says '${name}' starts at offset ${offset}, but its local header is at ${local.offset}`, { entry: name });
      if (u16(tail, at + 10) !== local.method) throw bad(`compression method of '${name}' differs from its local header`, { entry: name });
      if (csize !== local.compressedSize || usize !== local.size) {
        throw bad(`sizes of '${name}' (${csize}/${usize}) differ from its data (${local.compressedSize}/${local.size})`, { entry: name });
      }
      if (u32(tail, at + 16) !== local.crc) throw bad(`CRC of '${name}' differs from its data descriptor`, { entry: name });
      if (local.storage) local.storage.crcAt.push(tailAt + at + 16);
      at = end;
    }
    // The stream ended inside (or right before) the central directory or the end records.
    if (at + 4 > tail.length) throw input.truncated(22, tail.length - at, cdOffset + at);
    if (matched.size !== entries.length) {
      const missing = entries.find((e) => !matched.has(e.name))!;
      throw bad(`does not list '${missing.name}'`, { entry: missing.name });
    }
    const cdSize = at;
    let zip64End: { at: number; entries: number; size: number; offset: number } | undefined;
    if (at + 4 <= tail.length && u32(tail, at) === SIG_EOCD64) {
      if (at + 56 > tail.length) throw input.truncated(56, tail.length - at, cdOffset + at);
      const recLen = u64(tail, at + 4);
      if (!(recLen >= 44) || recLen > MAX_TAIL_BYTES) throw bad(`zip64 end record length ${recLen} is impossible`);
      if (at + 12 + recLen > tail.length) throw input.truncated(12 + recLen, tail.length - at, cdOffset + at);
      zip64End = { at: cdOffset + at, entries: u64(tail, at + 32), size: u64(tail, at + 40), offset: u64(tail, at + 48) };
      at += 12 + recLen;
      if (at + 20 > tail.length) throw input.truncated(20, tail.length - at, cdOffset + at);
      if (u32(tail, at) !== SIG_LOCATOR64) throw bad('zip64 end record is not followed by its locator');
      if (u64(tail, at + 8) !== zip64End.at) throw bad(`zip64 locator points to offset ${u64(tail, at + 8)}, but the zip64 end record is at ${zip64End.at}`);
      at += 20;
    }
    if (at + 22 > tail.length || u32(tail, at) !== SIG_EOCD) {
      if (at + 4 <= tail.length && u32(tail, at) === SIG_LOCAL) throw bad('a local header follows the central directory (two archives concatenated?)');
      throw input.truncated(22, Math.max(0, tail.length - at), cdOffset + at);
    }
    const commentLen = u16(tail, at + 20);
    if (at + 22 + commentLen !== tail.length) {
      throw bad(at + 22 + commentLen > tail.length ? 'end record comment runs past the end of the file' : `${tail.length - at - 22 - commentLen} bytes follow the end of the archive`);
    }
    let count = u16(tail, at + 10);
    let size = u32(tail, at + 12);
    let offset = u32(tail, at + 16);
    if (zip64End) {
      if (count === 0xffff) count = zip64End.entries;
      if (size === U32_MAX) size = zip64End.size;
      if (offset === U32_MAX) offset = zip64End.offset;
      if (zip64End.entries !== entries.length || zip64End.size !== cdSize || zip64End.offset !== cdOffset) {
        throw bad(`zip64 end record says ${zip64End.entries} entries, ${zip64End.size} bytes at ${zip64End.offset}; the archive has ${entries.length}, ${cdSize} at ${cdOffset}`);
      }
    }
    if (count !== entries.length && !(count === 0xffff && zip64End)) throw bad(`end record says ${count} entries, the archive has ${entries.length}`);
    if (size !== cdSize) throw bad(`end record says the central directory is ${size} bytes, it is ${cdSize}`);
    if (offset !== cdOffset) throw bad(`end record says the central directory starts at ${offset}, it starts at ${cdOffset}`);
  }

  function skeleton(): Uint8Array {
    if (!finished) throw new ArgumentError(`${file}: skeleton() is valid only after tensors() has been iterated to the end`);
    if (skeletonBytes) return skeletonBytes.slice();
    const doc: SkeletonDoc = { v: 1, segments, storages: plans };
    const json = new TextEncoder().encode(JSON.stringify(doc));
    const out = new Uint8Array(SKELETON_MAGIC.length + 4 + json.length + blobLen);
    out.set(new TextEncoder().encode(SKELETON_MAGIC));
    put32(out, 8, json.length);
    out.set(json, 12);
    let at = 12 + json.length;
    for (const p of blobParts) { out.set(p, at); at += p.length; }
    skeletonBytes = out;
    return out.slice();
  }

  void tensorCount;
  return {
    format: PYTORCH_FORMAT_ID,
    archive,
    object,
    metadata: { archive },
    tensors,
    skeleton,
    close: () => reader.close(),
  };
}

/** Open a torch.save (zip) checkpoint from a ByteReader (random-access or one-way). */
export function openPytorch(reader: ByteReader, opts?: OpenOptions): Promise<PytorchReader> {
  return open(reader, opts);
}

// ---------------------------------------------------------------------------------------------
// Sniffing and registration

const TORCH_FIRST_ENTRY = /^[^/]+\/(data\.pkl|\.format_version|\.storage_alignment|byteorder|version|\.data\/)/;

function sniff(head: Uint8Array): boolean {
  if (isLegacy(head)) return true;
  if (head.length < LOCAL_HEADER_BYTES || u32(head, 0) !== SIG_LOCAL) return false;
  const n = u16(head, 26);
  const name = new TextDecoder('latin1').decode(head.subarray(LOCAL_HEADER_BYTES, Math.min(head.length, LOCAL_HEADER_BYTES + n)));
  return name.endsWith('data.pkl') || TORCH_FIRST_ENTRY.test(name);
}

export interface PytorchFormat extends CheckpointFormat {
  open(reader: ByteReader, opts?: OpenOptions): Promise<PytorchReader>;
}

export const pytorch: PytorchFormat = {
  id: PYTORCH_FORMAT_ID,
  extensions: ['.pt', '.pth', '.bin', '.ckpt'],
  sniff,
  open,
  rebuild,
  write,
};


// Re-exported for tests and tools.
export { PyDict, PySet, PyTuple, TensorRef, StorageRef };
