/**
 * Merging checkpoint files outside git (`git theta merge-models`): the same strategies, streaming
 * tensor by tensor. The first model sets the order and the tensor set; the others are read
 * alongside it, and a tensor that comes early in another file is held only until its turn.
 *
 * Two output forms:
 * - `stored: true` (what merge-into-first.ts rebuilds into the first model's skeleton): every
 *   tensor in its stored dtype and layout. Floats are merged in f32 and written back in their own
 *   dtype; quantized tensors are dequantized, merged and requantized into their own scheme (with
 *   the error against the float merge reported); non-float tensors are never averaged.
 * - `stored: false`: quantized tensors that can be dequantized come out as float32 (for a
 *   format's writer, `--keep-float`).
 *
 * Tensor sets may differ: a tensor only the first model has is kept as it is; tensors only other
 * models have are dropped. Both are reported (`onReport`).
 */
import { ArgumentError } from '../core/errors.ts';
import type { Kernels } from '../core/kernels.ts';
import type { MaybeQuantized } from '../formats/convert.ts';
import type { CheckpointReader, StreamedTensor, TensorQuantization, TensorToWrite } from '../formats/types.ts';
import type { StrategyChoice } from './registry.ts';
import { toDtypeBytes } from './strategies/linear.ts';
import { dequantizeBytes as dequantize, f32Bytes, mergeDequantized, requantize } from './requantize.ts';
import { sameQuant } from '../formats/dequantize.ts';

const FLOATS = new Set(['F32', 'F16', 'BF16', 'F64']);

/** What the merge did with one tensor. */
export interface TensorReport {
  name: string;
  /** 'identical', a strategy name, 'ours'/'theirs'/'base' (non-float), 'only-first' (kept), 'dropped' (only in `model`). */
  how: string;
  /** For 'dropped': the model that had it. */
  model?: string;
  /** For requantized tensors: the scheme and the error of the written values against the float merge. */
  scheme?: string;
  maxError?: number;
  rmsError?: number;
}

/** A tensor as read: its header, stored bytes and quantization (if any). */
interface Item {
  t: Pick<StreamedTensor, 'name' | 'dtype' | 'shape'> & { manifestDtype?: string };
  q?: TensorQuantization;
  bytes: Uint8Array;
}

async function readItem(t: MaybeQuantized & { manifestDtype?: string }): Promise<Item> {
  return { t: { name: t.name, dtype: t.dtype, shape: t.shape.slice(), manifestDtype: t.manifestDtype }, q: t.quantization, bytes: await t.bytes() };
}

/** Tensors of a reader by name, in any order, holding early arrivals until asked for. */
class ByName {
  private it: AsyncIterator<StreamedTensor>;
  private held = new Map<string, Item>();
  private done = false;
  constructor(readonly reader: CheckpointReader, readonly label: string) {
    this.it = reader.tensors()[Symbol.asyncIterator]();
  }
  /** The tensor, or null when this file has no such tensor. */
  async get(name: string): Promise<Item | null> {
    const h = this.held.get(name);
    if (h) {
      this.held.delete(name);
      return h;
    }
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) { this.done = true; break; }
      const item = await readItem(r.value);
      if (r.value.name === name) return item;
      this.held.set(r.value.name, item);
    }
    return null;
  }
  /** Names never asked for (extra tensors this file has). */
  async rest(): Promise<string[]> {
    const names = [...this.held.keys()];
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) { this.done = true; break; }
      names.push(r.value.name);
    }
    return names;
  }
}

export type NonFloatChoice = 'ours' | 'theirs' | 'base' | 'fail';

export interface MergeFilesOptions {
  models: { reader: CheckpointReader; label: string }[];
  base?: { reader: CheckpointReader; label: string };
  choice: StrategyChoice;
  kernels: Kernels;
  /** Yield every tensor in its stored dtype and layout (requantizing quantized ones); default false. */
  stored?: boolean;
  /** Integer/bool tensors that differ: take ours (first), theirs (last), base, or fail (default). */
  nonFloat?: NonFloatChoice;
  onTensor?(name: string, how: string): void;
  onReport?(r: TensorReport): void;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** The merged tensors, in the first model's order, one at a time (feed them to a format's write, or to mergeIntoFirst). */
