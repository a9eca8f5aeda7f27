// PyTorch checkpoints with real tools: add → commit → checkout through the real git and our CLI,
// and real PyTorch (/usr/bin/python3 with Debian's python3-torch) as the oracle that loads every
// file our writer and our checkout produce.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { pytorch, writePytorch } from '../../src/formats/pytorch.ts';
import type { TensorToWrite } from '../../src/formats/types.ts';
import { cleanup, fixturesDir, git, sha256, tempDir, thetaOk, thetaRepo } from './helpers.ts';

const PT_FIXTURES = ['mlp-f32.pt', 'mlp-bf16.pt', 'mlp-f16.pt', 'convnet.pt', 'shared-storage.pt', 'nested-checkpoint.pt', 'history-v3-lowrank-sidedata.pt'];
const PYTHON = '/usr/bin/python3';
const expected = JSON.parse(readFileSync(join(fixturesDir, 'expected.json'), 'utf8'));
const fixture = (n: string) => new Uint8Array(readFileSync(join(fixturesDir, n)));

/**
 * torch.load each file (weights_only) and describe every tensor reachable through dicts with its
 * dotted name: dtype, shape, SHA-256 of its contiguous little-endian bytes, its storage's address
 * (to see tying) and the loaded container types.
 */
const ORACLE = String.raw`
import sys, json, hashlib, collections
try:
    import torch
except ImportError:
    print("NO_TORCH"); sys.exit(3)
def walk(v, path, out):
    if isinstance(v, torch.Tensor):
        t = v.detach().contiguous().reshape(-1)
        if t.dtype == torch.bfloat16: t = t.view(torch.int16)
        out[".".join(path)] = {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
            "sha256": hashlib.sha256(t.numpy().tobytes()).hexdigest(),
            "storage": v.storage().data_ptr(), "offset": v.storage_offset(), "stride": list(v.stride())}
    elif isinstance(v, dict):
        for k, x in v.items(): walk(x, path + [str(k)], out)
res = {}
for f in sys.argv[1:]:
    weights_only = True
    try:
        obj = torch.load(f, weights_only=True)
    except Exception:
        # torch 1.13's own weights-only loader lacks some opcodes (BINFLOAT): fixtures we did not
        # write (e.g. a float learning rate) load fully instead.
        weights_only = False
        obj = torch.load(f)
    out = {}
    walk(obj, [], out)
    res[f] = {"type": type(obj).__name__, "weights_only": weights_only, "tensors": out}
print(json.dumps(res))
`;

interface OracleTensor { dtype: string; shape: number[]; sha256: string; storage: number; offset: number; stride: number[] }

