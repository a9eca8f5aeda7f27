// Node-only: safetensors over real files (fs-source), bounded memory on a large generated file,
// and the atomic file sink.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fixturesDir } from './platform-node.ts';
import { readerFromChunks } from '../../src/core/io.ts';
import { encodeSafetensorsHeader, safetensors } from '../../src/formats/safetensors.ts';
import { atomicFileSink, fileReader, fileSource, writeFileAtomically } from '../../src/node/files/fs-source.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function rejects(fn: () => Promise<unknown>, what = '') {
  let failed = false;
  try { await fn(); } catch { failed = true; }
  assert.ok(failed, `expected a rejection ${what}`);
}

let dir = '';
const fs = suite('safetensors: files (node)');
fs.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'theta-st-'));
});
fs.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

fs('fileReader: a fixture reads with the file size known, and rebuilds byte for byte', async () => {
  const path = join(fixturesDir, 'model.safetensors');
  const original = new Uint8Array(await readFile(path));
  const expected = JSON.parse(await readFile(join(fixturesDir, 'expected.json'), 'utf8'))['model.safetensors'].tensors;
  const reader = await fileReader(path, 'model.safetensors');
  assert.is(reader.size, original.length);
  const r = await safetensors.open(reader);
  const data = new Map<string, Uint8Array>();
  for await (const t of r.tensors()) {
    const b = await t.bytes();
    assert.is(sha(b), expected[t.name].sha256_le_bytes, t.name);
    data.set(t.name, b);
  }
  await r.close();
  assert.is(data.size, Object.keys(expected).length);
  const out = join(dir, 'rebuilt.safetensors');
  await writeFileAtomically(out, (sink) => safetensors.rebuild(r.skeleton(), (n) => (async function* () { yield data.get(n)!; })(), sink));
  assert.is(sha(new Uint8Array(await readFile(out))), sha(original));
});

fs('a Node read stream (like git\'s pipe) reads the same tensors as the file source', async () => {
  const path = join(fixturesDir, 'model-bf16.safetensors');
  const expected = JSON.parse(await readFile(join(fixturesDir, 'expected.json'), 'utf8'))['model-bf16.safetensors'].tensors;
  const stream = createReadStream(path, { highWaterMark: 1000 });
  const r = await safetensors.open(readerFromChunks(stream as AsyncIterable<Uint8Array>, 'model-bf16.safetensors'));
  const seen: string[] = [];
  for await (const t of r.tensors()) {
    const parts: Buffer[] = [];
    for await (const p of t.chunks(300)) parts.push(Buffer.from(p));
    assert.is(sha(Buffer.concat(parts)), expected[t.name].sha256_le_bytes, t.name);
    seen.push(t.name);
  }
  assert.equal(seen.sort(), Object.keys(expected).sort());
});

fs('fileSource: reads at offsets, short only at the end', async () => {
  const path = join(dir, 'bytes.bin');
  await writeFile(path, Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff));
  const src = await fileSource(path);
  assert.is(src.size, 1000);
  assert.equal(Array.from(await src.read(250, 4)), [250, 251, 252, 253]);
  assert.is((await src.read(990, 100)).length, 10);
  assert.is((await src.read(1000, 5)).length, 0);
  await src.close();
  await rejects(() => src.read(0, 1));
});

const TENSORS = 64;
const TENSOR_BYTES = 1 << 20; // 64 tensors × 1 MiB = 64 MiB
const PIECE = 256 << 10;

/** Byte value of tensor i at a given piece: lets every chunk be checked without keeping the file. */
const pattern = (i: number, piece: number) => (i * 31 + piece * 7 + 1) & 0xff;

