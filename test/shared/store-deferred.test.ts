// Deferred puts (store/local.ts putDeferred/flush): the object is hashed at once and its file
// written in the background; reads wait for it, a failed write is reported by flush, and a clean
// hands out no metadata before every write is done.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getKernels } from '../../src/core/kernels.ts';
import { memorySink, readerFromBytes } from '../../src/core/io.ts';
import { sha256Hex } from '../../src/core/sha256.ts';
import { safetensors } from '../../src/formats/safetensors.ts';
import { createLocalStore } from '../../src/store/local.ts';
import { memoryFs } from '../../src/store/memory.ts';
import type { StoreFs } from '../../src/store/types.ts';
import { cleanCheckpoint } from '../../src/theta/clean.ts';
import { inputDigest } from '../../src/theta/exact.ts';
import { smudgeCheckpoint } from '../../src/theta/smudge.ts';
import { lcgFloats } from './test-data.ts';

const test = suite('store: deferred puts');

/** A memory store whose background writes wait until released, and can be made to fail. */
function gatedStore(o: { maxPending?: number } = {}) {
  const fs = memoryFs();
  const gates: (() => void)[] = [];
  const state = { fail: null as Error | null, started: 0, finished: 0, pendingBytes: 0, maxPendingSeen: 0 };
  const writeNew: StoreFs['writeNew'] = async (tmp, path, bytes) => {
    state.started++;
    state.pendingBytes += bytes.length;
    state.maxPendingSeen = Math.max(state.maxPendingSeen, state.pendingBytes);
    await new Promise<void>((r) => gates.push(r));
    state.pendingBytes -= bytes.length;
    if (state.fail) throw state.fail;
    const w = await fs.createWrite(tmp);
    await w.write(bytes);
    await w.close();
    await fs.mkdirp(path.slice(0, path.lastIndexOf('/')));
    await fs.rename(tmp, path);
    state.finished++;
  };
  const store = createLocalStore({ fs: { ...fs, writeNew }, lfsDir: '/lfs', deferredMaxPending: o.maxPending });
  const release = () => { while (gates.length) gates.shift()!(); };
  return { store, fs, state, release };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test('a deferred put returns its id before the file exists; reads wait for it; the bytes are a copy', async () => {
  const { store, fs, state, release } = gatedStore();
  const bytes = lcgFloats(1000, 3);
  const data = new Uint8Array(bytes.buffer);
  const want = await sha256Hex(data);
  const ref = await store.putDeferred(data);
  assert.equal(ref, { oid: want, size: 4000 });
  assert.is(state.finished, 0);
  assert.equal(fs.files().filter((f) => f.includes('/objects/')), [], 'not written yet');
  assert.ok(await store.has(want), 'a pending object counts as present');
  data.fill(0); // the caller reuses its array
  const got = store.get(want);
  await tick();
  release();
  assert.is(await sha256Hex(await got), want, 'the read waited for the write, and the write used a copy');
  await store.flush();
  assert.equal(fs.files().filter((f) => f.includes('/objects/')), [store.objectPath(want)]);
  assert.equal(fs.files().filter((f) => f.includes('/tmp/')), [], 'no temp file left');
});

test('a failed background write is thrown by flush (once), and by reads of that object', async () => {
  const { store, state, release } = gatedStore();
  state.fail = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  const ref = await store.putDeferred(new Uint8Array(100).fill(1));
  const read = store.get(ref.oid).then(() => null, (e) => e);
  await tick();
  release();
  assert.is((await read)?.message, 'disk full');
  const e = await store.flush().then(() => null, (x) => x);
  assert.is(e?.code, 'ENOSPC');
  await store.flush(); // reported once
});

test('deferred puts hold at most their budget of bytes', async () => {
  const { store, state, release } = gatedStore({ maxPending: 10_000 });
  const puts: Promise<unknown>[] = [];
  for (let i = 0; i < 6; i++) puts.push(store.putDeferred(new Uint8Array(3000).fill(i + 1)));
  // let them run as far as the budget allows, releasing writes as they are asked for
  for (let k = 0; k < 20; k++) { await tick(); release(); }
  await Promise.all(puts);
  release();
  await store.flush();
  assert.is(state.finished, 6);
  assert.ok(state.maxPendingSeen <= 10_000, `at most 10,000 bytes pending (saw ${state.maxPendingSeen})`);
  assert.ok(state.maxPendingSeen >= 6000, 'more than one write ran at a time');
});

test('a clean hands out no metadata before its objects are written, and fails when a write fails', async () => {
  const kernels = await getKernels();
  const sink = memorySink();
  await safetensors.write(['a', 'b', 'c'].map((name, i) => ({ name, dtype: 'F32' as const, shape: [512], data: new Uint8Array(lcgFloats(512, i + 1).buffer) })), sink);
  const bytes = sink.bytes();

  const ok = gatedStore();
  let done = false;
  const meta = cleanCheckpoint({ reader: await safetensors.open(readerFromBytes(bytes)), previous: null, store: ok.store, kernels, fileSize: bytes.length }).then((m) => { done = true; return m; });
  for (let k = 0; k < 5; k++) await tick();
  assert.ok(ok.state.started >= 1, 'objects are being written');
  assert.not.ok(done, 'no metadata while writes are pending');
  for (let k = 0; k < 20 && !done; k++) { ok.release(); await tick(); }
  const out = memorySink();
  await smudgeCheckpoint({ metadata: await meta, format: safetensors, store: ok.store, kernels, sink: out });
  assert.equal(out.bytes(), bytes);

  const bad = gatedStore();
  bad.state.fail = new Error('EIO: write failed');
  const failing = cleanCheckpoint({ reader: await safetensors.open(readerFromBytes(bytes)), previous: null, store: bad.store, kernels, fileSize: bytes.length }).then(() => null, (e) => e);
  for (let k = 0; k < 20; k++) { bad.release(); await tick(); }
  assert.is((await failing)?.message, 'EIO: write failed');
});

test('leaveWritesPending: the clean returns while its writes run, and the flush the caller owns waits for them and reports their failure', async () => {
  const kernels = await getKernels();
  const models = [1, 2].map((seed) => {
    const sink = memorySink();
    return { sink, seed };
  });
  for (const m of models) {
    await safetensors.write(['a', 'b'].map((name, i) => ({ name, dtype: 'F32' as const, shape: [512], data: new Uint8Array(lcgFloats(512, m.seed * 10 + i).buffer) })), m.sink);
  }

  // two models cleaned back to back with no write finished: both clean, then one flush waits for all
  const ok = gatedStore();
  const metas = [];
  for (const m of models) {
    const bytes = m.sink.bytes();
    metas.push(await cleanCheckpoint({ reader: await safetensors.open(readerFromBytes(bytes)), previous: null, store: ok.store, kernels, fileSize: bytes.length, leaveWritesPending: true }));
  }
  assert.is(ok.state.finished, 0, 'the cleans returned with their writes still pending');
  // two tensors each, and the skeleton the two models share (same names, dtypes and shapes)
  assert.is(ok.state.started, 5, 'the writes of both models are under way');
  let flushed = false;
  const flush = ok.store.flush().then(() => { flushed = true; });
  await tick();
  assert.not.ok(flushed, 'flush waits for the writes');
  for (let k = 0; k < 20 && !flushed; k++) { ok.release(); await tick(); }
  await flush;
  assert.is(ok.state.finished, 5);
  for (const [i, m] of models.entries()) {
    const out = memorySink();
    await smudgeCheckpoint({ metadata: metas[i], format: safetensors, store: ok.store, kernels, sink: out });
    assert.equal(out.bytes(), m.sink.bytes(), `model ${i + 1} comes back exactly`);
  }

  // the recipe check reads objects still being written: each read waits for its own write
  const checked = gatedStore();
  const releaser = setInterval(checked.release, 1);
  try {
    const bytes = models[1].sink.bytes();
    const digest = inputDigest(kernels);
    digest.update(bytes);
    let how = '';
    await cleanCheckpoint({
      reader: await safetensors.open(readerFromBytes(bytes)), previous: null, store: checked.store, kernels, fileSize: bytes.length, leaveWritesPending: true,
      format: safetensors, input: async () => ({ size: bytes.length, digest: digest.digest() }), onRecipeCheck: (h) => { how = h; },
    });
    assert.is(how, 'whole', 'the whole file was rebuilt from objects being written, and matched');
  } finally {
    clearInterval(releaser);
  }

  // a write that fails after its clean returned is thrown by the flush the caller owns
  const bad = gatedStore();
  bad.state.fail = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  const bytes = models[0].sink.bytes();
  await cleanCheckpoint({ reader: await safetensors.open(readerFromBytes(bytes)), previous: null, store: bad.store, kernels, fileSize: bytes.length, leaveWritesPending: true });
  const failed = bad.store.flush().then(() => null, (e) => e);
  for (let k = 0; k < 20; k++) { bad.release(); await tick(); }
  assert.is((await failed)?.code, 'ENOSPC');
});

test.run();
