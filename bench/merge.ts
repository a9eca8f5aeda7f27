/**
 * Merging two ~1 GB checkpoints tensor by tensor with `average` and with `ties` (density 0.2),
 * against memcpy (copyWithin over the same bytes, same run) and the same computation in plain JS.
 * GB/s counts the bytes of the merged tensors (one model's size). Medians of 3 runs.
 *
 *   node build/js/bench/merge.js [--gb 1]
 */
import { getKernels } from '../src/core/kernels.ts';
import { parseStrategySpec, type MergeInput } from '../src/merges/index.ts';

const gb = Number(process.argv[process.argv.indexOf('--gb') + 1]) || 1;
const PER = 16 << 20; // elements per tensor (64 MiB)

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296 - 0.5) * 0.02;
  }
  return a;
}

function median(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function time(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function timeAsync(f: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main() {
  const k = await getKernels();
  const n = Math.max(1, Math.round((gb * 1e9) / (PER * 4)));
  const base = Array.from({ length: n }, (_, i) => rand(PER, 3 * i + 1));
  const a = base.map((b, i) => { const x = rand(PER, 3 * i + 2); for (let j = 0; j < PER; j++) x[j] = b[j] + x[j] * 0.1; return x; });
  const b = base.map((b0, i) => { const x = rand(PER, 3 * i + 3); for (let j = 0; j < PER; j++) x[j] = b0[j] + x[j] * 0.1; return x; });
  const bytes = n * PER * 4;
  const u8 = (x: Float32Array) => new Uint8Array(x.buffer);
  const input = (i: number): MergeInput => ({ name: `t${i}`, dtype: 'F32', shape: [PER], base: u8(base[i]), models: [u8(a[i]), u8(b[i])] });
  const scratch = new Uint8Array(2 * PER * 4);
  const memcpy = median([0, 1, 2].map(() => time(() => { for (let i = 0; i < n; i++) scratch.copyWithin(0, PER * 4, 2 * PER * 4); })));
  const report = (label: string, secs: number, js?: number) =>
    console.log(`${label.padEnd(22)} ${(bytes / 1e9 / secs).toFixed(2).padStart(6)} GB/s   x memcpy ${(memcpy / secs).toFixed(2)}${js ? `   x plain JS ${(js / secs).toFixed(2)}` : ''}`);
  console.log(`${n} tensors of ${(PER * 4) >> 20} MiB per model (${(bytes / 1e9).toFixed(2)} GB); memcpy ${(bytes / 1e9 / memcpy).toFixed(2)} GB/s`);

  const avg = parseStrategySpec('average:alpha=0.5');
  const tAvg = median(await Promise.all([0, 1, 2].map(() => 0)).then(async () => {
    const r: number[] = [];
    for (let rep = 0; rep < 3; rep++) r.push(await timeAsync(async () => { for (let i = 0; i < n; i++) await avg.strategy.merge(input(i), avg.params, k); }));
    return r;
  }));
  const jsAvg = median([0, 1, 2].map(() => time(() => {
    for (let i = 0; i < n; i++) {
      const out = new Float32Array(PER), x = a[i], y = b[i];
      for (let j = 0; j < PER; j++) out[j] = 0.5 * x[j] + 0.5 * y[j];
    }
  })));
  report('average (alpha 0.5)', tAvg, jsAvg);

  const ties = parseStrategySpec('ties:density=0.2,lambda=1');
  const r: number[] = [];
  for (let rep = 0; rep < 3; rep++) r.push(await timeAsync(async () => { for (let i = 0; i < n; i++) await ties.strategy.merge(input(i), ties.params, k); }));
  const tTies = median(r);
  report('ties (density 0.2)', tTies);
  console.log(`ties / average time: ${(tTies / tAvg).toFixed(2)} (goal <= 4); average x memcpy goal >= 0.5`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
