/**
 * A seeded, structure-aware mutation fuzzer for the checkpoint readers (runtime-neutral: used by
 * the Node suite, test/node/fuzz.test.ts, and by `npm run fuzz`, scripts/fuzz.mjs).
 *
 * Each case: a small valid seed file of the format (made by our writers), mutated by one to four
 * operations chosen by a seeded PRNG (same seed, same cases, on every runtime):
 *   - bytes: flip a bit, set a byte to an edge value, insert / delete / duplicate a run, truncate;
 *   - integers: write an edge value (0, -1, 2^31, 2^32, 2^53, sizes ± 1) as u16/u32/u64 at a
 *     field the format defines (zip header fields, GGUF counts, lengths, types, dims and offsets,
 *     the safetensors header length, the .npy header length) or at any aligned offset;
 *   - text: replace a number in a JSON header (safetensors, .npy dict, model.json) with an edge
 *     value, put control characters or a very long run into a string, or duplicate a key;
 *   - opcodes: set a byte of a pickle (PyTorch data.pkl) to a pickle opcode;
 * and, for zips, the CRC-32s recomputed half of the time so that mutations of a member's content
 * reach the member's parser (the unpickler, the .npy reader) instead of stopping at the CRC.
 *
 * Then the case is opened, every tensor read (bytes() or chunks()), and an accepted file rebuilt
 * from its skeleton and tensors, which must give back the same bytes. Outcomes: 'ok' (accepted and
 * rebuilt exactly), 'typed' (a ThetaError), 'untyped' (any other error), 'mismatch' (accepted
 * but not rebuilt exactly), 'hang' (over the time limit).
 */
import { ThetaError } from '../../src/core/errors.ts';
import { crc32 } from '../../src/core/crc32.ts';
import { memorySink, readerFromBytes, type ByteSink } from '../../src/core/io.ts';
import { writeGguf } from '../../src/formats/gguf.ts';
import { writeNpy, writeNpz } from '../../src/formats/numpy.ts';
import { writePytorch } from '../../src/formats/pytorch.ts';
import { getFormat } from '../../src/formats/index.ts';
import { openTfjs, rebuildTfjs, writeTfjs } from '../../src/formats/tfjs.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';

export const FUZZ_FORMATS = ['safetensors', 'pytorch', 'numpy', 'npz', 'gguf', 'tfjs'] as const;
export type FuzzFormat = (typeof FUZZ_FORMATS)[number];
export type Outcome = 'ok' | 'typed' | 'untyped' | 'mismatch' | 'hang';

/** xorshift128+ as a PRNG: fast, seeded, identical in every runtime. */
export class Rng {
  private a: bigint;
  private b: bigint;
  constructor(seed: number) {
    this.a = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + 1n);
    this.b = BigInt.asUintN(64, (BigInt(seed) ^ 0x5deece66dn) * 0xbf58476d1ce4e5b9n + 7n);
    for (let i = 0; i < 8; i++) this.next();
  }
  next(): number {
    let s1 = this.a;
    const s0 = this.b;
    this.a = s0;
    s1 ^= BigInt.asUintN(64, s1 << 23n);
    this.b = s1 ^ s0 ^ (s1 >> 17n) ^ (s0 >> 26n);
    return Number(BigInt.asUintN(64, this.b + s0) >> 11n) / 2 ** 53;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
}

// ---------------------------------------------------------------- seeds

function tensors(rng: Rng): TensorToWrite[] {
  const n = 1 + rng.int(3);
  const out: TensorToWrite[] = [];
  for (let i = 0; i < n; i++) {
    const shape = rng.int(4) === 0 ? [] : rng.int(2) ? [1 + rng.int(6)] : [1 + rng.int(4), 1 + rng.int(4)];
    const dtype = rng.pick(['F32', 'F16', 'I32', 'U8'] as const);
    const size = { F32: 4, F16: 2, I32: 4, U8: 1 }[dtype];
    const data = new Uint8Array(shape.reduce((a, b) => a * b, 1) * size);
    for (let k = 0; k < data.length; k++) data[k] = rng.int(256);
    out.push({ name: `layer${i}.${rng.pick(['weight', 'bias', 'w'])}`, dtype, shape, data });
  }
  return out;
}