export async function* mergeFiles(o: MergeFilesOptions): AsyncGenerator<TensorToWrite> {
  const { strategy, params } = o.choice;
  if (o.models.length < (strategy.minModels ?? 1)) throw new ArgumentError(`${strategy.name} needs at least ${strategy.minModels} models`);
  if (strategy.maxModels && o.models.length > strategy.maxModels) throw new ArgumentError(`${strategy.name} merges at most ${strategy.maxModels} models`);
  if (strategy.needsBase && !o.base) throw new ArgumentError(`${strategy.name} needs the models' common base: give --base <checkpoint>`);
  if (strategy.name === 'fail') throw new ArgumentError("'fail' leaves conflicts; choose a strategy that produces a model");
  const nonFloat = o.nonFloat ?? 'fail';
  if (nonFloat === 'base' && !o.base) throw new ArgumentError('--non-float base needs the models\' common base: give --base <checkpoint>');
  const report = (r: TensorReport) => {
    if (r.how !== 'dropped') o.onTensor?.(r.name, r.how);
    o.onReport?.(r);
  };
  const others = o.models.slice(1).map((m) => new ByName(m.reader, m.label));
  const base = o.base ? new ByName(o.base.reader, o.base.label) : null;
  for await (const tensor of o.models[0].reader.tensors()) {
    const first = await readItem(tensor);
    const name = first.t.name;
    const got = await Promise.all(others.map((x) => x.get(name)));
    const b = base ? await base.get(name) : null;
    const q = first.q;
    // a dequantizable tensor written by a format's writer goes out as float32
    const asFloat = !o.stored && q?.dequantizer;
    const floatOut = (bytes: Uint8Array): TensorToWrite => ({ name, dtype: 'F32', shape: q!.shape.slice(), data: f32Bytes(dequantize(q!, bytes)!) });
    if (got.some((g) => !g)) {
      report({ name, how: 'only-first' });
      yield asFloat ? floatOut(first.bytes) : { name, dtype: first.t.dtype, shape: first.t.shape, data: first.bytes };
      continue;
    }
    const rest = got as Item[];
    for (const [i, r] of rest.entries()) {
      if (r.t.dtype !== first.t.dtype || r.t.shape.join() !== first.t.shape.join() || r.q?.scheme !== q?.scheme) {
        const desc = (x: Item) => `${x.q ? x.q.scheme : x.t.dtype}[${x.q ? x.q.shape : x.t.shape}]`;
        throw new ArgumentError(`tensor '${name}': ${o.models[0].label} has ${desc(first)} but ${o.models[i + 1].label} has ${desc(r)}`, { tensor: name });
      }
    }
    const models = [first.bytes, ...rest.map((r) => r.bytes)];
    // the same codes read with another TF.js scale or min are other values
    if (models.every((m) => sameBytes(m, first.bytes)) && rest.every((r) => sameQuant(r.q, q))) {
      report({ name, how: 'identical' });
      yield asFloat ? floatOut(first.bytes) : { name, dtype: first.t.dtype, shape: first.t.shape, data: first.bytes };
      continue;
    }
    // integers and bools (TF.js int32 weights stored as uint8 codes included) are never averaged
    const isFloat = q ? !first.t.manifestDtype || first.t.manifestDtype === 'float32' : FLOATS.has(first.t.dtype);
    if (!isFloat && !strategy.anyDtype) {
      if (nonFloat === 'fail') {
        throw new ArgumentError(`tensor '${name}' is ${q ? `${first.t.manifestDtype} (${q.scheme})` : first.t.dtype} and differs between the models; ${strategy.name} merges only float tensors: pass --non-float ours|theirs|base to pick one side`, { tensor: name });
      }
      const pick = nonFloat === 'ours' ? first.bytes : nonFloat === 'theirs' ? models[models.length - 1] : b?.bytes;
      if (!pick) throw new ArgumentError(`tensor '${name}': the base has no such tensor to take`, { tensor: name });
      report({ name, how: nonFloat });
      yield asFloat ? floatOut(pick) : { name, dtype: first.t.dtype, shape: first.t.shape, data: pick };
      continue;
    }
    if (q && !strategy.anyDtype) {
      // each model's codes are read with its own mapping; the result is written with the first's
      const merged = await mergeDequantized(name, [q, ...rest.map((r) => r.q!)], strategy, params, o.kernels, models, b?.bytes ?? null, b?.q ?? q);
      if (!merged) throw new ArgumentError(`strategy ${strategy.name} left tensor '${name}' unmerged`);
      if (!o.stored) {
        report({ name, how: strategy.name });
        yield { name, dtype: 'F32', shape: q.shape.slice(), data: f32Bytes(merged) };
        continue;
      }
      const { bytes: data, maxError, rmsError } = requantize(name, q, merged, first.bytes.length);
      report({ name, how: strategy.name, scheme: q.scheme, maxError, rmsError });
      yield { name, dtype: first.t.dtype, shape: first.t.shape, data };
      continue;
    }
    // the first model's bytes are a fresh array this loop owns and reads no more: the merged
    // tensor may be written there (no new 64 MiB array, and no page faults, per tensor)
    const out = await strategy.merge({ name, dtype: first.t.dtype, shape: first.t.shape, base: b?.bytes ?? null, models, out: first.bytes }, params, o.kernels);
    if (!out) throw new ArgumentError(`strategy ${strategy.name} left tensor '${name}' unmerged`);
    const data = 'bytes' in out ? out.bytes : toDtypeBytes(o.kernels, first.t.dtype, out.values);
    report({ name, how: strategy.name });
    yield asFloat ? floatOut(data) : { name, dtype: first.t.dtype, shape: first.t.shape, data };
  }
  for (const [i, x] of others.entries()) {
    for (const name of await x.rest()) report({ name, how: 'dropped', model: o.models[i + 1].label });
  }
}

