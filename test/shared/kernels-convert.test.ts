import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  instances, label, bytesOf, unaligned, rng, edgyF32, sameF32,
  refF16toF32Bits, refBF16toF32Bits, refF32toF16, refF32toBF16, bitsF32,
} from './kernels-helpers.ts';

const t = suite('kernels: dtype conversion');

const ALL16 = (() => {
  const a = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) a[i] = i;
  return a;
})();

t('F16 -> F32 is exact for all 65536 bit patterns (NaN payloads kept)', async () => {
  for (const k of (await instances()).all) {
    const out = new Uint32Array(k.toF32('F16', unaligned(bytesOf(ALL16))).buffer);
    for (let h = 0; h < 65536; h++) {
      const want = refF16toF32Bits(h);
      if (out[h] !== want) assert.unreachable(`${label(k)}: f16 0x${h.toString(16)} -> 0x${out[h].toString(16)}, want 0x${want.toString(16)}`);
    }
  }
});

t('BF16 -> F32 is exact for all 65536 bit patterns', async () => {
  for (const k of (await instances()).all) {
    const out = new Uint32Array(k.toF32('BF16', unaligned(bytesOf(ALL16), 1)).buffer);
    for (let h = 0; h < 65536; h++) {
      const want = refBF16toF32Bits(h);
      if (out[h] !== want) assert.unreachable(`${label(k)}: bf16 0x${h.toString(16)} -> 0x${out[h].toString(16)}, want 0x${want.toString(16)}`);
    }
  }
});

// Inputs for narrowing: every f16/bf16 value as f32, every midpoint between neighbours (ties), the
// points just either side of each midpoint, and random f32 bit patterns including NaN and Inf.
function narrowingInputs(kind: 'f16' | 'bf16'): Uint32Array {
  const ref = kind === 'f16' ? refF16toF32Bits : refBF16toF32Bits;
  const out: number[] = [];
  for (let h = 0; h < 65536; h++) {
    const lo = ref(h);
    out.push(lo);
    const e = (h >> (kind === 'f16' ? 10 : 7)) & (kind === 'f16' ? 31 : 255);
    if (e === (kind === 'f16' ? 31 : 255) || (h & 0x7fff) === 0x7fff) continue;
    const a = bitsF32(lo), b = bitsF32(ref(h + 1));
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    const f = new Float32Array([(a + b) / 2]);
    const mid = new Uint32Array(f.buffer)[0];
    out.push(mid, mid + 1, mid - 1);
  }
  const r = rng(77);
  for (let i = 0; i < 100000; i++) out.push(r.u32());
  out.push(0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x477ff000, 0x477fefff, 0x477ff001, 0x7f7fffff, 0x33000000, 0x33000001, 0x80000000);
  return new Uint32Array(out.map((x) => x >>> 0));
}

t('F32 -> F16 rounds to nearest even (ties, subnormals, overflow, NaN) against a value-based reference', async () => {
  const inp = narrowingInputs('f16');
  const f = new Float32Array(inp.buffer);
  const wantF16 = Array.from(inp, refF32toF16);
  for (const k of (await instances()).some) {
    const out = new Uint16Array(k.fromF32('F16', f).slice().buffer);
    for (let i = 0; i < inp.length; i++) {
      const want = wantF16[i];
      if (out[i] !== want) assert.unreachable(`${label(k)}: f32 0x${inp[i].toString(16)} -> 0x${out[i].toString(16)}, want 0x${want.toString(16)}`);
    }
  }
});

t('F32 -> BF16 rounds to nearest even against a value-based reference', async () => {
  const inp = narrowingInputs('bf16');
  const f = new Float32Array(inp.buffer);
  const wantBF16 = Array.from(inp, refF32toBF16);
  for (const k of (await instances()).some) {
    const out = new Uint16Array(k.fromF32('BF16', f).slice().buffer);
    for (let i = 0; i < inp.length; i++) {
      const want = wantBF16[i];
      if (out[i] !== want) assert.unreachable(`${label(k)}: f32 0x${inp[i].toString(16)} -> 0x${out[i].toString(16)}, want 0x${want.toString(16)}`);
    }
  }
});

