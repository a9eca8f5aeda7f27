/**
 * Merging two ~1 GB checkpoints tensor by tensor with `average` and with `ties` (density 0.2),
 * against memcpy (copyWithin over the same bytes, same run) and the same average in plain JS.
 * GB/s counts the bytes of the merged tensors (one model's size). Medians of 3 runs.
 *
 * Two ways a caller gets the result, both measured:
 *   - new output: the strategy allocates each merged tensor (what `git merge`'s three-way merge
 *     does); a fresh 64 MiB array costs its page faults on first write, inside the timing;
 *   - into model 1: the caller hands over the first model's bytes as `out` (what merge-models
 *     does with the fresh array a reader gave it); the copy that stands in for that read is not timed.
 *
 * Requantizing merges (GGUF Q8_0, Q4_0, Q5_1, Q2_K, Q3_K, Q4_K, Q6_K and TF.js uint8 affine):
 * one 64 MiB tensor's worth of values per model, stored quantized; timed: dequantize both (Wasm
 * kernels), average in f32, quantize back (Wasm kernels), and measure the error (what merge-models
 * and the git driver do per quantized tensor). GB/s counts float32 bytes, and × plain float merge
 * compares with `average` into model 1 above.
 *
 *   node build/js/bench/merge.js [--gb 1]
 */
import { getKernels } from '../src/core/kernels.ts';
import type { TiesStats } from '../src/core/merge-kernels.ts';
import { tiesBytes } from '../src/core/merge-kernels.ts';
import { parseStrategySpec, type MergeInput, type StrategyChoice } from '../src/merges/index.ts';
import { encodeGgufHeader, gguf, GGML_TYPE_BY_NAME } from '../src/formats/gguf.ts';
import { mergeDequantized, requantize } from '../src/merges/requantize.ts';
import { dequantizerFor } from '../src/formats/dequantize.ts';
import { quantizeAffine } from '../src/core/quantize-affine.ts';
import type { TensorQuantization } from '../src/formats/types.ts';

const gb = Number(process.argv[process.argv.indexOf('--gb') + 1]) || 1;
const PER = 16 << 20; // elements per tensor (64 MiB)
const REPS = 3;

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

const now = () => Number(process.hrtime.bigint()) / 1e9;

