/**
 * A 3 GB tensor through the kernels (issue 2: any size works, bounded Wasm memory, results
 * independent of chunking): one-pass statistics, the content hash and the LSH signature of a
 * 3 GiB F32 tensor handed over whole and in uneven pieces must agree exactly; prints the times and
 * the Wasm memory size.
 *
 *   node build/js/bench/large-tensor.js [--gib 3]
 */
import { getKernels } from '../src/core/kernels.ts';

const gib = Number(process.argv[process.argv.indexOf('--gib') + 1]) || 3;

async function main() {
  const k = await getKernels();
  const n = gib * 2 ** 30;
  const bytes = new Uint8Array(n);
  const u32 = new Uint32Array(bytes.buffer);
  let s = 1;
  for (let i = 0; i < u32.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    u32[i] = ((s >>> 0) & 0x807fffff) | 0x3c000000;
  }
  const run = (pieces: number[]) => {
    const st = k.statsAccumulator('F32'), h = k.contentHasher(), l = k.lshAccumulator('F32');
    let off = 0, i = 0;
    while (off < n) {
      const m = Math.min(pieces[i++ % pieces.length], n - off);
      const c = bytes.subarray(off, off + m);
      st.update(c); h.update(c); l.update(c);
      off += m;
    }
    return JSON.stringify({ stats: st.result(), hash: h.digest(), lsh: l.signature() });
  };
  let t0 = Date.now();
  const whole = run([n]);
  const t1 = (Date.now() - t0) / 1000;
  t0 = Date.now();
  const uneven = run([1_000_003, 77_777_777, 4093, 256 << 20]);
  const t2 = (Date.now() - t0) / 1000;
  console.log(`${gib} GiB F32 tensor: stats + hash + LSH in one pass over the whole array ${t1.toFixed(1)} s, in uneven pieces ${t2.toFixed(1)} s`);
  console.log(`results identical: ${whole === uneven}; Wasm memory ${(k.raw.memory.buffer.byteLength / 2 ** 20).toFixed(0)} MiB`);
  if (whole !== uneven) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
