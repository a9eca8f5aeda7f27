// Quantized weights in git: a GGUF with Q8_0, Q4_K and Q6_K tensors committed twice; `git theta
// diff`, textconv (`git diff`), `inspect` and the library's diffRevisions report numbers of the
// dequantized values, equal to a reference computed independently in numpy (written here from
// ggml's block definitions), with the type as stored and the logical shape.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as nodeFs from 'node:fs';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { memorySink } from '../../src/core/io.ts';
import { GGML_TYPE_BY_NAME, writeGguf } from '../../src/formats/gguf.ts';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { diffRevisions } from '../../src/repo/index.ts';
import { cleanup, git, inlineBytesBetween, objectFiles, sha256, tempDir, thetaOk, thetaRepo } from './helpers.ts';

const PYTHON = '/usr/bin/python3';
const Q = suite('quantized weights: numbers of dequantized values');

// Reference: ggml's block layouts (ggml-common.h) and dequantize_row_* (ggml-quants.c) in numpy,
// float32 in ggml's order of operations; statistics of the change in float64.
const REFERENCE = String.raw`
import numpy as np, json, sys, os
out = sys.argv[1]
def f16(a): return np.ascontiguousarray(a).view('<f2').astype(np.float32)
def deq_q8_0(b): return (f16(b[:, 0:2]) * b[:, 2:34].view(np.int8).astype(np.float32)).reshape(-1)
def scale_min_k4(s):
    n = s.shape[0]; sc = np.zeros((n, 8), np.uint8); m = np.zeros((n, 8), np.uint8)
    for j in range(8):
        if j < 4: sc[:, j] = s[:, j] & 63; m[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
            m[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc.astype(np.float32), m.astype(np.float32)
def deq_q4_K(b):
    n = b.shape[0]; d = f16(b[:, 0:2]); dmin = f16(b[:, 2:4]); sc, m = scale_min_k4(b[:, 4:16])
    qs = b[:, 16:144].reshape(n, 4, 32)
    q = np.stack([qs & 0xF, qs >> 4], axis=2).reshape(n, 8, 32).astype(np.float32)
    return ((d * sc)[:, :, None] * q - (dmin * m)[:, :, None]).reshape(-1)
def deq_q6_K(b):
    n = b.shape[0]; ql = b[:, 0:128]; qh = b[:, 128:192]
    sc = b[:, 192:208].view(np.int8).astype(np.float32); d = f16(b[:, 208:210])
    y = np.empty((n, 256), np.float32); is_ = np.arange(32) // 16
    for h in range(2):
        l = ql[:, h * 64:(h + 1) * 64]; hh = qh[:, h * 32:(h + 1) * 32]; s = sc[:, h * 8:(h + 1) * 8]
        qq = [(l[:, :32] & 0xF) | (((hh >> 0) & 3) << 4), (l[:, 32:] & 0xF) | (((hh >> 2) & 3) << 4),
              (l[:, :32] >> 4) | (((hh >> 4) & 3) << 4), (l[:, 32:] >> 4) | (((hh >> 6) & 3) << 4)]
        for k in range(4):
            y[:, h * 128 + k * 32:h * 128 + (k + 1) * 32] = (d * s[:, is_ + 2 * k]) * (qq[k].astype(np.float32) - np.float32(32))
    return y.reshape(-1)
# name: (ggml type, rows, columns, block values, block bytes, offsets of f16 scales, decode)
T = {'blk.0.attn_q.weight': ('Q8_0', 6, 64, 32, 34, [0], deq_q8_0),
     'blk.0.ffn_up.weight': ('Q4_K', 4, 512, 256, 144, [0, 2], deq_q4_K),
     'blk.0.ffn_down.weight': ('Q6_K', 4, 256, 256, 210, [208], deq_q6_K)}
rng = np.random.default_rng(1414)
ref = {}
for name, (ty, rows, cols, per, size, scales, deq) in T.items():
    n = rows * cols // per
    b1 = rng.integers(0, 256, (n, size), dtype=np.uint8)
    for p in scales: b1[:, p:p + 2] = np.frombuffer(rng.uniform(0.001, 0.02, n).astype('<f2').tobytes(), np.uint8).reshape(n, 2)
    b2 = b1.copy()
    quant_bytes = [i for i in range(size) if all(i not in (p, p + 1) for p in scales)]
    for k in range(n):  # a few quant bytes of every block, and one block's scale
        for i in rng.choice(quant_bytes, 3, replace=False): b2[k, i] = rng.integers(0, 256)
    b2[0, scales[0]:scales[0] + 2] = np.frombuffer(np.array([0.03], '<f2').tobytes(), np.uint8)
    open(os.path.join(out, name + '.v1'), 'wb').write(b1.tobytes())
    open(os.path.join(out, name + '.v2'), 'wb').write(b2.tobytes())
    a = deq(b1).astype(np.float64); c = deq(b2).astype(np.float64)
    l2 = float(np.sqrt(((c - a) ** 2).sum()))
    ref[name] = dict(type=ty, shape=[rows, cols], l2=l2, relative=l2 / float(np.sqrt((a * a).sum())),
                     maxabs=float(np.abs(c - a).max()), cosine=float((a * c).sum() / np.sqrt((a * a).sum() * (c * c).sum())),
                     mean=float(c.mean()), std=float(c.std()), l2_values=float(np.sqrt((c * c).sum())))
print(json.dumps(ref))
`;