t('F16 and BF16 round trips are the identity on every non-NaN pattern; NaNs come back quiet', async () => {
  const { simd } = await instances();
  for (const dt of ['F16', 'BF16'] as const) {
    const back = new Uint16Array(simd.fromF32(dt, simd.toF32(dt, bytesOf(ALL16))).slice().buffer);
    const quiet = dt === 'F16' ? 0x200 : 0x40;
    const expMask = dt === 'F16' ? 0x7c00 : 0x7f80;
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & expMask) === expMask && (h & ~expMask & 0x7fff) !== 0;
      const want = isNaN ? h | quiet : h;
      if (back[h] !== want) assert.unreachable(`${dt} 0x${h.toString(16)} -> 0x${back[h].toString(16)}`);
    }
  }
});

t('F64 <-> F32 match Math.fround and exact widening; lengths 0..40 and unaligned bytes', async () => {
  const r = rng(5);
  for (const k of (await instances()).all) {
    for (const n of [0, 1, 3, 7, 8, 9, 15, 16, 17, 40, 1001]) {
      const d = new Float64Array(n);
      for (let i = 0; i < n; i++) d[i] = i % 9 === 0 ? [NaN, Infinity, -Infinity, -0, 1e-310, 3.4028235677973366e38, 1e39][i % 7] : (r.normal() * 2 ** (r.int(60) - 30));
      const f = k.toF32('F64', unaligned(bytesOf(d)));
      const want = Float32Array.from(d, (x) => Math.fround(x));
      assert.is(sameF32(f, want), null, `${label(k)} n=${n}`);
      const wide = new Float64Array(k.fromF32('F64', want).slice().buffer);
      for (let i = 0; i < n; i++) assert.ok(Object.is(wide[i], want[i]) || (wide[i] !== wide[i] && want[i] !== want[i]), `widen ${i}`);
    }
  }
});

t('integer dtypes convert to f32 exactly (I8, U8, I16, U16, BOOL) and I32/I64 round to nearest', async () => {
  const { simd, scalar } = await instances();
  const i8 = new Int8Array([-128, -1, 0, 1, 127]);
  const u16 = new Uint16Array([0, 1, 65535, 40000]);
  const i64 = new BigInt64Array([0n, -1n, 9007199254740993n, -(2n ** 63n)]);
  for (const k of [simd, scalar]) {
    assert.equal(Array.from(k.toF32('I8', bytesOf(i8))), [-128, -1, 0, 1, 127]);
    assert.equal(Array.from(k.toF32('U16', unaligned(bytesOf(u16)))), [0, 1, 65535, 40000]);
    assert.equal(Array.from(k.toF32('BOOL', new Uint8Array([0, 1, 1]))), [0, 1, 1]);
    assert.equal(Array.from(k.toF32('I64', bytesOf(i64))), [0, -1, Math.fround(9007199254740992), -(2 ** 63)]);
  }
});

t('conversion rejects partial elements and unsupported dtypes with typed errors', async () => {
  const { simd } = await instances();
  assert.throws(() => simd.toF32('F16', new Uint8Array(3)), (e: any) => e.code === 'E_ARGUMENT');
  assert.throws(() => simd.toF32('F8_E4M3', new Uint8Array(3)), (e: any) => e.code === 'E_ARGUMENT');
  assert.throws(() => simd.fromF32('I8', new Float32Array(3)), (e: any) => e.code === 'E_ARGUMENT');
});

t('SIMD and scalar builds convert edge values to identical bits', async () => {
  const { simd, scalar } = await instances();
  const x = edgyF32(5003, 9);
  for (const dt of ['F16', 'BF16', 'F64'] as const) {
    const a = simd.fromF32(dt, x), b = scalar.fromF32(dt, x);
    assert.equal(Array.from(a), Array.from(b), dt);
  }
});

t.run();