async function bytesOf(write: (sink: ByteSink) => Promise<void>): Promise<Uint8Array> {
  const sink = memorySink();
  await write(sink);
  return sink.bytes();
}

/** A TF.js case: model.json and its shards. */
export interface TfjsCase { modelJson: Uint8Array; shards: Map<string, Uint8Array> }

async function tfjsSeed(rng: Rng): Promise<TfjsCase> {
  const shards = new Map<string, Uint8Array>();
  const sinks = new Map<string, ReturnType<typeof memorySink>>();
  const ts = tensors(rng).map((t) => ({ ...t, dtype: t.dtype === 'F16' || t.dtype === 'U8' ? ('F32' as const) : t.dtype, data: new Uint8Array(t.data.length * (t.dtype === 'F16' ? 2 : t.dtype === 'U8' ? 4 : 1)) }));
  await writeTfjs(ts, async (p) => { const s = memorySink(); sinks.set(p, s); return s; }, { shardBytes: 16 + rng.int(64) });
  for (const [p, s] of sinks) if (p !== 'model.json') shards.set(p, s.bytes());
  return { modelJson: sinks.get('model.json')!.bytes(), shards };
}

export async function seedFor(format: FuzzFormat, rng: Rng): Promise<Uint8Array | TfjsCase> {
  const ts = tensors(rng);
  switch (format) {
    case 'safetensors': return bytesOf((s) => getFormat('safetensors').write(ts, s, rng.int(2) ? { metadata: { note: 'x' } } : undefined));
    case 'pytorch': return bytesOf((s) => writePytorch(ts, s, { container: rng.int(2) ? 'OrderedDict' : 'dict' }));
    case 'numpy': return bytesOf((s) => writeNpy(ts[0], s, { fortranOrder: rng.int(3) === 0, bigEndian: rng.int(3) === 0 }));
    case 'npz': return bytesOf((s) => writeNpz(ts, s, { compress: rng.int(2) === 0 }));
    case 'gguf': return bytesOf((s) => writeGguf(ts.filter((t) => t.dtype !== 'U8'), s, { metadata: { 'general.name': 'fuzz' }, alignment: rng.pick([8, 32]) }));
    case 'tfjs': return tfjsSeed(rng);
  }
}

// ---------------------------------------------------------------- where the fields are

interface Field { at: number; size: 1 | 2 | 4 | 8 }

const u16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
const u64 = (b: Uint8Array, at: number) => u32(b, at) + u32(b, at + 4) * 2 ** 32;

/** Zip header fields: every local header, descriptor, central header, end record. */
function zipFields(b: Uint8Array): Field[] {
  const f: Field[] = [];
  for (let i = 0; i + 4 <= b.length; i++) {
    if (b[i] !== 0x50 || b[i + 1] !== 0x4b) continue;
    const sig = u32(b, i);
    if (sig === 0x04034b50 && i + 30 <= b.length) {
      f.push({ at: i + 6, size: 2 }, { at: i + 8, size: 2 }, { at: i + 14, size: 4 }, { at: i + 18, size: 4 }, { at: i + 22, size: 4 }, { at: i + 26, size: 2 }, { at: i + 28, size: 2 });
    } else if (sig === 0x02014b50 && i + 46 <= b.length) {
      for (const [o, s] of [[8, 2], [10, 2], [16, 4], [20, 4], [24, 4], [28, 2], [30, 2], [32, 2], [42, 4]] as const) f.push({ at: i + o, size: s });
    } else if (sig === 0x06054b50 && i + 22 <= b.length) {
      for (const [o, s] of [[8, 2], [10, 2], [12, 4], [16, 4], [20, 2]] as const) f.push({ at: i + o, size: s });
    } else if (sig === 0x06064b50 && i + 56 <= b.length) {
      for (const o of [24, 32, 40, 48]) f.push({ at: i + o, size: 8 });
    } else if (sig === 0x07064b50 && i + 20 <= b.length) {
      f.push({ at: i + 8, size: 8 });
    } else if (sig === 0x08074b50 && i + 16 <= b.length) {
      f.push({ at: i + 4, size: 4 }, { at: i + 8, size: 4 });
    }
  }
  // zip64 extra fields (id 1) hold 8-byte sizes and offsets
  for (let i = 0; i + 4 <= b.length; i++) if (b[i] === 1 && b[i + 1] === 0 && (u16(b, i + 2) === 8 || u16(b, i + 2) === 16 || u16(b, i + 2) === 24)) for (let k = 0; k < u16(b, i + 2); k += 8) f.push({ at: i + 4 + k, size: 8 });
  return f;
}

