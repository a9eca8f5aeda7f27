/**
 * The streaming pass of `inspect` on ~1 GB checkpoints in the page cache: safetensors and PyTorch
 * (torch.save zip), each measured through the CLI (process start included) with its peak memory,
 * then where the time goes, measured in this process over the PyTorch file's bytes: reading it in
 * the CLI's 1 MiB pieces, CRC-32 of those pieces (PyTorch members are checked against their
 * recorded CRC), and the statistics kernel over them. Medians of BENCH_RUNS runs (default 5).
 *
 *   node build/js/bench/inspect.js [--gb 1]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getKernels } from '../src/core/kernels.ts';
import { getFormat } from '../src/formats/index.ts';
import type { TensorToWrite } from '../src/formats/types.ts';
import { fileReader } from '../src/node/files/fs-source.ts';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const BIN = join(root, 'bin/git-theta.js');
const gb = Number(process.argv[process.argv.indexOf('--gb') + 1]) || 1;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TENSOR_BYTES = 32 << 20; // 32 MiB tensors

function* tensors(total: number): Generator<TensorToWrite> {
  let seed = 1;
  for (let i = 0; i * TENSOR_BYTES < total; i++) {
    const a = new Uint32Array(TENSOR_BYTES / 4);
    for (let k = 0; k < a.length; k++) {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
      a[k] = ((seed >>> 0) & 0x807fffff) | 0x3c000000;
    }
    yield { name: `layer.${i}.weight`, dtype: 'F32', shape: [TENSOR_BYTES / 4 / 1024, 1024], data: new Uint8Array(a.buffer) };
  }
}

async function write(path: string, format: string) {
  const fd = openSync(path, 'w');
  await getFormat(format).write(tensors(gb * 1e9), { async write(b) { writeSync(fd, b); }, async close() {} });
  closeSync(fd);
}

function median(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Every 1 MiB piece of the file, as the CLI's reader hands them out. */
async function eachPiece(path: string, fn: (piece: Uint8Array) => void): Promise<void> {
  const r = await fileReader(path);
  try {
    for (;;) {
      const p = await r.readUpTo(1 << 20);
      if (!p.length) break;
      fn(p);
    }
  } finally {
    await r.close();
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'theta-bench-inspect-'));
  const limitMB = (2 * TENSOR_BYTES) / 1e6 + 200;
  try {
    for (const [format, name] of [['safetensors', 'model.safetensors'], ['pytorch', 'model.pt']] as const) {
      const path = join(dir, name);
      await write(path, format);
      const size = statSync(path).size;
      readFileSync(path); // into the page cache
      const secs: number[] = [];
      let rss = 0;
      for (let i = 0; i < RUNS; i++) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, BIN, 'inspect', path, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
        secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
        if (r.status !== 0) throw new Error(r.stderr);
        rss = Math.max(rss, Number(r.stderr.trim().split('\n').pop()) / 1024);
      }
      const s = median(secs);
      console.log(`inspect ${format.padEnd(11)} ${(size / 1e9).toFixed(2)} GB in ${s.toFixed(2)} s = ${(size / 1e9 / s).toFixed(2)} GB/s (median of ${RUNS}, process start included; goal >= 1 GB/s); ` +
        `peak RSS ${rss.toFixed(0)} MB (goal < 2 x largest tensor + 200 MB = ${limitMB.toFixed(0)} MB)`);
      if (format === 'pytorch') {
        const k = await getKernels();
        // the three passes take turns, so a busy moment on a shared machine hits them alike
        const passes: [string, () => Promise<void>][] = [
          ['read', () => eachPiece(path, () => {})],
          ['crc', async () => { let crc = 0; await eachPiece(path, (p) => { crc = k.crc32(p, crc); }); }],
          ['stats', async () => {
            const acc = k.statsAccumulator('F32');
            await eachPiece(path, (p) => acc.update(p.subarray(0, p.length & ~3)));
            acc.result();
          }],
        ];
        const t: Record<string, number[]> = { read: [], crc: [], stats: [] };
        for (let i = 0; i < RUNS; i++) {
          for (const [name, fn] of passes) {
            const t0 = performance.now();
            await fn();
            t[name].push((performance.now() - t0) / 1000);
          }
        }
        const read = median(t.read), withCrc = median(t.crc), withStats = median(t.stats);
        const start = median(Array.from({ length: RUNS }, () => {
          const t0 = process.hrtime.bigint();
          spawnSync(process.execPath, [BIN, '--version']);
          return Number(process.hrtime.bigint() - t0) / 1e9;
        }));
        const per = (x: number) => `${(x / (size / 1e9)).toFixed(3)} s/GB`;
        console.log(`  where the time goes (this process, same 1 MiB pieces): reading ${per(read)}; CRC-32 ${per(withCrc - read)}; ` +
          `statistics ${per(withStats - read)}; CLI start (--version) ${start.toFixed(2)} s`);
      }
      rmSync(path);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
