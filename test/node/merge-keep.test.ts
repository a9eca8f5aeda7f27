// Merged models stay loadable: merge-models writes the first model with merged tensor values.
// Self-merges are byte-identical in every format; fine-tune merges keep every non-tensor field
// (checked with independent readers: @huggingface/gguf, torch, numpy, JSON); dtypes and sizes
// stay; requantized ggml blocks are decoded by an independent numpy reference in the test.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { concat, memorySink } from '../../src/core/io.ts';
import { f32ToF16Bits, quantizeGgml } from '../../src/core/quantize-ggml.ts';
import { quantizeGgmlK } from '../../src/core/quantize-ggml-k.ts';
import { getKernels } from '../../src/core/kernels.ts';
import { getFormat } from '../../src/formats/index.ts';
import { writeGguf, GGUFValueType as V, type GGUFKeyValue } from '../../src/formats/gguf.ts';
import { writeTfjs, type TfjsWriteTensor } from '../../src/formats/tfjs.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { parseStrategySpec } from '../../src/merges/index.ts';
import { mergeIntoFirst, skeletonOf } from '../../src/merges/merge-into-first.ts';
import type { TensorReport } from '../../src/merges/merge-files.ts';
import { openCheckpointFile } from '../../src/node/files/open-checkpoint.ts';
import { lcgFloats } from '../shared/test-data.ts';
import { cleanup, fixturesDir, git, run, sha256, tempDir, theta, thetaOk, thetaRepo } from './helpers.ts';

const PYTHON = '/usr/bin/python3';
const t = suite('merge-models keeps the first model (non-tensor bytes, dtypes, quantized types)');

function py(code: string, args: string[] = []): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`python failed (needs ${PYTHON} with numpy and torch 1.13: apt-get install -y python3-numpy; pip install torch==1.13): ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

const bytesOf = (a: Float32Array | Uint16Array | BigInt64Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
const f16 = (a: Float32Array) => bytesOf(Uint16Array.from(a, (x) => f32ToF16Bits(x)));

/** Merge files in-process into the first one's skeleton; TF.js files come back by name. */
async function merge(paths: string[], strategy = 'average', opts: { nonFloat?: 'ours' | 'theirs' } = {}): Promise<{ bytes: Uint8Array; files: Map<string, Uint8Array>; reports: TensorReport[] }> {
  const readers = await Promise.all(paths.map((p) => openCheckpointFile(p)));
  const again = await openCheckpointFile(paths[0]);
  const skeleton = await skeletonOf(again);
  await again.close();
  const format = getFormat(readers[0].format);
  const reports: TensorReport[] = [];
  const single = memorySink();
  const files = new Map<string, Uint8Array>();
  const multi = 'rebuildFiles' in format;
  await mergeIntoFirst({
    models: readers.map((reader, i) => ({ reader, label: paths[i] })),
    choice: parseStrategySpec(strategy),
    kernels: await getKernels(),
    nonFloat: opts.nonFloat,
    onReport: (r) => reports.push(r),
    format,
    skeleton,
    sink: multi ? async (p: string) => { const parts: Uint8Array[] = []; return { async write(b: Uint8Array) { parts.push(b.slice()); }, async close() { files.set(p, concat(parts)); } }; } : single,
  });
  for (const r of readers) await r.close();
  return { bytes: single.bytes(), files, reports };
}

async function writeWith(id: string, path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  const s = memorySink();
  await getFormat(id).write(tensors, s, metadata ? { metadata } : undefined);
  writeFileSync(path, s.bytes());
}

// --- GGUF: many key/values, F16 + Q8_0 + Q4_0 + Q4_K (opaque) tensors, alignment 64 ----------

const KV: GGUFKeyValue[] = [
  { key: 'general.architecture', type: V.STRING, value: 'llama' },
  { key: 'general.name', type: V.STRING, value: 'tiny' },
  { key: 'general.alignment', type: V.UINT32, value: 64 },
  { key: 'llama.context_length', type: V.UINT32, value: 2048 },
  { key: 'llama.rope.freq_base', type: V.FLOAT32, value: 10000 },
  { key: 'tokenizer.ggml.tokens', type: V.ARRAY, value: { type: V.STRING, values: ['<s>', '</s>', 'a'] } },
  { key: 'tokenizer.ggml.scores', type: V.ARRAY, value: { type: V.FLOAT32, values: [0, 0, -1.5] } },
  { key: 'general.file_type', type: V.UINT32, value: 7 },
];

function ggufTensors(bump: number): (TensorToWrite & { ggmlType?: number; dims?: number[] })[] {
  const w = (n: number, seed: number) => lcgFloats(n, seed).map((x, i) => x + (i % 7 === 0 ? bump : 0));
  const q4k = new Uint8Array(144 * 2);
  for (let i = 0; i < q4k.length; i++) q4k[i] = (i * 37 + 11) & 0xff;
  return [
    { name: 'token_embd.weight', dtype: 'F16', shape: [4, 64], data: f16(w(256, 1)) },
    { name: 'blk.0.attn_q.weight', dtype: 'U8', shape: [4, 68], data: quantizeGgml('Q8_0', w(256, 2)), ggmlType: 8, dims: [64, 4] },
    { name: 'blk.0.ffn_up.weight', dtype: 'U8', shape: [4, 36], data: quantizeGgml('Q4_0', w(256, 3)), ggmlType: 2, dims: [64, 4] },
    { name: 'blk.0.ffn_down.weight', dtype: 'U8', shape: [2, 144], data: q4k, ggmlType: 12, dims: [256, 2] },
    { name: 'output_norm.weight', dtype: 'F32', shape: [64], data: bytesOf(w(64, 5)) },
  ];
}

async function writeGgufFile(path: string, bump: number): Promise<void> {
  const s = memorySink();
  await writeGguf(ggufTensors(bump), s, { kv: KV.map((x) => ({ ...x })), alignment: 64 });
  writeFileSync(path, s.bytes());
}

/** Independent numpy decoding of ggml Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 blocks (block layouts as ggml defines them). */
const NUMPY_DEQUANT = `
import sys, numpy as np
kind, path = sys.argv[1], sys.argv[2]
b = np.fromfile(path, dtype=np.uint8)
size = {'Q8_0': 34, 'Q4_0': 18, 'Q4_1': 20, 'Q5_0': 22, 'Q5_1': 24}[kind]
blk = b.reshape(-1, size)
d = blk[:, 0:2].copy().view(np.float16).astype(np.float32)
if kind == 'Q8_0':
    x = d * blk[:, 2:].view(np.int8).astype(np.float32)