/** GGUF: the counts, then every string length, value type, dimension count, dimension, ggml type and offset. */
function ggufFields(b: Uint8Array): Field[] {
  const f: Field[] = [{ at: 4, size: 4 }, { at: 8, size: 8 }, { at: 16, size: 8 }];
  if (b.length < 24) return f;
  const nt = u64(b, 8);
  const nkv = u64(b, 16);
  let p = 24;
  const str = () => { f.push({ at: p, size: 8 }); const n = u64(b, p); p += 8 + n; };
  const sizes: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  try {
    for (let k = 0; k < nkv && k < 64 && p < b.length; k++) {
      str();
      f.push({ at: p, size: 4 });
      const type = u32(b, p);
      p += 4;
      if (type === 8) str();
      else if (type === 9) { f.push({ at: p, size: 4 }, { at: p + 4, size: 8 }); return f; }
      else p += sizes[type] ?? 0;
    }
    for (let k = 0; k < nt && k < 64 && p < b.length; k++) {
      str();
      f.push({ at: p, size: 4 });
      const nd = u32(b, p);
      p += 4;
      for (let d = 0; d < nd && d < 8; d++) { f.push({ at: p, size: 8 }); p += 8; }
      f.push({ at: p, size: 4 }, { at: p + 4, size: 8 });
      p += 12;
    }
  } catch {
    /* a seed is well formed; a guess past the end is harmless */
  }
  return f.filter((x) => x.at + x.size <= b.length);
}

function fieldsOf(format: FuzzFormat, b: Uint8Array): Field[] {
  switch (format) {
    case 'pytorch': case 'npz': return zipFields(b);
    case 'gguf': return ggufFields(b);
    case 'safetensors': return [{ at: 0, size: 8 }];
    case 'numpy': return [{ at: 6, size: 1 }, { at: 7, size: 1 }, { at: 8, size: 2 }, { at: 8, size: 4 }];
    default: return [];
  }
}

// ---------------------------------------------------------------- mutations

const EDGE = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, 2 ** 62, 2 ** 64 - 1];
const EDGE_TEXT = ['0', '-1', '1e308', '4294967296', '9007199254740993', '18446744073709551616', '2147483648', '1.5', 'null', '[]', '{}', '"x"', 'NaN'];
const PICKLE_OPCODES = [0x80, 0x7d, 0x28, 0x58, 0x8c, 0x94, 0x71, 0x68, 0x72, 0x6a, 0x63, 0x93, 0x52, 0x81, 0x62, 0x74, 0x85, 0x86, 0x87, 0x29, 0x5d, 0x65, 0x4b, 0x4d, 0x4a, 0x8a, 0x49, 0x88, 0x89, 0x4e, 0x2e, 0x30, 0x31, 0x32, 0x75, 0x73, 0x61, 0x51, 0x8e, 0x42, 0x43, 0x95, 0x96, 0x97, 0x44, 0x67, 0x70, 0x64];

