import { closeSync, openSync, writeSync } from 'node:fs';
import { getFormat } from '../src/formats/index.ts';
import type { TensorToWrite } from '../src/formats/types.ts';

/** The tensor layout of a GPT-2-like model of about `totalBytes` of float32 weights (benchmarks' test models). */
export interface TensorLayout { name: string; shape: number[] }

export function gptLayout(totalBytes: number, o: { d: number; vocab: number; positions: number }): TensorLayout[] {
  const { d, vocab, positions } = o;
  const out: TensorLayout[] = [{ name: 'wte.weight', shape: [vocab, d] }, { name: 'wpe.weight', shape: [positions, d] }];
  const perLayer = (3 * d * d + d * d + 4 * d * d + 4 * d * d) * 4;
  const layers = Math.max(1, Math.round((totalBytes - (vocab + positions) * d * 4) / perLayer));
  for (let l = 0; l < layers; l++) {
    const p = `h.${l}.`;
    out.push(
      { name: p + 'ln_1.weight', shape: [d] }, { name: p + 'ln_1.bias', shape: [d] },
      { name: p + 'attn.c_attn.weight', shape: [3 * d, d] }, { name: p + 'attn.c_attn.bias', shape: [3 * d] },
      { name: p + 'attn.c_proj.weight', shape: [d, d] }, { name: p + 'attn.c_proj.bias', shape: [d] },
      { name: p + 'ln_2.weight', shape: [d] }, { name: p + 'ln_2.bias', shape: [d] },
      { name: p + 'mlp.c_fc.weight', shape: [4 * d, d] }, { name: p + 'mlp.c_fc.bias', shape: [4 * d] },
      { name: p + 'mlp.c_proj.weight', shape: [d, 4 * d] }, { name: p + 'mlp.c_proj.bias', shape: [d] },
    );
  }
  out.push({ name: 'ln_f.weight', shape: [d] }, { name: 'ln_f.bias', shape: [d] });
  return out;
}

/** Deterministic finite float32 bytes (an xorshift stream) for a tensor of n elements. */
export function fill(n: number, seed: number): Uint8Array {
  const a = new Uint32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    a[i] = ((s >>> 0) & 0x807fffff) | 0x3c000000; // finite floats of magnitude ~0.01
  }
  return new Uint8Array(a.buffer);
}

/** Write a safetensors model of `tensors`; those in `changed` get values of this `version`. */
export async function writeModel(path: string, tensors: { name: string; shape: number[] }[], changed: Set<string>, version: number) {
  const fd = openSync(path, 'w');
  async function* gen(): AsyncGenerator<TensorToWrite> {
    for (const [i, t] of tensors.entries()) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      yield { name: t.name, dtype: 'F32', shape: t.shape, data: fill(n, i + 1 + (changed.has(t.name) ? version * 100003 : 0)) };
    }
  }
  await getFormat('safetensors').write(gen(), { async write(b) { writeSync(fd, b); }, async close() {} });
  closeSync(fd);
}