fs('64 MiB across 64 tensors: written streaming, read with chunks() in bounded memory, every piece checked', async () => {
  const path = join(dir, 'big.safetensors');
  const layout = Array.from({ length: TENSORS }, (_, i) => ({ name: `layer.${String(i).padStart(2, '0')}.weight`, dtype: 'F32' as const, shape: [TENSOR_BYTES / 4] }));
  const skeleton = encodeSafetensorsHeader(layout, { note: 'generated' });
  const scratch = new Uint8Array(PIECE);
  await writeFileAtomically(path, (sink) => safetensors.rebuild(skeleton, (name) => (async function* () {
    const i = Number(name.split('.')[1]);
    for (let p = 0; p < TENSOR_BYTES / PIECE; p++) yield scratch.fill(pattern(i, p));
  })(), sink));
  const size = (await stat(path)).size;
  assert.is(size, skeleton.length + TENSORS * TENSOR_BYTES);

  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  let checked = 0;
  const r = await safetensors.open(await fileReader(path));
  assert.equal(r.metadata, { note: 'generated' });
  let i = 0;
  for await (const t of r.tensors()) {
    assert.is(t.name, layout[i].name);
    let off = 0;
    for await (const piece of t.chunks(PIECE)) {
      assert.ok(piece.length === PIECE, `piece of ${piece.length}`);
      const want = pattern(i, off / PIECE);
      if (piece[0] !== want || piece[piece.length - 1] !== want || piece[piece.length >> 1] !== want) assert.unreachable(`${t.name} @${off}: wrong bytes`);
      off += piece.length;
      checked += piece.length;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    i++;
  }
  await r.close();
  assert.is(checked, TENSORS * TENSOR_BYTES);
  const growth = peak - before;
  // The file is 64 MiB; reading it whole would grow RSS by at least that much.
  assert.ok(growth < size / 4, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB while streaming a ${(size / 2 ** 20).toFixed(0)} MiB file`);
});

/** A real gc() even without --expose-gc (the flag can be set at run time; the function lives in a new context). */
function forceGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

fs('bytes() on the big file: whole tensors, none retained (memory after GC stays far below the 48 MiB read)', async () => {
  const path = join(dir, 'big.safetensors');
  const gc = forceGc();
  gc();
  const before = process.memoryUsage().rss;
  let peak = before;
  const r = await safetensors.open(await fileReader(path));
  let i = 0;
  let read = 0;
  for await (const t of r.tensors()) {
    if (i % 4 !== 3) { // leave some tensors unread: they are skipped
      const b = await t.bytes();
      assert.is(b.length, TENSOR_BYTES);
      assert.is(b[0], pattern(i, 0));
      assert.is(b[TENSOR_BYTES - 1], pattern(i, TENSOR_BYTES / PIECE - 1));
      read += b.length;
    }
    // Fresh arrays are garbage once dropped; collect so RSS shows what is retained, not GC laziness.
    gc();
    peak = Math.max(peak, process.memoryUsage().rss);
    i++;
  }
  await r.close();
  assert.is(i, TENSORS);
  assert.is(read, 48 * TENSOR_BYTES);
  assert.ok(peak - before < 16 * TENSOR_BYTES, `RSS grew by ${((peak - before) / 2 ** 20).toFixed(1)} MiB after reading ${read / 2 ** 20} MiB with bytes()`);
});

const atomic = suite('atomic file sink (node)');
let adir = '';
atomic.before(async () => {
  adir = await mkdtemp(join(tmpdir(), 'theta-atomic-'));
});
atomic.after(async () => {
  await rm(adir, { recursive: true, force: true });
});

atomic('close: the file appears whole, the temp file is gone', async () => {
  const path = join(adir, 'a.safetensors');
  const sink = await atomicFileSink(path);
  await sink.write(new Uint8Array([1, 2, 3]));
  await rejects(() => stat(path));
  assert.equal((await readdir(adir)).filter((f) => f.endsWith('.tmp')).length, 1, 'bytes go to a temp file beside the target');
  await sink.write(new Uint8Array([4]));
  await sink.close();
  assert.equal(Array.from(await readFile(path)), [1, 2, 3, 4]);
  assert.equal(await readdir(adir), ['a.safetensors']);
  let error: any;
  try { await sink.write(new Uint8Array(1)); } catch (e) { error = e; }
  assert.is(error?.code, 'E_ARGUMENT');
});

atomic('abort: nothing is left, and an existing file keeps its old bytes', async () => {
  const fresh = join(adir, 'fresh.safetensors');
  const s1 = await atomicFileSink(fresh);
  await s1.write(new Uint8Array(1000));
  await s1.abort();
  await s1.abort(); // twice is fine
  assert.equal((await readdir(adir)).filter((f) => f.includes('fresh')), []);

  const existing = join(adir, 'existing.safetensors');
  await writeFile(existing, 'old');
  const s2 = await atomicFileSink(existing);
  await s2.write(new TextEncoder().encode('new and longer'));
  await s2.abort();
  assert.is(await readFile(existing, 'utf8'), 'old');
  assert.equal((await readdir(adir)).filter((f) => f.endsWith('.tmp')), []);
});

atomic('fsync: false replaces an existing file by unlink and rename (the old one kept until then); a directory in the way still fails', async () => {
  const path = join(adir, 'replaced.safetensors');
  await writeFile(path, 'old');
  const before = (await stat(path)).ino;
  const held = await open(path, 'r'); // keeps the old inode alive, so its number cannot be reused
  try {
    const s = await atomicFileSink(path, { fsync: false });
    await s.write(new TextEncoder().encode('new bytes'));
    assert.is(await readFile(path, 'utf8'), 'old', 'the old file is there while the new one is written');
    await s.close();
    assert.is(await readFile(path, 'utf8'), 'new bytes');
    assert.is.not((await stat(path)).ino, before, 'a new file, not the old one rewritten');
    assert.is((await held.readFile('utf8')), 'old', 'whoever had the old file open still reads it');
  } finally {
    await held.close();
  }
  assert.equal((await readdir(adir)).filter((f) => f.endsWith('.tmp')), []);
  const s2 = await atomicFileSink(path, { fsync: false });
  await s2.write(new Uint8Array(5));
  await s2.abort();
  assert.is(await readFile(path, 'utf8'), 'new bytes', 'an abort leaves the file as it was');
  const dirInTheWay = join(adir, 'a-dir.safetensors');
  await mkdir(dirInTheWay);
  await writeFile(join(dirInTheWay, 'keep'), 'k');
  const s3 = await atomicFileSink(dirInTheWay, { fsync: false });
  await s3.write(new Uint8Array(3));
  await rejects(() => s3.close(), 'renaming onto a directory');
  assert.is(await readFile(join(dirInTheWay, 'keep'), 'utf8'), 'k', 'the directory is untouched');
});

atomic('writeFileAtomically: a rebuild that fails half way leaves no partial file', async () => {
  const path = join(adir, 'half.safetensors');
  const skeleton = encodeSafetensorsHeader([{ name: 'a', dtype: 'U8', shape: [10] }, { name: 'b', dtype: 'U8', shape: [10] }]);
  let error: any;
  try {
    await writeFileAtomically(path, (sink) => safetensors.rebuild(skeleton, (name) => (async function* () {
      yield new Uint8Array(name === 'a' ? 10 : 9); // b is one byte short
    })(), sink));
  } catch (e) {
    error = e;
  }
  assert.is(error?.code, 'E_FORMAT');
  assert.match(error.message, /tensor 'b'/);
  assert.equal((await readdir(adir)).filter((f) => f.includes('half')), []);
});

fs.run();
atomic.run();