function writeInt(b: Uint8Array, at: number, size: number, v: number): void {
  let x = Number.isFinite(v) && v >= 0 ? BigInt.asUintN(64, BigInt(Math.floor(Math.min(v, 2 ** 64 - 1)))) : 0n;
  for (let k = 0; k < size && at + k < b.length; k++) { b[at + k] = Number(x & 0xffn); x >>= 8n; }
}

function splice(b: Uint8Array, at: number, del: number, ins: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length - del + ins.length);
  out.set(b.subarray(0, at));
  out.set(ins, at);
  out.set(b.subarray(at + del), at + ins.length);
  return out;
}

/** Spans of JSON-ish text (safetensors header, .npy dict, model.json): where numbers and strings are. */
function textTokens(b: Uint8Array): { numbers: [number, number][]; strings: [number, number][] } {
  const numbers: [number, number][] = [];
  const strings: [number, number][] = [];
  const limit = Math.min(b.length, 1 << 16);
  for (let i = 0; i < limit; i++) {
    const c = b[i];
    if (c === 0x22) {
      let j = i + 1;
      while (j < limit && b[j] !== 0x22) j++;
      if (j < limit) strings.push([i + 1, j]);
      i = j;
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
      let j = i + 1;
      while (j < limit && ((b[j] >= 0x30 && b[j] <= 0x39) || b[j] === 0x2e || b[j] === 0x65)) j++;
      if (i > 0 && (b[i - 1] === 0x20 || b[i - 1] === 0x3a || b[i - 1] === 0x2c || b[i - 1] === 0x5b || b[i - 1] === 0x28)) numbers.push([i, j]);
      i = j - 1;
    }
  }
  return { numbers, strings };
}

const enc = new TextEncoder();

function mutateOnce(format: FuzzFormat, b: Uint8Array, rng: Rng): Uint8Array {
  if (!b.length) return new Uint8Array([rng.int(256)]);
  const op = rng.int(12);
  const at = rng.int(b.length);
  switch (op) {
    case 0: { const c = b.slice(); c[at] ^= 1 << rng.int(8); return c; }
    case 1: { const c = b.slice(); c[at] = rng.pick([0, 0xff, 0x7f, 0x80, 0x0a, 0x22, 0x5c]); return c; }
    case 2: return b.subarray(0, rng.int(b.length)); // truncate
    case 3: return splice(b, at, Math.min(b.length - at, 1 + rng.int(16)), new Uint8Array(0)); // delete
    case 4: { const ins = new Uint8Array(1 + rng.int(16)); for (let k = 0; k < ins.length; k++) ins[k] = rng.int(256); return splice(b, at, 0, ins); }
    case 5: { const n = Math.min(b.length - at, 1 + rng.int(64)); return splice(b, rng.int(b.length), 0, b.slice(at, at + n)); } // duplicate a run
    case 6: case 7: case 8: {
      // an edge value into a field of the format (or an aligned offset)
      const fields = fieldsOf(format, b);
      const c = b.slice();
      const f: Field = fields.length && op !== 8 ? rng.pick(fields) : { at: at & ~3, size: rng.pick([2, 4, 8] as const) };
      const here = f.size === 8 ? u64(c, f.at) : f.size === 4 ? u32(c, f.at) : f.size === 2 ? u16(c, f.at) : c[f.at];
      writeInt(c, f.at, f.size, rng.pick([...EDGE, here + 1, here - 1, here * 2, here + b.length, 2 ** (8 * f.size) - 1 - rng.int(4)]));
      return c;
    }
    case 9: case 10: {
      const { numbers, strings } = textTokens(b);
      if (op === 9 && numbers.length) {
        const [s, e] = rng.pick(numbers);
        return splice(b, s, e - s, enc.encode(rng.pick(EDGE_TEXT)));
      }
      if (strings.length) {
        const [s, e] = rng.pick(strings);
        const choice = rng.int(4);
        const ins = choice === 0 ? enc.encode('a\u0000b\nc\r\u001b[2J\u2028') : choice === 1 ? enc.encode('x'.repeat(4096)) : choice === 2 ? new Uint8Array([0xc3, 0x28, 0xff]) : b.slice(s, e);
        return choice === 3 ? splice(b, e, 0, ins) : splice(b, s, e - s, ins);
      }
      return b;
    }
    default: {
      if (format !== 'pytorch') { const c = b.slice(); c[at] = rng.int(256); return c; }
      // a pickle opcode somewhere inside data.pkl
      const name = enc.encode('data.pkl');
      let p = -1;
      for (let i = 0; i + name.length <= b.length && p < 0; i++) if (name.every((x, k) => b[i + k] === x)) p = i + name.length;
      const c = b.slice();
      if (p < 0) { c[at] = rng.int(256); return c; }
      const span = Math.min(c.length - p, 256);
      c[p + rng.int(span)] = rng.pick(PICKLE_OPCODES);
      return c;
    }
  }
}

