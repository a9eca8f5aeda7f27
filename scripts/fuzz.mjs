#!/usr/bin/env node
// Long fuzzing campaigns: `npm run fuzz -- --format F --cases N --seed S [--timeout MS] [--memory MB] [--save DIR]`
// (F: one of safetensors, pytorch, numpy, npz, gguf, tfjs, or `all`). The cases are those of the
// suite's fuzzer (test/shared/fuzz.ts; needs `npm run build` first), run in a worker thread with a
// watchdog: a case that makes no progress for --timeout ms (default 10000) is a hang (the worker is
// stopped and restarted after it), a worker that runs out of its --memory MB heap (default 1024),
// or whose process RSS passes 4 × that, is a memory blow-up. Prints one line per format:
//   <format>: N cases, ok A, typed B, untyped C, mismatch D, hang E, memory F (seed S, T s)
// and writes every input that was not ok/typed to --save (default test/fixtures/fuzz/<format>/),
// so it can be kept as a regression case. Exit code 1 when any case was untyped, mismatch, hang or memory.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fuzzModule = join(root, 'build/js/test/shared/fuzz.js');

if (!isMainThread) {
  const { format, seed, from, to, timeoutMs } = workerData;
  const { fuzzCase, runCase } = await import(fuzzModule);
  const { useFastCrc32 } = await import(join(root, 'build/js/src/core/kernels.js'));
  await useFastCrc32();
  for (let i = from; i < to; i++) {
    parentPort.postMessage({ type: 'start', index: i });
    let r;
    try {
      const input = await fuzzCase(format, seed, i);
      r = await runCase(format, input, { timeoutMs, readWhole: i % 2 === 0 });
    } catch (e) {
      // runCase classifies the reader's errors itself: this is the fuzzer failing to make the case
      r = { outcome: 'untyped', error: `fuzzer: ${e?.message ?? e}` };
    }
    parentPort.postMessage({ type: 'done', index: i, outcome: r.outcome, error: r.error });
  }
  parentPort.postMessage({ type: 'end' });
} else {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const { FUZZ_FORMATS, fuzzCase } = await import(fuzzModule).catch(() => {
    process.stderr.write(`fuzz: ${fuzzModule} is missing; run 'npm run build' first\n`);
    process.exit(2);
  });
  const which = opt('format', 'all');
  const formats = which === 'all' ? FUZZ_FORMATS : which.split(',');
  for (const f of formats) {
    if (!FUZZ_FORMATS.includes(f)) {
      process.stderr.write(`fuzz: unknown format '${f}' (one of ${FUZZ_FORMATS.join(', ')}, or all)\n`);
      process.exit(2);
    }
  }
  const cases = Number(opt('cases', 10000));
  const seed = Number(opt('seed', 1));
  const timeoutMs = Number(opt('timeout', 10000));
  const memoryMb = Number(opt('memory', 1024));
  const saveDir = opt('save', join(root, 'test/fixtures/fuzz'));
  let bad = 0;

  const save = async (format, index, outcome) => {
    const input = await fuzzCase(format, seed, index);
    const dir = join(saveDir, format);
    mkdirSync(dir, { recursive: true });
    const name = `seed${seed}-case${index}-${outcome}`;
    if (input instanceof Uint8Array) writeFileSync(join(dir, `${name}.bin`), input);
    else writeFileSync(join(dir, `${name}.json`), JSON.stringify({ modelJson: Buffer.from(input.modelJson).toString('base64'), shards: Object.fromEntries([...input.shards].map(([k, v]) => [k, Buffer.from(v).toString('base64')])) }));
  };

  for (const format of formats) {
    const t0 = Date.now();
    const count = { ok: 0, typed: 0, untyped: 0, mismatch: 0, hang: 0, memory: 0 };
    const failures = [];
    let next = 0;
    while (next < cases) {
      // one worker per stretch of cases; a hang or an out-of-memory ends it, and the next starts after that case
      const result = await new Promise((resolve) => {
        const w = new Worker(fileURLToPath(import.meta.url), {
          workerData: { format, seed, from: next, to: cases, timeoutMs },
          resourceLimits: { maxOldGenerationSizeMb: memoryMb },
        });
        let current = next;
        let finished = false;
        let last = Date.now();
        const finish = (r) => {
          if (finished) return;
          finished = true;
          clearInterval(watch);
          resolve(r);
        };
        const watch = setInterval(() => {
          if (process.memoryUsage().rss > 4 * memoryMb * 2 ** 20) { w.terminate(); finish({ stop: current, outcome: 'memory' }); }
          else if (Date.now() - last > timeoutMs + 2000) { w.terminate(); finish({ stop: current, outcome: 'hang' }); }
        }, 250);
        w.on('message', (m) => {
          if (finished) return; // late messages of a stopped worker: its cases are accounted for
          last = Date.now();
          if (m.type === 'start') current = m.index;
          else if (m.type === 'done') {
            count[m.outcome]++;
            if (m.outcome !== 'ok' && m.outcome !== 'typed') failures.push({ index: m.index, outcome: m.outcome, error: m.error });
            next = m.index + 1;
          } else if (m.type === 'end') finish({ stop: null });
        });
        w.on('error', (e) => finish({ stop: current, outcome: /out of memory|ERR_WORKER_OUT_OF_MEMORY/i.test(`${e.code} ${e.message}`) ? 'memory' : 'untyped', error: e.message }));
        w.on('exit', () => finish({ stop: null }));
      });
      if (result.stop !== null && result.stop !== undefined) {
        count[result.outcome]++;
        failures.push({ index: result.stop, outcome: result.outcome, error: result.error });
        next = Math.max(next, result.stop + 1);
      } else if (next < cases && result.stop === null) {
        // the worker ended early without saying why: count the case it was on as untyped
        if (next < cases) { count.untyped++; failures.push({ index: next, outcome: 'untyped', error: 'worker exited' }); next++; }
      }
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    const n = Object.values(count).reduce((a, b) => a + b, 0);
    process.stdout.write(`${format}: ${n} cases, ok ${count.ok}, typed ${count.typed}, untyped ${count.untyped}, mismatch ${count.mismatch}, hang ${count.hang}, memory ${count.memory} (seed ${seed}, ${secs} s)\n`);
    for (const f of failures.slice(0, 20)) {
      process.stdout.write(`  case ${f.index}: ${f.outcome}${f.error ? `: ${f.error}` : ''}\n`);
      await save(format, f.index, f.outcome).catch((e) => process.stdout.write(`  (could not save case ${f.index}: ${e.message})\n`));
    }
    bad += failures.length;
  }
  process.exit(bad ? 1 : 0);
}
