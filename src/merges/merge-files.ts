/**
 * Merging checkpoint files outside git (`git theta merge-models`): the same strategies, streaming
 * tensor by tensor. The first model sets the order; the others are read alongside it, and a
 * tensor that comes early in another file is held only until its turn. Quantized tensors that can
 * be dequantized are merged (and written) as float32.
 */
import { ArgumentError } from '../core/errors.ts';
import type { Kernels } from '../core/kernels.ts';
import { dequantizeForStats, float32Bytes, type MaybeQuantized } from '../formats/convert.ts';
import type { CheckpointReader, StreamedTensor, TensorToWrite } from '../formats/types.ts';
import type { StrategyChoice } from './registry.ts';
import { toDtypeBytes } from './strategies/linear.ts';

const FLOATS = new Set(['F32', 'F16', 'BF16', 'F64']);

/** What a merge sees of a tensor: its values' layout and bytes. */
interface Values {
  t: Pick<StreamedTensor, 'name' | 'dtype' | 'shape'>;
  bytes: Uint8Array;
}

/**
 * A tensor's values: its bytes, or for a quantized tensor whose scheme can be dequantized (TF.js
 * uint8/uint16, GGUF Q8_0/Q4_0) float32 values, which are what a merge can average and what any
 * writer takes (quantization parameters belong to one file and do not carry over to a merge).
 */
async function valuesOf(t: MaybeQuantized): Promise<Values> {
  const values = dequantizeForStats(t);
  if (!values) return { t, bytes: await t.bytes() };
  return { t: { name: t.name, dtype: 'F32', shape: t.quantization!.shape.slice() }, bytes: await float32Bytes(values) };
}

/** Tensors of a reader by name, in any order, holding early arrivals until asked for. */
class ByName {
  private it: AsyncIterator<StreamedTensor>;
  private held = new Map<string, Values>();
  constructor(readonly reader: CheckpointReader, readonly label: string) {
    this.it = reader.tensors()[Symbol.asyncIterator]();
  }
  async get(name: string): Promise<Values> {
    const h = this.held.get(name);
    if (h) {
      this.held.delete(name);
      return h;
    }
    for (;;) {
      const r = await this.it.next();
      if (r.done) throw new ArgumentError(`${this.label} has no tensor '${name}'; the models must have the same tensors`, { tensor: name });
      const item = await valuesOf(r.value);
      if (r.value.name === name) return item;
      this.held.set(r.value.name, item);
    }
  }
  /** Names never asked for (extra tensors this file has). */
  async rest(): Promise<string[]> {
    const names = [...this.held.keys()];
    for (;;) {
      const r = await this.it.next();
      if (r.done) return names;
      names.push(r.value.name);
    }
  }
}

export interface MergeFilesOptions {
  models: { reader: CheckpointReader; label: string }[];
  base?: { reader: CheckpointReader; label: string };
  choice: StrategyChoice;
  kernels: Kernels;
  onTensor?(name: string, how: string): void;
}

/** The merged tensors, in the first model's order, one at a time (feed them to a format's write). */
export async function* mergeFiles(o: MergeFilesOptions): AsyncGenerator<TensorToWrite> {
  const { strategy, params } = o.choice;
  if (o.models.length < (strategy.minModels ?? 1)) throw new ArgumentError(`${strategy.name} needs at least ${strategy.minModels} models`);
  if (strategy.maxModels && o.models.length > strategy.maxModels) throw new ArgumentError(`${strategy.name} merges at most ${strategy.maxModels} models`);
  if (strategy.needsBase && !o.base) throw new ArgumentError(`${strategy.name} needs the models' common base: give --base <checkpoint>`);
  if (strategy.name === 'fail') throw new ArgumentError("'fail' leaves conflicts; choose a strategy that produces a model");
  const others = o.models.slice(1).map((m) => new ByName(m.reader, m.label));
  const base = o.base ? new ByName(o.base.reader, o.base.label) : null;
  for await (const tensor of o.models[0].reader.tensors()) {
    const { t: first, bytes: firstBytes } = await valuesOf(tensor);
    const rest = await Promise.all(others.map((x) => x.get(first.name)));
    const b = base ? await base.get(first.name) : null;
    for (const [i, r] of rest.entries()) {
      if (r.t.dtype !== first.dtype || r.t.shape.join() !== first.shape.join()) {
        throw new ArgumentError(
          `tensor '${first.name}': ${o.models[0].label} has ${first.dtype}[${first.shape}] but ${o.models[i + 1].label} has ${r.t.dtype}[${r.t.shape}]`,
          { tensor: first.name },
        );
      }
    }
    const models = [firstBytes, ...rest.map((r) => r.bytes)];
    const allSame = models.every((m) => m.length === firstBytes.length && m.every((x, k) => x === firstBytes[k]));
    let data: Uint8Array;
    let how: string;
    if (allSame) {
      data = firstBytes;
      how = 'identical';
    } else if (!strategy.anyDtype && !FLOATS.has(first.dtype)) {
      throw new ArgumentError(`tensor '${first.name}' is ${first.dtype} and differs between the models; ${strategy.name} merges only float tensors`, { tensor: first.name });
    } else {
      // the first model's bytes are a fresh array this loop owns and reads no more: the merged
      // tensor may be written there (no new 64 MiB array, and no page faults, per tensor)
      const out = await strategy.merge({ name: first.name, dtype: first.dtype, shape: first.shape, base: b?.bytes ?? null, models, out: firstBytes }, params, o.kernels);
      if (!out) throw new ArgumentError(`strategy ${strategy.name} left tensor '${first.name}' unmerged`);
      data = 'bytes' in out ? out.bytes : toDtypeBytes(o.kernels, first.dtype, out.values);
      how = strategy.name;
    }
    o.onTensor?.(first.name, how);
    yield { name: first.name, dtype: first.dtype, shape: first.shape, data };
  }
  for (const [i, x] of others.entries()) {
    const extra = await x.rest();
    if (extra.length) throw new ArgumentError(`${o.models[i + 1].label} has tensors ${o.models[0].label} lacks: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}`);
  }
}