async function main() {
  const k = await getKernels();
  const n = Math.max(1, Math.round((gb * 1e9) / (PER * 4)));
  const base = Array.from({ length: n }, (_, i) => rand(PER, 3 * i + 1));
  const a = base.map((b, i) => { const x = rand(PER, 3 * i + 2); for (let j = 0; j < PER; j++) x[j] = b[j] + x[j] * 0.1; return x; });
  const b = base.map((b0, i) => { const x = rand(PER, 3 * i + 3); for (let j = 0; j < PER; j++) x[j] = b0[j] + x[j] * 0.1; return x; });
  const bytes = n * PER * 4;
  const u8 = (x: Float32Array) => new Uint8Array(x.buffer);
  const input = (i: number): MergeInput => ({ name: `t${i}`, dtype: 'F32', shape: [PER], base: u8(base[i]), models: [u8(a[i]), u8(b[i])] });
  // model 1's bytes as merge-models holds them: a buffer it owns (refilled before each merge, untimed)
  const own = new Uint8Array(PER * 4);
  const intoModel1 = (i: number): MergeInput => {
    own.set(u8(a[i]));
    return { ...input(i), models: [own, u8(b[i])], out: own };
  };
  const scratch = new Uint8Array(2 * PER * 4);
  const memcpy = median([0, 1, 2].map(() => {
    const t0 = now();
    for (let i = 0; i < n; i++) scratch.copyWithin(0, PER * 4, 2 * PER * 4);
    return now() - t0;
  }));
  console.log(`${n} tensors of ${(PER * 4) >> 20} MiB per model (${(bytes / 1e9).toFixed(2)} GB); memcpy ${(bytes / 1e9 / memcpy).toFixed(2)} GB/s`);

  /** Median over REPS of the summed merge time of every tensor (setup of each input untimed). */
  async function timeMerges(c: StrategyChoice, make: (i: number) => MergeInput): Promise<number> {
    const r: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      let total = 0;
      for (let i = 0; i < n; i++) {
        const inp = make(i);
        const t0 = now();
        const out = await c.strategy.merge(inp, c.params, k);
        total += now() - t0;
        if (!out || !('bytes' in out) || out.bytes.length !== PER * 4) throw new Error('unexpected merge result');
        if (inp.out && out.bytes !== inp.out) throw new Error('the strategy did not write into out');
      }
      r.push(total);
    }
    return median(r);
  }

  const jsAvg = median([0, 1, 2].map(() => {
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const out = new Float32Array(PER), x = a[i], y = b[i];
      for (let j = 0; j < PER; j++) out[j] = 0.5 * x[j] + 0.5 * y[j];
    }
    return now() - t0;
  }));
  const report = (label: string, secs: number, js?: number) =>
    console.log(`${label.padEnd(34)} ${(bytes / 1e9 / secs).toFixed(2).padStart(6)} GB/s   x memcpy ${(memcpy / secs).toFixed(2)}${js ? `   x plain JS ${(js / secs).toFixed(2)}` : ''}`);

  const avg = parseStrategySpec('average:alpha=0.5');
  const ties = parseStrategySpec('ties:density=0.2,lambda=1');
  const avgNew = await timeMerges(avg, input);
  const avgOwn = await timeMerges(avg, intoModel1);
  const tiesNew = await timeMerges(ties, input);
  const tiesOwn = await timeMerges(ties, intoModel1);
  report('average (alpha 0.5), new output', avgNew, jsAvg);
  report('average (alpha 0.5), into model 1', avgOwn); // plain JS makes a new array: compare with the line above
  report('ties (density 0.2), new output', tiesNew);
  report('ties (density 0.2), into model 1', tiesOwn);
  console.log(`ties / average time: ${(tiesNew / avgNew).toFixed(2)} (new output), ${(tiesOwn / avgOwn).toFixed(2)} (into model 1); goal <= 4`);
  console.log(`average x memcpy: ${(memcpy / avgNew).toFixed(2)} (new output), ${(memcpy / avgOwn).toFixed(2)} (into model 1); goal >= 0.5`);

  // requantizing merges: one tensor per quantized type
  const affine = (): TensorQuantization => {
    const [scale, min] = [0.024 / 255, -0.012];
    return { scheme: 'tfjs:uint8', shape: [PER], scale, min, dequantizer: dequantizerFor({ scheme: 'tfjs:uint8', scale, min }), quantize: (v) => quantizeAffine(8, scale, min, v) };
  };
  for (const type of ['Q8_0', 'Q4_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q6_K', 'TF.js uint8']) {
    let q: TensorQuantization;
    if (type === 'TF.js uint8') q = affine();
    else {
      const { prefix } = encodeGgufHeader({ tensors: [{ name: 'w', dims: [PER], ggmlType: GGML_TYPE_BY_NAME[type] }] });
      q = (await gguf.quantizations!(prefix)).w;
    }
    if (!q.dequantizer || !q.quantize) { console.log(`average, requantized ${type}: skipped (no ${type} kernels)`); continue; }
    const [qa, qb] = [q.quantize!(a[0]), q.quantize!(b[0])];
    const times: number[] = [];
    let err = { maxError: 0, rmsError: 0 };
    for (let rep = 0; rep < REPS; rep++) {
      const t0 = now();
      const merged = await mergeDequantized('w', [q], avg.strategy, avg.params, k, [qa, qb], null);
      const r = requantize('w', q, merged!, qa.length);
      times.push(now() - t0);
      err = r;
    }
    const secs = median(times);
    const perTensor = avgOwn / n;
    console.log(`${`average, requantized ${type}`.padEnd(34)} ${((PER * 4) / 1e9 / secs).toFixed(3).padStart(6)} GB/s   x plain float merge ${(perTensor / secs).toPrecision(2)}   (max error ${err.maxError.toPrecision(3)}, rms ${err.rmsError.toPrecision(3)})`);
  }

  // where TIES's time goes (one more run, into model 1)
  const stats: TiesStats = { bracket: 0, histogram: 0 };
  for (let i = 0; i < n; i++) {
    const inp = intoModel1(i);
    tiesBytes(k, 'F32', inp.base!, inp.models, 0.2, 1, inp.out, { stats });
  }
  const ms = stats.ms!;
  console.log(`ties per tensor: sample ${(ms.sample / n).toFixed(1)} ms, bracket pass ${(ms.bracket / n).toFixed(1)} ms, select ${(ms.select / n).toFixed(1)} ms, ` +
    `histogram fallback ${(ms.histogram / n).toFixed(1)} ms (${stats.histogram} of ${stats.bracket + stats.histogram} task vectors), merge pass ${(ms.merge / n).toFixed(1)} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
