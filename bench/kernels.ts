/**
 * Kernel benchmark (Node only): for 64 MB inputs, every kernel's throughput, its ratio to memcpy
 * (`copyWithin` over the same number of bytes, measured in the same process and run) and to a
 * plain-JS loop doing the same job. Medians of RUNS runs.
 *
 * Two columns per kernel:
 *  - "wasm": the kernel over data already in Wasm memory (what the kernel itself can do);
 *  - "host": the public Kernels method on JS typed arrays, including the copies in and out of
 *    Wasm memory that chunking needs (what callers get today).
 * GB/s counts memory traffic: bytes read + bytes written. memcpy moves 64 MB in and 64 MB out, so
 * "x memcpy" is the fraction of the machine's copy bandwidth the kernel reaches. "in GB/s" is the
 * input tensor bytes per second (the number to compare with the LSH goal).
 *
 * Run with `npm run bench` (node --expose-gc build/js/bench/kernels.js).
 */
import { Kernels } from '../src/core/kernels.ts';
import { crc32Js } from '../src/core/crc32.ts';

const MB = 1 << 20;
const SIZE = 64 * MB;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const N = SIZE / 4; // f32 elements in 64 MB

declare const gc: undefined | (() => void);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function time(fn: () => void, runs = RUNS): number {
  fn(); // warm up (JIT, page faults)
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts) / 1000;
}

function fill(a: Float32Array, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 4294967296 - 0.5) * 4;
  }
}

interface Row {
  name: string;
  inBytes: number;
  traffic: number; // bytes read + written
  wasm: number; // seconds
  host?: number;
  js?: number;
}