/** Recompute the CRC-32 of every stored zip member (local header, descriptor, central entry). */
export function fixZipCrcs(b: Uint8Array): Uint8Array {
  const c = b.slice();
  const crcs = new Map<string, number>();
  for (let i = 0; i + 30 <= c.length; i++) {
    if (u32(c, i) !== 0x04034b50) continue;
    const method = u16(c, i + 8);
    const flags = u16(c, i + 6);
    const n = u16(c, i + 26);
    const x = u16(c, i + 28);
    let size = u32(c, i + 18);
    if (method !== 0) continue;
    const start = i + 30 + n + x;
    if (size === 0xffffffff || (flags & 8 && size === 0)) {
      // sizes in a zip64 extra or a descriptor: find the next header instead
      let j = start;
      while (j + 4 <= c.length && ![0x04034b50, 0x02014b50, 0x08074b50].includes(u32(c, j))) j++;
      size = j - start;
    }
    if (start + size > c.length) continue;
    const crc = crc32(c.subarray(start, start + size)) >>> 0;
    const name = new TextDecoder('latin1').decode(c.subarray(i + 30, i + 30 + n));
    crcs.set(name, crc);
    writeInt(c, i + 14, 4, crc);
    const d = start + size;
    if (flags & 8 && d + 8 <= c.length) writeInt(c, u32(c, d) === 0x08074b50 ? d + 4 : d, 4, crc);
  }
  for (let i = 0; i + 46 <= c.length; i++) {
    if (u32(c, i) !== 0x02014b50) continue;
    const n = u16(c, i + 28);
    const crc = crcs.get(new TextDecoder('latin1').decode(c.subarray(i + 46, i + 46 + n)));
    if (crc !== undefined) writeInt(c, i + 16, 4, crc);
  }
  return c;
}

export function mutate(format: FuzzFormat, b: Uint8Array, rng: Rng): Uint8Array {
  let out = b;
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) out = mutateOnce(format, out, rng);
  if ((format === 'pytorch' || format === 'npz') && rng.int(2) === 0) out = fixZipCrcs(out);
  return out;
}

/** The case for (format, seed, index): a seed file, mutated. Deterministic. */
export async function fuzzCase(format: FuzzFormat, seed: number, index: number): Promise<Uint8Array | TfjsCase> {
  const rng = new Rng(seed * 1_000_003 + index);
  const base = await seedFor(format, rng);
  if (base instanceof Uint8Array) return mutate(format, base, rng);
  // TF.js: mostly model.json, sometimes a shard
  if (rng.int(4) === 0 && base.shards.size) {
    const key = rng.pick([...base.shards.keys()]);
    base.shards.set(key, mutate('tfjs', base.shards.get(key)!, rng));
  } else {
    base.modelJson = mutate('tfjs', base.modelJson, rng);
  }
  return base;
}

