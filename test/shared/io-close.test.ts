// Readers that stop early close what they read from: a stream handed on by peekChunks closes its
// source when its reader stops, and openOrClose closes a reader whose format failed to open.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openOrClose, peekChunks, readerFromBytes, readerFromChunks } from '../../src/core/io.ts';
import { FormatError } from '../../src/core/errors.ts';

const test = suite('io: readers that stop early close their source');

/** A source of `n` chunks of 4 bytes that records whether it was closed (as a file's handle would be). */
function source(n: number) {
  const state = { closed: false, read: 0 };
  const chunks = (async function* () {
    try {
      for (let i = 0; i < n; i++) {
        state.read++;
        yield new Uint8Array(4).fill(i);
      }
    } finally {
      state.closed = true;
    }
  })();
  return { state, chunks };
}

test('a peeked stream closed part-way closes its source', async () => {
  const { state, chunks } = source(10);
  const { head, stream } = await peekChunks(chunks, 6);
  assert.equal([...head], [0, 0, 0, 0, 1, 1]);
  const reader = readerFromChunks(stream, 'src');
  assert.equal([...(await reader.readExactly(10))], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
  assert.is(state.closed, false);
  await reader.close();
  assert.is(state.closed, true, 'closing the reader reached the source');
  assert.ok(state.read < 10, 'the source was not read to its end');
});

test('a peeked stream whose consumer throws closes its source', async () => {
  const { state, chunks } = source(10);
  const { stream } = await peekChunks(chunks, 2);
  await (async () => {
    for await (const c of stream) if (c[0] === 3) throw new Error('stop');
  })().catch(() => {});
  assert.is(state.closed, true);
});

test('a peeked stream read to its end finishes its source once', async () => {
  const { state, chunks } = source(3);
  const { stream } = await peekChunks(chunks, 4);
  let n = 0;
  for await (const c of stream) n += c.length;
  assert.is(n, 12);
  assert.is(state.closed, true);
  assert.is(state.read, 3);
});

test('openOrClose closes the reader when opening fails, and not when it succeeds', async () => {
  let closed = 0;
  const reader = () => {
    const r = readerFromBytes(new Uint8Array(8), 'm.bin');
    return { ...r, close: async () => { closed++; } };
  };
  const err = await openOrClose(reader(), async () => { throw new FormatError('bad header', { file: 'm.bin' }); }).then(() => null, (e) => e);
  assert.ok(err instanceof FormatError, 'the opening error is passed on as it was');
  assert.is(closed, 1);
  const opened = await openOrClose(reader(), async (r) => ({ r }));
  assert.ok(opened.r);
  assert.is(closed, 1, 'a reader that opened stays open for its user');
  // a close that fails does not hide the error that matters
  const failing = { ...readerFromBytes(new Uint8Array(1), 'x'), close: async () => { throw new Error('close failed'); } };
  const err2 = await openOrClose(failing, async () => { throw new FormatError('bad', { file: 'x' }); }).then(() => null, (e) => e);
  assert.ok(err2 instanceof FormatError);
});

test.run();