else:
    off = 4 if kind in ('Q4_1', 'Q5_1') else 2
    m = blk[:, 2:4].copy().view(np.float16).astype(np.float32) if off == 4 else None
    if kind.startswith('Q5'):
        qh = blk[:, off:off+4].copy().view(np.uint32)
        qs = blk[:, off+4:]
        hi = ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)
    else:
        qs = blk[:, off:]
        hi = np.zeros((blk.shape[0], 32), np.int32)
    q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int32) + 16 * hi
    if m is not None:
        x = d * q + m
    else:
        x = d * (q - (8 if kind == 'Q4_0' else 16))
np.asarray(x, np.float32).reshape(-1).tofile(sys.stdout.buffer) if False else sys.stdout.write(' '.join(repr(float(v)) for v in x.reshape(-1)))
`;

function numpyDequant(kind: string, bytes: Uint8Array, dir: string): Float32Array {
  const p = join(dir, `q-${kind}.bin`);
  writeFileSync(p, bytes);
  return Float32Array.from(py(NUMPY_DEQUANT, [kind, p]).trim().split(' ').map(Number));
}

t('ggml quantizers: blocks decoded by numpy are within a scale step of the input, in every type', async () => {
  const dir = tempDir();
  try {
    const x = lcgFloats(32 * 40, 17).map((v, i) => v * (1 + (i >> 5) % 5) + (i % 97 === 0 ? 3 : 0));
    for (const [kind, steps] of [['Q8_0', 127], ['Q4_0', 15], ['Q4_1', 15], ['Q5_0', 31], ['Q5_1', 31]] as const) {
      const q = quantizeGgml(kind, x);
      const back = numpyDequant(kind, q, dir);
      assert.is(back.length, x.length, kind);
      for (let b = 0; b < 40; b++) {
        const blk = x.subarray(b * 32, b * 32 + 32);
        const range = Math.max(...blk) - Math.min(...blk);
        const amax = Math.max(...blk.map(Math.abs));
        const step = kind === 'Q8_0' ? amax / 127 : kind.endsWith('_1') ? range / steps : (2 * amax) / steps;
        for (let j = 0; j < 32; j++) {
          const e = Math.abs(back[b * 32 + j] - blk[j]);
          assert.ok(e <= step * 1.1 + 1e-6, `${kind} block ${b} value ${j}: error ${e} > step ${step}`);
        }
      }
    }
  } finally {
    cleanup(dir);
  }
});

/** Independent numpy decoding of ggml K-quant super-blocks (Q4_K, Q5_K, Q6_K, Q8_K), written from ggml's block layouts. */
const NUMPY_DEQUANT_K = `
import sys, numpy as np
kind, path = sys.argv[1], sys.argv[2]
b = np.fromfile(path, dtype=np.uint8)
size = {'Q2_K': 84, 'Q3_K': 110, 'Q4_K': 144, 'Q5_K': 176, 'Q6_K': 210, 'Q8_K': 292}[kind]
out = []
def f16(x): return float(np.frombuffer(bytes(x), dtype=np.float16)[0])
for blk in b.reshape(-1, size):
    y = np.zeros(256, np.float64)
    i = np.arange(256)
    if kind in ('Q2_K', 'Q3_K'):
        # 2-bit codes: value i is in byte 32*(i//128) + i%32 of qs, bits 2*((i//32)%4)
        base = 16 if kind == 'Q2_K' else 32
        q = (blk[base + 32 * (i // 128) + i % 32].astype(np.int32) >> (2 * ((i // 32) % 4))) & 3
        if kind == 'Q2_K':
            sc = blk[0:16].astype(np.int32)[i // 16]
            y = f16(blk[80:82]) * (sc & 15) * q - f16(blk[82:84]) * (sc >> 4)
        else:
            s6 = blk[96:108].astype(np.int32)
            k = i // 16
            sc = (((s6[k % 8] >> np.where(k >= 8, 4, 0)) & 15) | (((s6[8 + k % 4] >> (2 * (k // 4))) & 3) << 4)) - 32
            h = (blk[i % 32].astype(np.int32) >> (i // 32)) & 1
            y = f16(blk[108:110]) * sc * (q - np.where(h == 1, 0, 4))
    elif kind == 'Q8_K':
        d = float(np.frombuffer(bytes(blk[0:4]), dtype=np.float32)[0])
        y = d * blk[4:260].view(np.int8).astype(np.float64)
    elif kind == 'Q6_K':
        ql, qh, sc = blk[0:128].astype(np.int32), blk[128:192].astype(np.int32), blk[192:208].view(np.int8).astype(np.float64)
        d = f16(blk[208:210])
        for h in range(2):
            L, H = ql[64*h:64*h+64], qh[32*h:32*h+32]
            for l in range(32):
                q = [(L[l] & 15) | (((H[l] >> 0) & 3) << 4), (L[l+32] & 15) | (((H[l] >> 2) & 3) << 4), (L[l] >> 4) | (((H[l] >> 4) & 3) << 4), (L[l+32] >> 4) | (((H[l] >> 6) & 3) << 4)]
                for k in range(4):
                    pos = 128*h + 32*k + l
                    y[pos] = d * sc[pos // 16] * (q[k] - 32)
    else:
        d, dmin = f16(blk[0:2]), f16(blk[2:4])
        s = blk[4:16].astype(np.int32)
        def sm(j):
            if j < 4: return s[j] & 63, s[j+4] & 63
            return (s[j+4] & 15) | ((s[j-4] >> 6) << 4), (s[j+4] >> 4) | ((s[j] >> 6) << 4)
        qh = blk[16:48].astype(np.int32) if kind == 'Q5_K' else None
        qs = blk[48:176].astype(np.int32) if kind == 'Q5_K' else blk[16:144].astype(np.int32)
        for it in range(4):
            for half in range(2):
                sc, m = sm(2*it + half)
                for l in range(32):
                    q = (qs[32*it + l] >> (4*half)) & 15
                    if qh is not None and (qh[l] >> (2*it + half)) & 1: q += 16
                    y[64*it + 32*half + l] = d * sc * q - dmin * m
    out.append(y)
sys.stdout.write(' '.join(repr(float(v)) for v in np.concatenate(out)))
`;

t('ggml K-quant quantizers: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K super-blocks decoded by numpy are within a step of the input', async () => {
  const dir = tempDir();
  try {
    // sub-blocks of different magnitudes and signs, as real weights have
    const x = lcgFloats(256 * 3, 23).map((v, i) => v * (0.2 + ((i >> 4) % 9) * 0.3) + (((i >> 5) % 3) - 1) * 0.4);
    for (const [kind, nmax] of [['Q2_K', 3], ['Q3_K', 7], ['Q4_K', 15], ['Q5_K', 31], ['Q6_K', 63], ['Q8_K', 255]] as const) {
      const q = quantizeGgmlK(kind, x);
      const p = join(dir, `k-${kind}.bin`);
      writeFileSync(p, q);
      const back = Float32Array.from(py(NUMPY_DEQUANT_K, [kind, p]).trim().split(' ').map(Number));
      assert.is(back.length, x.length, kind);
      for (let sb = 0; sb < 3; sb++) {
        const blk = x.subarray(sb * 256, sb * 256 + 256);
        const amax = Math.max(...blk.map(Math.abs));
        // the coarsest step the super-block can have: its whole span over the codes
        const step = (kind === 'Q2_K' || kind === 'Q4_K' || kind === 'Q5_K' ? Math.max(...blk) - Math.min(0, ...blk) : 2 * amax) / nmax;
        let sq = 0;
        for (let j = 0; j < 256; j++) {
          const e = Math.abs(back[sb * 256 + j] - blk[j]);
          sq += e * e;
          assert.ok(e <= step + 1e-6, `${kind} super-block ${sb} value ${j}: error ${e} > ${step}`);
        }
        assert.ok(Math.sqrt(sq / 256) <= step / 2, `${kind} super-block ${sb}: rms error ${Math.sqrt(sq / 256)} vs step ${step}`);
      }
    }
  } finally {
    cleanup(dir);
  }
});

t('self-merge is byte-identical: safetensors with __metadata__, npz stored and compressed, nested PyTorch, GGUF, TF.js', async () => {
  const dir = tempDir();
  try {
    const st = join(dir, 'a.safetensors');
    await writeWith('safetensors', st, [
      { name: 'z.weight', dtype: 'F16', shape: [8], data: f16(lcgFloats(8, 1)) },
      { name: 'a.weight', dtype: 'BF16', shape: [4], data: new Uint8Array(8).fill(63) },
      { name: 'step', dtype: 'I64', shape: [1], data: bytesOf(BigInt64Array.of(5n)) },
    ], { format: 'pt', note: 'kept' });
    const gg = join(dir, 'a.gguf');
    await writeGgufFile(gg, 0);
    const files = [st, gg, join(fixturesDir, 'arrays.npz'), join(fixturesDir, 'arrays-compressed.npz'), join(fixturesDir, 'nested-checkpoint.pt'), join(fixturesDir, 'shared-storage.pt')];
    for (const f of files) {
      const { bytes, reports } = await merge([f, f]);
      assert.ok(reports.every((r) => r.how === 'identical'), f);
      assert.is(sha256(bytes), sha256(readFileSync(f)), f);
    }
    const tj = join(dir, 'tj');
    await writeTfjsModel(tj, 0);
    const { files: out } = await merge([join(tj, 'model.json'), join(tj, 'model.json')]);
    assert.ok(out.size > 2);
    for (const [p, b] of out) assert.is(sha256(b), sha256(readFileSync(join(tj, p))), p);
  } finally {
    cleanup(dir);
  }
});

t('GGUF fine-tunes: every key/value, tensor info and offset kept (@huggingface/gguf), F16 stays F16, Q8_0/Q4_0 requantized within the reported error', async () => {
  const dir = tempDir();
  try {
    const [a, b, out] = [join(dir, 'a.gguf'), join(dir, 'b.gguf'), join(dir, 'm.gguf')];
    await writeGgufFile(a, 0);
    await writeGgufFile(b, 0.25);
    const r = await theta(dir, ['merge-models', a, b, '--strategy', 'average', '--json', '-o', out]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /'blk\.0\.attn_q\.weight' requantized to ggml:Q8_0: max error/);
    const report = JSON.parse(r.stdout) as { tensors: TensorReport[] };
    assert.equal(report.tensors.map((x) => x.name).sort(), ['blk.0.attn_q.weight', 'blk.0.ffn_up.weight']);
    assert.is(statSync(out).size, statSync(a).size);
    const [ha, hm] = [await hfGguf(a, { allowLocalFile: true }), await hfGguf(out, { allowLocalFile: true })];
    assert.equal(hm.metadata, ha.metadata);
    assert.equal(hm.tensorInfos, ha.tensorInfos);
    assert.is(hm.tensorDataOffset, ha.tensorDataOffset);
    // values: numpy decodes the inputs and the output; the output is the float average within the report's error
    const ta = ggufTensors(0);
    const tb = ggufTensors(0.25);
    const mergedBytes = readFileSync(out);
    const dataAt = Number(hm.tensorDataOffset);
    for (const [i, kind] of [[1, 'Q8_0'], [2, 'Q4_0']] as const) {
      const info = hm.tensorInfos[i];
      const got = numpyDequant(kind, mergedBytes.subarray(dataAt + Number(info.offset), dataAt + Number(info.offset) + ta[i].data.length), dir);
      const [xa, xb] = [numpyDequant(kind, ta[i].data, dir), numpyDequant(kind, tb[i].data, dir)];
      const rep = report.tensors.find((x) => x.name === info.name)!;
      let max = 0;
      for (let k = 0; k < got.length; k++) max = Math.max(max, Math.abs(got[k] - (xa[k] + xb[k]) / 2));
      assert.ok(max <= rep.maxError! * 1.0001 + 1e-7, `${kind}: numpy max error ${max} vs reported ${rep.maxError}`);
      assert.ok(rep.maxError! > 0 && rep.maxError! < (kind === 'Q8_0' ? 0.02 : 0.2), `${kind} error ${rep.maxError}`);
    }
    // the Q4_K tensor is the same in both, so it is kept; F16 merged as F16
    const q4k = hm.tensorInfos[3];
    assert.equal(mergedBytes.subarray(dataAt + Number(q4k.offset), dataAt + Number(q4k.offset) + 288), Buffer.from(ta[3].data));
  } finally {
    cleanup(dir);
  }
});

t('safetensors fine-tunes: header order and __metadata__ kept, F16/BF16 stay, ints are not averaged, tensor-set differences reported', async () => {
  const dir = tempDir();
  try {
    const mk = (bump: number, step: bigint, extra?: string): TensorToWrite[] => [
      { name: 'z.weight', dtype: 'F16', shape: [8], data: f16(lcgFloats(8, 1).map((x) => x + bump)) },
      { name: 'a.weight', dtype: 'BF16', shape: [2], data: new Uint8Array([0, 63 + bump * 4, 0, 64]) },
      { name: 'step', dtype: 'I64', shape: [1], data: bytesOf(BigInt64Array.of(step)) },
      ...(extra ? [{ name: extra, dtype: 'F32' as const, shape: [1], data: new Uint8Array(4) }] : []),
    ];
    const [a, b] = [join(dir, 'a.safetensors'), join(dir, 'b.safetensors')];
    await writeWith('safetensors', a, mk(0, 5n, 'only.in.a'), { format: 'pt', note: 'first' });
    await writeWith('safetensors', b, mk(1, 9n, 'only.in.b'), { note: 'second' });
    const fail = await theta(dir, ['merge-models', a, b, '--strategy', 'average', '-o', join(dir, 'x.safetensors')]);
    assert.is(fail.code, 1, fail.stderr);
    assert.match(fail.stderr, /tensor 'step' is I64 and differs .* --non-float/);
    const out = join(dir, 'm.safetensors');
    const r = await theta(dir, ['merge-models', a, b, '--strategy', 'average', '--non-float', 'theirs', '-o', out]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /'only\.in\.a' is only in .*a\.safetensors: kept/);
    assert.match(r.stderr, /'only\.in\.b' is only in .*b\.safetensors: dropped/);
    const header = (p: string) => { const f = readFileSync(p); const n = Number(f.readBigUInt64LE(0)); return { n, json: f.subarray(8, 8 + n).toString() }; };
    assert.is(header(out).json, header(a).json, 'the same header bytes: order, dtypes, offsets, __metadata__');
    assert.is(statSync(out).size, statSync(a).size);
    const got = readFileSync(out).subarray(8 + header(out).n);
    const hdr = JSON.parse(header(a).json);
    const at = (name: string) => got.subarray(hdr[name].data_offsets[0], hdr[name].data_offsets[1]);
    assert.is(Buffer.from(at('step')).readBigInt64LE(0), 9n, 'step taken from theirs');
    const z = new Uint16Array(at('z.weight').slice().buffer);
    const k = await getKernels();
    const zf = k.toF32('F16', at('z.weight').slice());
    const want = lcgFloats(8, 1).map((x) => x + 0.5);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(zf[i] - want[i]) < 2e-3, `z[${i}] ${zf[i]} vs ${want[i]} (${z[i]})`);
  } finally {
    cleanup(dir);
  }
});

t('PyTorch training checkpoint fine-tunes: torch loads the merge with its nesting, epoch, config, key order and optimizer state', async () => {
  const dir = tempDir();
  try {
    py(`
import sys, torch, collections
torch.manual_seed(0)
def ck(bump, path):
    m = collections.OrderedDict([('fc2.weight', torch.ones(3, 4) * (1 + bump)), ('fc1.weight', torch.arange(8.).reshape(2, 4).half() + bump), ('bn.num_batches_tracked', torch.tensor(10 + int(bump * 4)))])
    w = m['fc2.weight']
    torch.save({'epoch': 3, 'config': {'lr': 0.1, 'name': 'tiny'}, 'model': m, 'optimizer': {'state': {0: {'exp_avg': torch.zeros(3, 4) + bump}}, 'param_groups': [{'lr': 0.1, 'params': [0]}]}, 'tied': w}, path)
ck(0.0, sys.argv[1]); ck(0.5, sys.argv[2])
`, [join(dir, 'a.pt'), join(dir, 'b.pt')]);
    const out = join(dir, 'm.pt');
    const r = await theta(dir, ['merge-models', join(dir, 'a.pt'), join(dir, 'b.pt'), '--strategy', 'average', '--non-float', 'ours', '-o', out]);
    assert.is(r.code, 0, r.stderr);
    const seen = py(`
import sys, torch, json
c = torch.load(sys.argv[1])
print(json.dumps({'keys': list(c.keys()), 'epoch': c['epoch'], 'config': c['config'], 'model': list(c['model'].keys()),
  'fc2': c['model']['fc2.weight'].tolist(), 'fc1dtype': str(c['model']['fc1.weight'].dtype), 'fc1': c['model']['fc1.weight'].float().tolist(),
  'nbt': int(c['model']['bn.num_batches_tracked']), 'tied': c['tied'].data_ptr() == c['model']['fc2.weight'].data_ptr(),
  'exp_avg': c['optimizer']['state'][0]['exp_avg'].tolist(), 'groups': c['optimizer']['param_groups']}))
`, [out]);
    const c = JSON.parse(seen);
    assert.equal(c.keys, ['epoch', 'config', 'model', 'optimizer', 'tied']);
    assert.is(c.epoch, 3);
    assert.equal(c.config, { lr: 0.1, name: 'tiny' });
    assert.equal(c.model, ['fc2.weight', 'fc1.weight', 'bn.num_batches_tracked']);
    assert.equal(c.fc2, [[1.25, 1.25, 1.25, 1.25], [1.25, 1.25, 1.25, 1.25], [1.25, 1.25, 1.25, 1.25]]);
    assert.is(c.fc1dtype, 'torch.float16');
    assert.equal(c.fc1, [[0.25, 1.25, 2.25, 3.25], [4.25, 5.25, 6.25, 7.25]]);
    assert.is(c.nbt, 10, 'the int counter is ours, not averaged');
    assert.is(c.tied, true, 'tied weights stay one storage');
    assert.equal(c.exp_avg[0], [0.25, 0.25, 0.25, 0.25]);
    assert.equal(c.groups, [{ lr: 0.1, params: [0] }]);
    assert.is(statSync(out).size, statSync(join(dir, 'a.pt')).size);
  } finally {
    cleanup(dir);
  }
});

function tfjsWeights(bump: number): TfjsWriteTensor[] {
  const k = lcgFloats(600, 3).map((x, i) => x + (i % 5 === 0 ? bump : 0));
  return [
    { name: 'dense/kernel', dtype: 'F32', shape: [20, 30], data: bytesOf(k) },
    { name: 'dense/half', dtype: 'F16', shape: [40], data: f16(lcgFloats(40, 4).map((x) => x + bump)), quantization: { dtype: 'float16' } },
    { name: 'q/codes', dtype: 'U8', shape: [300], data: Uint8Array.from({ length: 300 }, (_, i) => (i * 7 + bump * 40) & 0xff), quantization: { dtype: 'uint8', scale: 0.01, min: -1 } },
    { name: 'ids', dtype: 'I32', shape: [4], data: bytesOf(new Float32Array(new Int32Array([1, 2, 3, 4 + bump * 2]).buffer)) },
  ];
}

async function writeTfjsModel(dir: string, bump: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await writeTfjs(tfjsWeights(bump), async (p) => {
    const parts: Uint8Array[] = [];
    return { async write(b) { parts.push(b.slice()); }, async close() { writeFileSync(join(dir, p), concat(parts)); } };
  }, { shardBytes: 1000 });
  // a real converter's fields around the manifest: they must survive the merge
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'graph-model', generatedBy: '2.15.0', convertedBy: 'TensorFlow.js Converter v4', signature: { inputs: { x: { name: 'x:0' } } }, modelTopology: { node: [{ name: 'x', op: 'Placeholder' }] }, ...json }));
}

t('TF.js fine-tunes: model.json byte for byte, shard names and sizes kept, float16 merged as float16, uint8 requantized with the manifest scale', async () => {
  const dir = tempDir();
  try {
    await writeTfjsModel(join(dir, 'a'), 0);
    await writeTfjsModel(join(dir, 'b'), 1);
    const { files, reports } = await merge([join(dir, 'a/model.json'), join(dir, 'b/model.json')], 'average', { nonFloat: 'ours' });
    assert.equal(files.get('model.json'), new Uint8Array(readFileSync(join(dir, 'a/model.json'))));
    const json = JSON.parse(readFileSync(join(dir, 'a/model.json'), 'utf8'));
    const shards: string[] = json.weightsManifest[0].paths;
    assert.ok(shards.length > 1);
    for (const p of shards) assert.is(files.get(p)!.length, statSync(join(dir, 'a', p)).size, p);
    const all = concat(shards.map((p) => files.get(p)!));
    const half = (await getKernels()).toF32('F16', all.slice(2400, 2480));
    const want = lcgFloats(40, 4).map((x) => x + 0.5);
    for (let i = 0; i < 40; i++) assert.ok(Math.abs(half[i] - want[i]) < 2e-3, `half[${i}]`);
    const rq = reports.find((r) => r.name === 'q/codes')!;
    assert.is(rq.scheme, 'tfjs:uint8');
    assert.ok(rq.maxError! <= 0.005 + 1e-6, `uint8 error ${rq.maxError} is at most half a step`);
    const ids = new Int32Array(all.slice(2780, 2796).buffer);
    assert.equal([...ids], [1, 2, 3, 4], 'int32 taken from ours');
  } finally {
    cleanup(dir);
  }
});

t('git merge of a GGUF changed on both branches: the driver requantizes Q8_0/Q4_0 into their types and keeps the header', async () => {
  const dir = await thetaRepo(['*.gguf']);
  try {
    const file = join(dir, 'm.gguf');
    const commit = async (bump: number, msg: string) => {
      await writeGgufFile(file, bump);
      await thetaOk(dir, 'add', 'm.gguf', '.gitattributes');
      await git(dir, 'commit', '-q', '-m', msg);
    };
    await commit(0, 'base');
    await git(dir, 'checkout', '-q', '-b', 'other');
    await commit(0.3, 'theirs');
    await git(dir, 'checkout', '-q', 'main');
    await commit(0.1, 'ours');
    const oursBytes = readFileSync(file);
    const r = await run('git', ['merge', '--no-edit', 'other'], dir, { env: { THETA_MERGE_STRATEGY: 'average' } });
    assert.is(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr + r.stdout, /blk\.0\.attn_q\.weight \(average.*requantized to ggml:Q8_0: max error/);
    const merged = readFileSync(file);
    assert.is(merged.length, oursBytes.length);
    writeFileSync(join(dir, 'ours.bin'), oursBytes);
    const [a, m] = [await hfGguf(join(dir, 'ours.bin'), { allowLocalFile: true }), await hfGguf(file, { allowLocalFile: true })];
    assert.equal(m.metadata, a.metadata);
    assert.equal(m.tensorInfos, a.tensorInfos);
    const dataAt = Number(m.tensorDataOffset);
    const [to, tt] = [ggufTensors(0.1), ggufTensors(0.3)];
    const info = m.tensorInfos[1];
    const got = numpyDequant('Q8_0', merged.subarray(dataAt + Number(info.offset), dataAt + Number(info.offset) + 272), dir);
    const [xo, xt] = [numpyDequant('Q8_0', to[1].data, dir), numpyDequant('Q8_0', tt[1].data, dir)];
    for (let k = 0; k < got.length; k++) assert.ok(Math.abs(got[k] - (xo[k] + xt[k]) / 2) < 0.02, `Q8_0 value ${k}`);
  } finally {
    cleanup(dir);
  }
});

t('GGUF K-quants merge: Q6_K, Q4_K, Q3_K and Q2_K tensors changed on both sides are dequantized (the shared dequantizers), averaged and requantized to their own type within the reported error (numpy decodes)', async () => {
  const dir = tempDir();
  try {
    const xs = (bump: number, seed: number) => lcgFloats(512, seed).map((v, i) => v * (0.3 + ((i >> 4) % 5) * 0.2) + (i % 5 === 0 ? bump : 0));
    const mk = (bump: number): (TensorToWrite & { ggmlType?: number; dims?: number[] })[] => [
      { name: 'blk.0.ffn_down.weight', dtype: 'U8', shape: [2, 210], data: quantizeGgmlK('Q6_K', xs(bump, 31)), ggmlType: 14, dims: [256, 2] },
      { name: 'blk.0.ffn_gate.weight', dtype: 'U8', shape: [2, 144], data: quantizeGgmlK('Q4_K', xs(bump, 32)), ggmlType: 12, dims: [256, 2] },
      { name: 'blk.0.ffn_up.weight', dtype: 'U8', shape: [2, 84], data: quantizeGgmlK('Q2_K', xs(bump, 33)), ggmlType: 10, dims: [256, 2] },
      { name: 'blk.0.attn_v.weight', dtype: 'U8', shape: [2, 110], data: quantizeGgmlK('Q3_K', xs(bump, 34)), ggmlType: 11, dims: [256, 2] },
    ];
    const [a, b, out] = [join(dir, 'a.gguf'), join(dir, 'b.gguf'), join(dir, 'm.gguf')];
    for (const [p, bump] of [[a, 0], [b, 0.3]] as const) {
      const s = memorySink();
      await writeGguf(mk(bump), s, { kv: KV.map((x) => ({ ...x })), alignment: 64 });
      writeFileSync(p, s.bytes());
    }
    const r = await theta(dir, ['merge-models', a, b, '--strategy', 'average', '--json', '-o', out]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /requantized to ggml:Q6_K: max error/);
    assert.match(r.stderr, /requantized to ggml:Q4_K: max error/);
    assert.match(r.stderr, /requantized to ggml:Q2_K: max error/);
    assert.match(r.stderr, /requantized to ggml:Q3_K: max error/);
    assert.is(statSync(out).size, statSync(a).size, 'same types, same size');
    const report = JSON.parse(r.stdout) as { tensors: TensorReport[] };
    const hm = await hfGguf(out, { allowLocalFile: true });
    const merged = readFileSync(out);
    const dataAt = Number(hm.tensorDataOffset);
    const decode = (kind: string, bytes: Uint8Array) => {
      const p = join(dir, `d-${kind}.bin`);
      writeFileSync(p, bytes);
      return Float32Array.from(py(NUMPY_DEQUANT_K, [kind, p]).trim().split(' ').map(Number));
    };
    const [ta, tb] = [mk(0), mk(0.3)];
    for (const [i, kind] of [[0, 'Q6_K'], [1, 'Q4_K'], [2, 'Q2_K'], [3, 'Q3_K']] as const) {
      const info = hm.tensorInfos[i];
      const n = ta[i].data.length;
      const got = decode(kind, merged.subarray(dataAt + Number(info.offset), dataAt + Number(info.offset) + n));
      const [xa, xb] = [decode(kind, ta[i].data), decode(kind, tb[i].data)];
      const rep = report.tensors.find((x) => x.name === info.name)!;
      let max = 0;
      for (let k = 0; k < got.length; k++) max = Math.max(max, Math.abs(got[k] - (xa[k] + xb[k]) / 2));
      assert.ok(rep.maxError! > 0, `${kind}: a requantized tensor reports its error`);
      assert.ok(max <= rep.maxError! * 1.0001 + 1e-6, `${kind}: numpy max error ${max} vs reported ${rep.maxError}`);
      assert.ok(max < { Q6_K: 0.05, Q4_K: 0.25, Q3_K: 0.3, Q2_K: 0.4 }[kind], `${kind}: error ${max} is within a quantization step`);
    }
  } finally {
    cleanup(dir);
  }
});

t.run();
