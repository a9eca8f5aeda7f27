/**
 * The streaming pass of `inspect` on ~1 GB checkpoints in the page cache: safetensors and PyTorch
 * (torch.save zip), each measured through the CLI (process start included) with its peak memory.
 *
 *   node build/js/bench/inspect.js [--gb 1]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFormat } from '../src/formats/registry.ts';
import type { TensorToWrite } from '../src/formats/types.ts';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const BIN = join(root, 'bin/git-theta.js');
const gb = Number(process.argv[process.argv.indexOf('--gb') + 1]) || 1;

function* tensors(total: number): Generator<TensorToWrite> {
  const per = 32 << 20; // 32 MiB tensors
  let seed = 1;
  for (let i = 0; i * per < total; i++) {
    const a = new Uint32Array(per / 4);
    for (let k = 0; k < a.length; k++) {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
      a[k] = ((seed >>> 0) & 0x807fffff) | 0x3c000000;
    }
    yield { name: `layer.${i}.weight`, dtype: 'F32', shape: [per / 4 / 1024, 1024], data: new Uint8Array(a.buffer) };
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

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'theta-bench-inspect-'));
  try {
    for (const [format, name] of [['safetensors', 'model.safetensors'], ['pytorch', 'model.pt']] as const) {
      const path = join(dir, name);
      await write(path, format);
      const size = statSync(path).size;
      readFileSync(path); // into the page cache
      const secs: number[] = [];
      let rss = 0;
      for (let i = 0; i < 3; i++) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, BIN, 'inspect', path, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
        secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
        if (r.status !== 0) throw new Error(r.stderr);
        rss = Math.max(rss, Number(r.stderr.trim().split('\n').pop()) / 1024);
      }
      const s = median(secs);
      console.log(`inspect ${format.padEnd(11)} ${(size / 1e9).toFixed(2)} GB in ${s.toFixed(2)} s = ${(size / 1e9 / s).toFixed(2)} GB/s (median of 3, process start included; goal >= 1 GB/s); peak RSS ${rss.toFixed(0)} MB (largest tensor 34 MB)`);
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