function torchLoad(files: string[]): Record<string, { type: string; weights_only: boolean; tensors: Record<string, OracleTensor> }> {
  const r = spawnSync(PYTHON, ['-c', ORACLE, ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status === 3 || r.stdout.startsWith('NO_TORCH')) {
    throw new Error(`this test needs PyTorch for ${PYTHON}: install python3-torch (apt-get install -y python3-torch)`);
  }
  if (r.status !== 0) throw new Error(`torch.load failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function readAll(bytes: Uint8Array, name: string) {
  const rd = await pytorch.open(readerFromBytes(bytes, name));
  const out = new Map<string, { dtype: string; shape: number[]; data: Uint8Array }>();
  for await (const t of rd.tensors()) out.set(t.name, { dtype: t.dtype, shape: t.shape, data: await t.bytes() });
  return { rd, tensors: out };
}

const ST_TO_TORCH: Record<string, string> = {
  F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

// ---------------------------------------------------------------------------------------------
const gitRoundTrip = suite('pytorch: add → commit → checkout with the real git');

gitRoundTrip('every .pt fixture comes back byte-identical, and git stores metadata, not the file', async () => {
  const dir = await thetaRepo(['*.pt']);
  try {
    for (const f of PT_FIXTURES) copyFileSync(join(fixturesDir, f), join(dir, f));
    await git(dir, 'add', ...PT_FIXTURES);
    await git(dir, 'commit', '-q', '-m', 'checkpoints');
    for (const f of PT_FIXTURES) {
      const blob = await git(dir, 'cat-file', 'blob', `HEAD:${f}`);
      assert.ok(blob.trimStart().startsWith('{'), `${f}: the committed blob is metadata`);
      assert.match(blob, /"pytorch"/, `${f}: recorded as pytorch`);
      for (const name of Object.keys(expected[f].tensors)) assert.ok(blob.includes(JSON.stringify(name)), `${f}: metadata names tensor ${name}`);
      rmSync(join(dir, f));
    }
    await git(dir, 'checkout', '--', ...PT_FIXTURES);
    for (const f of PT_FIXTURES) {
      assert.is(sha256(readFileSync(join(dir, f))), sha256(fixture(f)), `${f}: byte-identical after checkout`);
    }
    // The checked-out files load in real PyTorch with the original values, and tied weights stay tied.
    const loaded = torchLoad(PT_FIXTURES.map((f) => join(dir, f)));
    for (const f of PT_FIXTURES) {
      const got = loaded[join(dir, f)].tensors;
      for (const [name, w] of Object.entries<any>(expected[f].tensors)) {
        assert.ok(got[name], `${f}: torch finds ${name}`);
        assert.is(got[name].sha256, w.sha256_le_bytes, `${f}:${name} values`);
      }
    }
    const shared = loaded[join(dir, 'shared-storage.pt')].tensors;
    assert.is(shared['lm_head.weight'].storage, shared['embed.weight'].storage, 'tied weights share one storage after checkout');
    assert.is(shared['transposed'].storage, shared['embed.weight'].storage, 'the transposed view still shares it');
    assert.is(shared['slice'].offset, 64);
  } finally {
    cleanup(dir);
  }
});

// ---------------------------------------------------------------------------------------------
const oracle = suite('pytorch: real PyTorch loads what we write');

oracle('files from our writer load in torch with identical tensors (every torch-1.13 dtype, 0-d, empty, OrderedDict and dict)', async () => {
  const dir = tempDir('theta-pt-');
  try {
    const tensors: TensorToWrite[] = [
      { name: 'layers.0.weight', dtype: 'F32', shape: [3, 4], data: new Uint8Array(Float32Array.from({ length: 12 }, (_, i) => i - 5.5).buffer) },
      { name: 'f64', dtype: 'F64', shape: [2], data: new Uint8Array(Float64Array.from([1e300, -0.25]).buffer) },
      { name: 'f16', dtype: 'F16', shape: [3], data: Uint8Array.from([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]) },
      { name: 'bf16', dtype: 'BF16', shape: [2, 1], data: Uint8Array.from([0x80, 0x3f, 0x49, 0xc0]) },
      { name: 'steps', dtype: 'I64', shape: [], data: new Uint8Array(BigInt64Array.from([-7n]).buffer) },
      { name: 'i32', dtype: 'I32', shape: [1], data: new Uint8Array(Int32Array.from([-3]).buffer) },
      { name: 'i16', dtype: 'I16', shape: [1], data: new Uint8Array(Int16Array.from([300]).buffer) },
      { name: 'i8', dtype: 'I8', shape: [2], data: Uint8Array.from([0xff, 1]) },
      { name: 'u8', dtype: 'U8', shape: [2], data: Uint8Array.from([200, 1]) },
      { name: 'mask', dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
      ...Array.from({ length: 11 }, (_, i) => ({ name: `extra.${i}`, dtype: 'F32' as const, shape: [1], data: new Uint8Array(Float32Array.from([i]).buffer) })),
    ];
    const files: string[] = [];
    for (const container of ['OrderedDict', 'dict'] as const) {
      const sink = memorySink();
      await writePytorch(tensors, sink, { container, archiveName: `w-${container}` });
      const file = join(dir, `w-${container}.pt`);
      writeFileSync(file, sink.bytes());
      files.push(file);
    }
    const viaFormat = memorySink();
    await pytorch.write(tensors, viaFormat);
    writeFileSync(join(dir, 'format-write.pt'), viaFormat.bytes());
    files.push(join(dir, 'format-write.pt'));

    const loaded = torchLoad(files);
    for (const file of files) {
      const got = loaded[file];
      assert.is(got.type, file.endsWith('w-dict.pt') ? 'dict' : 'OrderedDict', `${file}: container`);
      assert.ok(got.weights_only, `${file}: loads with torch.load(weights_only=True)`);
      assert.equal(Object.keys(got.tensors).sort(), tensors.map((t) => t.name).sort(), `${file}: names`);
      for (const t of tensors) {
        const g = got.tensors[t.name];
        assert.is(g.dtype, ST_TO_TORCH[t.dtype], `${t.name}: dtype`);
        assert.equal(g.shape, t.shape, `${t.name}: shape`);
        assert.is(g.sha256, sha256(t.data), `${t.name}: values`);
      }
    }
  } finally {
    cleanup(dir);
  }
});

oracle('a rebuild with changed values (new CRCs patched in) loads in torch with the new values', async () => {
  const dir = tempDir('theta-pt-');
  try {
    for (const f of ['mlp-bf16.pt', 'shared-storage.pt', 'nested-checkpoint.pt']) {
      const { rd, tensors } = await readAll(fixture(f), f);
      // Change every tensor consistently: add 1 to the first byte of each view's bytes
      // (for shared-storage.pt, change the whole storage through every view alike).
      const changed = new Map<string, Uint8Array>();
      if (f === 'shared-storage.pt') {
        const emb = tensors.get('embed.weight')!.data.slice();
        const v = new Float32Array(emb.buffer);
        for (let i = 0; i < v.length; i++) v[i] = v[i] * 2 + 1;
        const rows = 32, cols = 16;
        const tr = new Float32Array(rows * cols);
        for (let i = 0; i < cols; i++) for (let j = 0; j < rows; j++) tr[i * rows + j] = v[j * cols + i];
        changed.set('embed.weight', emb);
        changed.set('lm_head.weight', emb);
        changed.set('slice', emb.slice(64 * 4, 128 * 4));
        changed.set('transposed', new Uint8Array(tr.buffer));
      } else {
        for (const [name, t] of tensors) {
          const d = t.data.slice();
          if (d.length) d[d.length - 1] ^= 0x01;
          changed.set(name, d);
        }
      }
      const sink = memorySink();
      await pytorch.rebuild(rd.skeleton(), (n) => (async function* () { yield changed.get(n)!; })(), sink);
      const file = join(dir, f);
      writeFileSync(file, sink.bytes());
      const got = torchLoad([file])[file].tensors;
      for (const [name, d] of changed) assert.is(got[name].sha256, sha256(d), `${f}:${name} has the new values in torch`);
    }
  } finally {
    cleanup(dir);
  }
});

oracle('files that git theta checks out after a commit of our writer\'s output load in torch', async () => {
  const dir = await thetaRepo(['*.pt']);
  try {
    const tensors: TensorToWrite[] = [
      { name: 'w', dtype: 'BF16', shape: [4, 4], data: Uint8Array.from({ length: 32 }, (_, i) => (i * 37) & 0x7f) },
      { name: 'b', dtype: 'F16', shape: [4], data: Uint8Array.from({ length: 8 }, (_, i) => (i * 11) & 0x3f) },
    ];
    const sink = memorySink();
    await pytorch.write(tensors, sink);
    writeFileSync(join(dir, 'model.pt'), sink.bytes());
    await git(dir, 'add', 'model.pt');
    await git(dir, 'commit', '-q', '-m', 'ours');
    rmSync(join(dir, 'model.pt'));
    await git(dir, 'checkout', '--', 'model.pt');
    assert.is(sha256(readFileSync(join(dir, 'model.pt'))), sha256(sink.bytes()), 'byte-identical after checkout');
    const got = torchLoad([join(dir, 'model.pt')])[join(dir, 'model.pt')].tensors;
    for (const t of tensors) assert.is(got[t.name].sha256, sha256(t.data), `${t.name} in torch`);
    const inspect = await thetaOk(dir, 'inspect', 'model.pt');
    assert.match(inspect, /\bw\b/, 'inspect lists the tensors');
  } finally {
    cleanup(dir);
  }
});

gitRoundTrip.run();
oracle.run();
