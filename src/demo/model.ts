/**
 * The small model the demo uses, embedded as code: a GPT-like layout (embeddings, two transformer
 * blocks, final norm) with deterministic pseudo-random float32 weights. No file, no network.
 */
import type { TensorToWrite } from '../formats/types.ts';

/** Seeded PRNG (splitmix32): same seed, same numbers, in every runtime. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

export interface DemoTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

const D = 64; // model width
const V = 256; // vocabulary
const LAYERS = 2;

export function demoModel(seed = 1): DemoTensor[] {
  const rand = prng(seed);
  const normal = (std: number) => () => (rand() + rand() + rand() + rand() - 2) * std * 1.7320508;
  const t = (name: string, shape: number[], fill: () => number): DemoTensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = fill();
    return { name, shape, values };
  };
  const ones = () => 1;
  const zeros = () => 0;
  const out: DemoTensor[] = [t('wte.weight', [V, D], normal(0.02)), t('wpe.weight', [32, D], normal(0.01))];
  for (let l = 0; l < LAYERS; l++) {
    const p = `h.${l}.`;
    out.push(
      t(p + 'ln_1.weight', [D], ones), t(p + 'ln_1.bias', [D], zeros),
      t(p + 'attn.c_attn.weight', [3 * D, D], normal(0.02)), t(p + 'attn.c_attn.bias', [3 * D], zeros),
      t(p + 'attn.c_proj.weight', [D, D], normal(0.02)), t(p + 'attn.c_proj.bias', [D], zeros),
      t(p + 'ln_2.weight', [D], ones), t(p + 'ln_2.bias', [D], zeros),
      t(p + 'mlp.c_fc.weight', [4 * D, D], normal(0.02)), t(p + 'mlp.c_fc.bias', [4 * D], zeros),
      t(p + 'mlp.c_proj.weight', [D, 4 * D], normal(0.02)), t(p + 'mlp.c_proj.bias', [D], zeros),
    );
  }
  out.push(t('ln_f.weight', [D], ones), t('ln_f.bias', [D], zeros));
  return out;
}

export function toWrite(ts: DemoTensor[]): TensorToWrite[] {
  return ts.map((x) => ({ name: x.name, dtype: 'F32', shape: x.shape, data: new Uint8Array(x.values.buffer.slice(0)) }));
}

export function cloneModel(ts: DemoTensor[]): DemoTensor[] {
  return ts.map((x) => ({ name: x.name, shape: [...x.shape], values: x.values.slice() }));
}