interface Ref { type: string; shape: number[]; l2: number; relative: number; maxabs: number; cosine: number; mean: number; std: number; l2_values: number }

function reference(dir: string): Record<string, Ref> {
  const r = spawnSync(PYTHON, ['-c', REFERENCE, dir], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`this test needs NumPy for ${PYTHON}: install python3-numpy (apt-get install -y python3-numpy) (${r.stderr ?? r.error})`);
  return JSON.parse(r.stdout);
}

async function ggufFile(dir: string, ref: Record<string, Ref>, version: 'v1' | 'v2'): Promise<Uint8Array> {
  const norm = new Float32Array(64).map((_, i) => 1 + i / 64);
  const tensors = [
    { name: 'blk.0.attn_norm.weight', dtype: 'F32' as const, shape: [64], data: new Uint8Array(norm.buffer) },
    ...Object.entries(ref).map(([name, r]) => {
      const data = new Uint8Array(readFileSync(join(dir, `${name}.${version}`)));
      // ggml order: ne[0] (columns) first
      return { name, dtype: 'U8' as const, shape: [data.length], data, ggmlType: GGML_TYPE_BY_NAME[r.type], dims: [r.shape[1], r.shape[0]] };
    }),
  ];
  const sink = memorySink();
  await writeGguf(tensors, sink);
  return sink.bytes();
}

const close = (got: number, want: number, what: string) =>
  assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want) + 1e-12, `${what}: ${got} vs reference ${want}`);

