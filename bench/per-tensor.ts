/**
 * The fixed cost per tensor of a clean, in one process (no git, no pipe): N tiny tensors (4 bytes
 * each, where the bytes cost nothing) cleaned into a real object store on disk, with the parts
 * timed separately:
 *   - hash + LSH: the kernels' content hash and signature of one tensor (per-call cost);
 *   - clean, inline: the whole clean (hash, signature, entry, the object carried in the metadata);
 *   - clean, objects: the same with theta.inlineMax=0, each tensor an object file (SHA-256, temp
 *     file, aa/bb directory, rename) — what every tensor cost before small objects went inline;
 *   - metadata: serializing and parsing the document, per entry.
 * Medians of --runs runs (default 5). Prints microseconds per tensor.
 *
 *   node build/js/bench/per-tensor.js [--tensors 5000] [--runs 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getKernels } from '../src/core/kernels.ts';
import { memorySink, readerFromBytes } from '../src/core/io.ts';
import { safetensors } from '../src/formats/safetensors.ts';
import { openLocalStore } from '../src/node/files/store-fs.ts';
import { useNodeSha256 } from '../src/node/files/sha256-node.ts';
import { cleanCheckpoint, hashOf, lshOf, DEFAULT_LSH_SIZE } from '../src/theta/clean.ts';
import { parseMetadata, serializeMetadata } from '../src/theta/metadata.ts';

const arg = (name: string, dflt: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : dflt);
const N = arg('--tensors', 5000);
const RUNS = arg('--runs', 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  useNodeSha256();
  const kernels = await getKernels();
  const sink = memorySink();
  await safetensors.write(Array.from({ length: N }, (_, i) => ({ name: `layer_${i}/bias`, dtype: 'F32' as const, shape: [1], data: new Uint8Array(new Float32Array([i * 0.001]).buffer) })), sink);
  const file = sink.bytes();
  const tensors = Array.from({ length: N }, (_, i) => new Uint8Array(new Float32Array([i * 0.5]).buffer));

  const times: Record<string, number[]> = { hash: [], inline: [], objects: [], metadata: [] };
  for (let r = 0; r < RUNS; r++) {
    let t = performance.now();
    for (const b of tensors) { hashOf(kernels, b); lshOf(kernels, 'F32', b, DEFAULT_LSH_SIZE); }
    times.hash.push((performance.now() - t) / N);

    for (const mode of ['inline', 'objects'] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'theta-bench-tensor-'));
      try {
        const store = openLocalStore(dir);
        t = performance.now();
        const meta = await cleanCheckpoint({ reader: await safetensors.open(readerFromBytes(file)), previous: null, store, kernels, fileSize: file.length, inlineMax: mode === 'inline' ? undefined : 0 });
        times[mode].push((performance.now() - t) / N);
        if (mode === 'inline') {
          t = performance.now();
          parseMetadata(serializeMetadata(meta));
          times.metadata.push((performance.now() - t) / N);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const us = (k: string) => (median(times[k]) * 1e3).toFixed(1).padStart(7);
  console.log(`${N} tensors of 4 bytes, medians of ${RUNS} runs, microseconds per tensor:`);
  console.log(`  content hash + LSH signature  ${us('hash')}`);
  console.log(`  clean, small objects inline   ${us('inline')}   (the default: theta.inlineMax=1024)`);
  console.log(`  clean, one object file each   ${us('objects')}   (theta.inlineMax=0)`);
  console.log(`  metadata serialize + parse    ${us('metadata')}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