async function main(): Promise<void> {
  const k = await Kernels.create({ variant: 'simd' });
  const host = await Kernels.create({ variant: 'simd' });
  const { memory, fn } = k.raw;
  // Wasm-resident buffers for the "wasm" column: 5 regions of 64 MB past the host's scratch
  // (bench-only: this instance's host methods are not used after the grow).
  const base = Math.ceil(memory.buffer.byteLength / 65536) * 65536;
  memory.grow((5 * SIZE + 2 * MB) / 65536);
  const R = [0, 1, 2, 3, 4].map((i) => base + i * SIZE);
  const SMALL = base + 5 * SIZE;
  const f32 = new Float32Array(memory.buffer);
  const u8 = new Uint8Array(memory.buffer);
  const fa = f32.subarray(R[0] / 4, R[0] / 4 + N), fb = f32.subarray(R[1] / 4, R[1] / 4 + N), fc = f32.subarray(R[2] / 4, R[2] / 4 + N);
  fill(fa, 1); fill(fb, 2); fill(fc, 3);

  // JS-side copies of the same data
  const A = fa.slice(), B = fb.slice(), Cc = fc.slice(), OUT = new Float32Array(N);
  const big = new Uint8Array(2 * SIZE);
  const memcpy = time(() => big.copyWithin(SIZE, 0, SIZE));
  const memcpyGBs = (2 * SIZE) / memcpy / 1e9;

  const rows: Row[] = [];
  const add = (r: Row) => {
    rows.push(r);
    process.stderr.write(`bench: ${r.name}\n`);
    if (typeof gc === 'function') gc();
  };

  // ---- element-wise
  add({
    name: 'delta a-b', inBytes: 2 * SIZE, traffic: 3 * SIZE,
    wasm: time(() => fn('delta_f32')(R[0], R[1], R[3], N)),
    host: time(() => host.delta(A, B, OUT)),
    js: time(() => { for (let i = 0; i < N; i++) OUT[i] = A[i] - B[i]; }),
  });
  add({
    name: 'apply a+d', inBytes: 2 * SIZE, traffic: 3 * SIZE,
    wasm: time(() => fn('apply_f32')(R[0], R[1], R[3], N)),
    host: time(() => host.apply(A, B, OUT)),
    js: time(() => { for (let i = 0; i < N; i++) OUT[i] = A[i] + B[i]; }),
  });
  add({
    name: 'multiply', inBytes: 2 * SIZE, traffic: 3 * SIZE,
    wasm: time(() => fn('multiply_f32')(R[0], R[1], R[3], N)),
    host: time(() => host.multiply(A, B, OUT)),
    js: time(() => { for (let i = 0; i < N; i++) OUT[i] = A[i] * B[i]; }),
  });
  add({
    name: 'scale', inBytes: SIZE, traffic: 2 * SIZE,
    wasm: time(() => fn('scale_f32')(R[0], 0.5, R[3], N)),
    host: time(() => host.scale(A, 0.5, OUT)),
    js: time(() => { for (let i = 0; i < N; i++) OUT[i] = A[i] * 0.5; }),
  });
  {
    const ptrs = new Uint32Array(memory.buffer, SMALL, 3);
    ptrs.set([R[0], R[1], R[2]]);
    new Float32Array(memory.buffer, SMALL + 64, 3).set([0.2, 0.3, 0.5]);
    add({
      name: 'weighted sum k=3', inBytes: 3 * SIZE, traffic: 4 * SIZE,
      wasm: time(() => fn('weighted_sum_f32')(SMALL, SMALL + 64, 3, R[3], N)),
      host: time(() => host.weightedSum([A, B, Cc], [0.2, 0.3, 0.5], OUT)),
      js: time(() => { const w0 = Math.fround(0.2), w1 = Math.fround(0.3), w2 = Math.fround(0.5); for (let i = 0; i < N; i++) OUT[i] = Math.fround(Math.fround(A[i] * w0) + Math.fround(B[i] * w1)) + Math.fround(Cc[i] * w2); }),
    });
  }

  // ---- conversion (64 MB of 16-bit input -> 128 MB f32 out; 64 MB f32 -> 32 MB 16-bit)
  {
    const n16 = SIZE / 2;
    const src16 = new Uint16Array(n16);
    const ua0 = new Uint32Array(A.buffer);
    for (let i = 0; i < n16; i++) src16[i] = ua0[i % N] >>> 16;
    u8.set(new Uint8Array(src16.buffer), R[0] + 0);
    const wide = new Uint32Array(n16);
    const wideF = new Float32Array(wide.buffer);
    const src16b = new Uint8Array(src16.buffer);
    add({
      name: 'BF16 -> F32', inBytes: SIZE, traffic: 3 * SIZE,
      wasm: time(() => fn('bf16_to_f32')(R[0], R[2], n16)),
      host: time(() => host.toF32('BF16', src16b, wideF)),
      js: time(() => { for (let i = 0; i < n16; i++) wide[i] = src16[i] << 16; }),
    });
    // F16 inputs: reinterpret the same bits (finite mostly)
    const h2f = (h: number) => {
      const s = (h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 1023;
      if (e === 31) return (s | 0x7f800000 | (m << 13)) >>> 0;
      if (e === 0) { if (m === 0) return s >>> 0; let ee = 113, mm = m; while (!(mm & 1024)) { mm <<= 1; ee--; } return (s | (ee << 23) | ((mm & 1023) << 13)) >>> 0; }
      return (s | ((e + 112) << 23) | (m << 13)) >>> 0;
    };
    add({
      name: 'F16 -> F32', inBytes: SIZE, traffic: 3 * SIZE,
      wasm: time(() => fn('f16_to_f32')(R[0], R[2], n16)),
      host: time(() => host.toF32('F16', src16b, wideF)),
      js: time(() => { for (let i = 0; i < n16; i++) wide[i] = h2f(src16[i]); }),
    });
    const ua = new Uint32Array(A.buffer);
    const out16 = new Uint16Array(N);
    const out16b = new Uint8Array(out16.buffer);
    add({
      name: 'F32 -> BF16', inBytes: SIZE, traffic: 1.5 * SIZE,
      wasm: time(() => fn('f32_to_bf16')(R[1], R[3], N)),
      host: time(() => host.fromF32('BF16', A, out16b)),
      js: time(() => { for (let i = 0; i < N; i++) { const x = ua[i]; out16[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16; } }),
    });
    const f2h = (x: number) => {
      const s = (x >>> 16) & 0x8000, a = x & 0x7fffffff;
      if (a >= 0x47800000) return s | (a > 0x7f800000 ? 0x7e00 | ((a >>> 13) & 0x3ff) : 0x7c00);
      if (a < 0x38800000) { const f = new Float32Array(1); const u = new Uint32Array(f.buffer); u[0] = a; f[0] += 0.5; return s | (u[0] - 0x3f000000); }
      return s | (((a + 0xc8000fff + ((a >>> 13) & 1)) >>> 0) >>> 13);
    };
    add({
      name: 'F32 -> F16', inBytes: SIZE, traffic: 1.5 * SIZE,
      wasm: time(() => fn('f32_to_f16')(R[1], R[3], N)),
      host: time(() => host.fromF32('F16', A, out16b)),
      js: time(() => { for (let i = 0; i < N; i++) out16[i] = f2h(ua[i]); }),
    });
    f32.set(A, R[0] / 4); // restore fa
  }

  // ---- int8
  {
    const q = new Int8Array(N), sc = new Float32Array(N / 64);
    add({
      name: 'int8 quantize b=64', inBytes: SIZE, traffic: 1.25 * SIZE + SIZE / 16,
      wasm: time(() => fn('quantize_int8')(R[0], N, 64, R[3], R[4])),
      host: time(() => host.quantizeInt8(A, 64)),
      js: time(() => {
        for (let b = 0; b < N; b += 64) {
          let m = 0;
          for (let i = b; i < b + 64; i++) { const v = Math.abs(A[i]); if (v > m) m = v; }
          const inv = m > 0 ? Math.fround(127 / m) : 0;
          sc[b >> 6] = m / 127;
          for (let i = b; i < b + 64; i++) q[i] = Math.round(Math.fround(A[i] * inv));
        }
      }),
    });
    const qq = host.quantizeInt8(A, 64);
    add({
      name: 'int8 dequantize b=64', inBytes: SIZE / 4, traffic: 1.25 * SIZE + SIZE / 16,
      wasm: time(() => fn('dequantize_int8')(R[3], R[4], N, 64, R[2])),
      host: time(() => host.dequantizeInt8(qq.q, qq.scales, 64)),
      js: time(() => { for (let i = 0; i < N; i++) OUT[i] = qq.q[i] * qq.scales[i >> 6]; }),
    });
  }

  // ---- reductions
  const ST = SMALL + 4096;
  const bytesA = new Uint8Array(A.buffer), bytesB = new Uint8Array(B.buffer);
  add({
    name: 'stats (sum, sumsq, min, max, nan, inf)', inBytes: SIZE, traffic: SIZE,
    wasm: time(() => { u8.fill(0, ST, ST + 128); fn('stats_f32')(ST, R[0], N); }),
    host: time(() => host.stats('F32', bytesA)),
    js: time(() => {
      let s = 0, q2 = 0, mn = Infinity, mx = -Infinity, nan = 0, inf = 0;
      for (let i = 0; i < N; i++) { const v = A[i]; if (Number.isFinite(v)) { s += v; q2 += v * v; if (v < mn) mn = v; if (v > mx) mx = v; } else if (v !== v) nan++; else inf++; }
      if (s === 0.5) console.log(q2, mn, mx, nan, inf);
    }),
  });
  add({
    name: 'compare (dot, norms, diff, allclose)', inBytes: 2 * SIZE, traffic: 2 * SIZE,
    wasm: time(() => { u8.fill(0, ST, ST + 160); fn('compare_f32')(ST, R[0], R[1], N, 1e-5, 1e-8); }),
    host: time(() => host.compare('F32', bytesA, bytesB)),
    js: time(() => {
      let d = 0, sa = 0, sb = 0, sd = 0, md = 0, nc = 0;
      for (let i = 0; i < N; i++) { const x = A[i], y = B[i]; d += x * y; sa += x * x; sb += y * y; const e = x === y ? 0 : x - y; sd += e * e; const ae = Math.abs(e); if (ae > md) md = ae; if (!(x === y || (Number.isFinite(y) && ae <= 1e-8 + 1e-5 * Math.abs(y)))) nc++; }
      if (d === 0.5) console.log(sa, sb, sd, md, nc);
    }),
  });
  add({
    name: 'histogram 256 bins', inBytes: SIZE, traffic: SIZE,
    wasm: time(() => fn('histogram_f32')(R[0], N, -2, 2, 256, SMALL + 65536)),
    host: time(() => host.histogram('F32', bytesA, 256, -2, 2)),
    js: time(() => { const c = new Uint32Array(256); const sc = 256 / 4; for (let i = 0; i < N; i++) { const v = A[i]; if (v >= -2 && v < 2) c[Math.min(255, Math.floor((v + 2) * sc))]++; } }),
  });
  {
    const POOL = SMALL + 8192, LST = SMALL + 32768;
    fn('lsh_pool_init')(POOL, 0);
    const pool = new Uint32Array(memory.buffer, POOL, 4096).slice();
    const signs = Float32Array.from(pool, (m) => (m ? -1 : 1));
    const acc = new Float64Array(256);
    add({
      name: 'LSH signature S=16 D=256', inBytes: SIZE, traffic: SIZE,
      wasm: time(() => { u8.fill(0, LST, LST + 64 + 256 * 8); fn('lsh_update')(LST, POOL, R[0], N, 256, 0); fn('lsh_project')(LST, 256, 16, 0, SMALL); }),
      host: time(() => host.lshSignature('F32', bytesA)),
      js: time(() => {
        acc.fill(0);
        for (let i = 0; i < N; i += 4096) {
          const bs = ((i >> 12) * 2654435761) & 0x80000000 ? -1 : 1; // stands in for the block-sign PRNG
          for (let j = 0; j < 4096; j++) { const v = A[i + j]; if (Number.isFinite(v)) acc[j & 255] += v * signs[j] * bs; }
        }
      }),
    });
  }
  {
    const HST = SMALL + 16384;
    const K1 = 0x9e3779b1 | 0, K2 = 0x85ebca77 | 0;
    const w32 = new Int32Array(A.buffer);
    const lanes = new Int32Array(16);
    add({
      name: 'content hash 128-bit', inBytes: SIZE, traffic: SIZE,
      wasm: time(() => { fn('hash_init')(HST); fn('hash_update')(HST, R[0], SIZE); fn('hash_final')(HST, SMALL + 20480, 0, SIZE, 0, SMALL + 20600); }),
      host: time(() => host.contentHash(bytesA)),
      js: time(() => {
        for (let i = 0; i < w32.length; i += 16) {
          for (let l = 0; l < 16; l++) { const x = lanes[l] ^ Math.imul(w32[i + l], K1); lanes[l] = Math.imul((x << 15) | (x >>> 17), K2); }
        }
      }),
    });
  }
  add({
    name: 'CRC-32 (zip)', inBytes: SIZE, traffic: SIZE,
    wasm: time(() => fn('crc32_update')(R[0], SIZE, 0)),
    host: time(() => host.crc32(bytesA)),
    js: time(() => crc32Js(bytesA)),
  });
  {
    // 1 in 1000 elements changed
    const Bc = A.slice();
    for (let i = 0; i < N; i += 1000) Bc[i] += 1;
    f32.set(Bc, R[1] / 4);
    const bytesBc = new Uint8Array(Bc.buffer);
    const ua = new Uint32Array(A.buffer), ub = new Uint32Array(Bc.buffer);
    add({
      name: 'changedIndices (0.1% changed)', inBytes: 2 * SIZE, traffic: 2 * SIZE,
      wasm: time(() => fn('changed_indices')(R[0], R[1], N, 4, R[3])),
      host: time(() => host.changedIndices(bytesA, bytesBc, 4)),
      js: time(() => { const out: number[] = []; for (let i = 0; i < N; i++) if (ua[i] !== ub[i]) out.push(i); }),
    });
    add({
      name: 'sparseExtract (0.1% changed)', inBytes: 2 * SIZE, traffic: 2 * SIZE,
      wasm: time(() => fn('sparse_extract_f32')(R[0], R[1], N, 0, R[3], R[4])),
      host: time(() => host.sparseExtract(A, Bc, 0)),
      js: time(() => { const ix: number[] = [], vs: number[] = []; for (let i = 0; i < N; i++) { const d = Math.fround(A[i] - Bc[i]); if (A[i] !== Bc[i] && !(Math.abs(d) <= 0)) { ix.push(i); vs.push(d); } } }),
    });
    f32.set(B, R[1] / 4);
  }
  {
    const rows = 4096, cols = 4096, rank = 8;
    const Rm = new Float32Array(rows * rank), Cm = new Float32Array(rank * cols);
    fill(Rm, 5); fill(Cm, 6);
    f32.set(Rm, R[3] / 4); f32.set(Cm, R[4] / 4);
    const W = A.slice();
    add({
      name: 'low-rank W += R·C (4096², r=8)', inBytes: SIZE, traffic: 2 * SIZE,
      wasm: time(() => fn('lowrank_apply_f32')(R[0], cols, R[3], rank, R[4], cols, rows, cols, rank)),
      host: time(() => host.lowRankApply(W, rows, cols, Rm, Cm, rank)),
      js: time(() => {
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
          let a = W[i * cols + j];
          for (let r = 0; r < rank; r++) a = Math.fround(a + Math.fround(Rm[i * rank + r] * Cm[r * cols + j]));
          W[i * cols + j] = a;
        }
      }),
    });
  }

  // ---- table
  const gbs = (bytes: number, s: number) => bytes / s / 1e9;
  const fmt = (x: number, d = 2) => x.toFixed(d).padStart(7);
  const lines: string[] = [];
  lines.push(`kernels benchmark: Node ${process.versions.node}, ${SIZE / MB} MB inputs, median of ${RUNS} runs, SIMD build`);
  lines.push(`memcpy (copyWithin ${SIZE / MB} MB): ${fmt(memcpyGBs)} GB/s traffic (read + write)`);
  lines.push('');
  lines.push(`${'kernel'.padEnd(40)} ${'in GB/s'.padStart(7)} ${'wasm GB/s'.padStart(9)} ${'x memcpy'.padStart(8)} ${'x JS'.padStart(7)} | ${'host GB/s'.padStart(9)} ${'x memcpy'.padStart(8)} ${'x JS'.padStart(7)}`);
  for (const r of rows) {
    const w = gbs(r.traffic, r.wasm);
    const h = r.host ? gbs(r.traffic, r.host) : NaN;
    lines.push(
      `${r.name.padEnd(40)} ${fmt(gbs(r.inBytes, r.wasm))} ${fmt(w).padStart(9)} ${fmt(w / memcpyGBs).padStart(8)} ${fmt(r.js ? r.js / r.wasm : NaN, 1)} | ${fmt(h).padStart(9)} ${fmt(h / memcpyGBs).padStart(8)} ${fmt(r.js && r.host ? r.js / r.host : NaN, 1)}`,
    );
  }
  console.log(lines.join('\n'));
}

await main();