Q('diff, textconv, inspect and the library give the dequantized numbers numpy gives', async () => {
  const data = tempDir('theta-quant-');
  const ref = reference(data);
  const dir = await thetaRepo(['*.gguf']);
  try {
    writeFileSync(join(dir, 'model.gguf'), await ggufFile(data, ref, 'v1'));
    await git(dir, 'add', '.gitattributes', 'model.gguf');
    await git(dir, 'commit', '-q', '-m', 'v1');
    const v1 = readFileSync(join(dir, 'model.gguf'));
    const v2 = await ggufFile(data, ref, 'v2');
    writeFileSync(join(dir, 'model.gguf'), v2);
    const objects = join(dir, '.git', 'lfs', 'objects');
    const before = objectFiles(objects);
    await git(dir, 'add', 'model.gguf');
    await git(dir, 'commit', '-q', '-m', 'v2');
    // the commit stores about the bytes of the three changed quantized tensors
    let stored = (await inlineBytesBetween(dir, 'HEAD~1', 'HEAD', ['model.gguf'])).bytes; // small objects ride inline in the metadata
    for (const [oid, b] of objectFiles(objects)) if (!before.has(oid)) stored += b.length;
    const changed = 12 * 34 + 8 * 144 + 4 * 210;
    assert.ok(stored > 0 && stored <= 1.1 * changed + 8192, `v2 stored ${stored} bytes for ${changed} bytes of changed tensors`);
    // checkouts give back each version byte for byte
    await git(dir, 'checkout', '-q', 'HEAD~1', '--', 'model.gguf');
    assert.is(sha256(readFileSync(join(dir, 'model.gguf'))), sha256(v1));
    await git(dir, 'checkout', '-q', 'HEAD', '--', 'model.gguf');
    assert.is(sha256(readFileSync(join(dir, 'model.gguf'))), sha256(v2));

    // metadata records what the bytes stand for
    const meta = parseMetadata(await git(dir, 'show', 'HEAD:model.gguf'));
    assert.equal(meta.tensors['blk.0.attn_q.weight'].quant, { scheme: 'ggml:Q8_0', shape: [6, 64] });
    assert.is(meta.tensors['blk.0.attn_q.weight'].dtype, 'U8');

    // git theta diff --json
    const out = JSON.parse(await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json'));
    const file = out.files[0];
    assert.is(file.summary.modified, 3);
    assert.is(file.summary.unchanged, 1);
    assert.is(file.tensors.length, 3, 'unchanged tensors are left out without --all');
    for (const [name, r] of Object.entries(ref)) {
      const t = file.tensors.find((x: { name: string }) => x.name === name);
      assert.is(t.dtype, r.type);
      assert.is(t.storage_dtype, 'U8');
      assert.equal(t.shape, r.shape);
      close(t.l2, r.l2, `${name} l2`);
      close(t.relative, r.relative, `${name} relative`);
      close(t.maxabs, r.maxabs, `${name} max|Δ|`);
      close(t.cosine, r.cosine, `${name} cosine`);
    }
    const all = JSON.parse(await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json', '--all'));
    assert.is(all.files[0].tensors.length, 4);

    // the table shows the type as stored and the logical shape
    const table = await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD');
    assert.match(table, /blk\.0\.ffn_up\.weight\s+Q4_K\[4,512\]/);

    // the library (what the page and the Deno example use)
    const lib = await diffRevisions({ fs: nodeFs, dir, from: 'HEAD~1', to: 'HEAD' });
    const q6 = lib.files[0].tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!;
    assert.is(q6.dtype, 'Q6_K');
    close(q6.l2!, ref['blk.0.ffn_down.weight'].l2, 'library l2');
    assert.is(lib.files[0].tensors.length, 3);

    // textconv (git diff): the dequantized statistics of each version
    const text = await git(dir, 'diff', 'HEAD~1', 'HEAD', '--', 'model.gguf');
    assert.match(text, /\+blk\.0\.attn_q\.weight {2}Q8_0\[6,64\]/);

    // inspect: the same values' statistics, the type as stored, logical parameter counts
    const ins = JSON.parse(await thetaOk(dir, 'inspect', 'model.gguf', '--json'));
    for (const [name, r] of Object.entries(ref)) {
      const t = ins.tensors.find((x: { name: string }) => x.name === name);
      assert.is(t.dtype, r.type);
      assert.is(t.storage_dtype, 'U8');
      assert.equal(t.shape, r.shape);
      close(t.stats.mean, r.mean, `${name} mean`);
      close(t.stats.l2, r.l2_values, `${name} l2 of values`);
    }
    const human = await thetaOk(dir, 'inspect', 'model.gguf');
    const params = 64 + Object.values(ref).reduce((n, r) => n + r.shape[0] * r.shape[1], 0);
    assert.match(human, new RegExp(`4 tensors, ${params} parameters`));

    // --sha256 without --json shows the hashes
    const withSha = await thetaOk(dir, 'inspect', 'model.gguf', '--sha256');
    assert.match(withSha, /sha256/);
    assert.match(withSha, /blk\.0\.attn_norm\.weight .* [0-9a-f]{64}\n/);
  } finally {
    cleanup(dir);
    cleanup(data);
  }
});

Q.run();