// ---------------------------------------------------------------- running a case

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Open, read every tensor, rebuild; throws what the reader throws, or a mismatch. */
async function exercise(format: FuzzFormat, input: Uint8Array | TfjsCase, readWhole: boolean): Promise<'ok' | 'mismatch'> {
  const byName = new Map<string, Uint8Array>();
  const take = async (t: { name: string; bytes(): Promise<Uint8Array>; chunks(n?: number): AsyncIterable<Uint8Array> }) => {
    if (readWhole) { byName.set(t.name, (await t.bytes()).slice()); return; }
    const parts: Uint8Array[] = [];
    for await (const p of t.chunks(7)) parts.push(p.slice());
    const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) { all.set(p, o); o += p.length; }
    byName.set(t.name, all);
  };
  if (!(input instanceof Uint8Array)) {
    const shards = input.shards;
    const r = await openTfjs(input.modelJson, { fileName: 'model.json', openShard: async (p) => { const s = shards.get(p); if (!s) throw new ThetaError('E_MISSING_SHARD', `no shard ${p}`); return readerFromBytes(s, p); } });
    for await (const t of r.tensors()) await take(t);
    const skeleton = r.skeleton();
    await r.close();
    const out = new Map<string, ReturnType<typeof memorySink>>();
    await rebuildTfjs(skeleton, async function* (n) { yield byName.get(n)!; }, async (p) => { const s = memorySink(); out.set(p, s); return s; });
    for (const [p, bytes] of shards) {
      const got = out.get(p);
      if (got && !equal(got.bytes(), bytes)) return 'mismatch';
    }
    return 'ok';
  }
  const f = getFormat(format);
  const r = await f.open(readerFromBytes(input, `fuzz.${format}`), { fileName: `fuzz.${format}` });
  const seen = new Set<string>();
  for await (const t of r.tensors()) {
    if (seen.has(t.name)) return 'mismatch'; // two tensors of one name cannot be stored by name
    seen.add(t.name);
    await take(t);
  }
  const skeleton = r.skeleton();
  await r.close();
  const sink = memorySink();
  await f.rebuild(skeleton, async function* (n) { const b = byName.get(n); if (b) yield b; }, sink);
  return equal(sink.bytes(), input) ? 'ok' : 'mismatch';
}

export interface CaseResult { outcome: Outcome; error?: string }

/** Run one case with a time limit (a stall that awaits; a synchronous loop needs the worker watchdog of scripts/fuzz.mjs). */
export async function runCase(format: FuzzFormat, input: Uint8Array | TfjsCase, o: { timeoutMs?: number; readWhole?: boolean } = {}): Promise<CaseResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<CaseResult>((ok) => { timer = setTimeout(() => ok({ outcome: 'hang' }), o.timeoutMs ?? 10_000); });
  const work = exercise(format, input, o.readWhole ?? false).then(
    (r): CaseResult => (r === 'ok' ? { outcome: 'ok' } : { outcome: 'mismatch', error: 'accepted but not rebuilt exactly (or a name repeated)' }),
    (e): CaseResult => (e instanceof ThetaError ? { outcome: 'typed' } : { outcome: 'untyped', error: `${(e as Error)?.name}: ${(e as Error)?.message}`.slice(0, 300) }),
  );
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}

export interface CampaignSummary { format: FuzzFormat; cases: number; ok: number; typed: number; untyped: number; mismatch: number; hang: number; failures: { index: number; outcome: Outcome; error?: string }[] }

/** Cases [from, to) of a campaign, in one process. */
export async function campaign(format: FuzzFormat, seed: number, from: number, to: number, o: { timeoutMs?: number; onCase?: (i: number) => void } = {}): Promise<CampaignSummary> {
  const s: CampaignSummary = { format, cases: 0, ok: 0, typed: 0, untyped: 0, mismatch: 0, hang: 0, failures: [] };
  for (let i = from; i < to; i++) {
    o.onCase?.(i);
    const input = await fuzzCase(format, seed, i);
    const r = await runCase(format, input, { timeoutMs: o.timeoutMs, readWhole: i % 2 === 0 });
    s.cases++;
    s[r.outcome]++;
    if (r.outcome !== 'ok' && r.outcome !== 'typed' && s.failures.length < 50) s.failures.push({ index: i, outcome: r.outcome, error: r.error });
  }
  return s;
}
