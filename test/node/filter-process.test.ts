// The long-running filter protocol, driven in-process over a controllable pipe.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import { runFilterProcess, type FilterHandler, type FilterProcessOptions } from '../../src/node/git/filter-process.ts';
import { decodePackets, encodeDataPackets, encodeTextList, FLUSH_PKT, PKT_MAX_LENGTH, packetText, type Packet } from '../../src/core/pktline.ts';
import { concat } from '../../src/core/io.ts';
import { FilterAbortError } from '../../src/core/errors.ts';

const test = suite('filter process (in-process)');
const te = new TextEncoder();
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

/** git's side of stdin: push bytes when the test says so. */
function pipe() {
  const queue: Uint8Array[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const input: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length) { yield queue.shift()!; continue; }
        if (ended) return;
        await new Promise<void>((r) => (wake = r));
      }
    },
  };
  return {
    input,
    push(...b: Uint8Array[]) { queue.push(...b); wake?.(); },
    end() { ended = true; wake?.(); },
  };
}

/** Our stdout: a Writable that records what arrived. */
function sink(opts: { highWaterMark?: number; slow?: boolean } = {}) {
  const chunks: Uint8Array[] = [];
  let maxBuffered = 0;
  const w = new Writable({
    highWaterMark: opts.highWaterMark ?? 16384,
    write(chunk, _enc, cb) {
      chunks.push(new Uint8Array(chunk));
      maxBuffered = Math.max(maxBuffered, w.writableLength);
      if (opts.slow) setTimeout(cb, 1); else cb();
    },
  });
  return {
    w,
    bytes: () => concat(chunks),
    writes: () => chunks.length,
    maxBuffered: () => maxBuffered,
  };
}

const HANDSHAKE_IN = concat([
  encodeTextList(['git-filter-client', 'version=2']),
  encodeTextList(['capability=clean', 'capability=smudge', 'capability=delay']),
]);
const HANDSHAKE_OUT = concat([encodeTextList(['git-filter-server', 'version=2']), encodeTextList(['capability=clean', 'capability=smudge'])]);

function request(command: string, pathname: string, content: Uint8Array, extra: string[] = []): Uint8Array {
  return concat([encodeTextList([`command=${command}`, `pathname=${pathname}`, ...extra]), ...encodeDataPackets(content), FLUSH_PKT]);
}

/** Packets after the handshake (our two answer lists). */
function afterHandshake(out: Uint8Array): Packet[] {
  const all = decodePackets(out);
  let flushes = 0;
  let i = 0;
  while (i < all.length && flushes < 2) if (all[i++]!.type === 'flush') flushes++;
  return all.slice(i);
}

/** Output after the handshake, as readable tokens: text packets as strings, data as <n bytes>, flush as '0000'. */
function tokens(out: Uint8Array): string[] {
  return afterHandshake(out).map((p: Packet) =>
    p.type === 'flush' ? '0000' : p.type === 'data' ? (/^[a-z-]+=/.test(packetText(p.payload)) ? packetText(p.payload) : `<${p.payload.length}>`) : p.type);
}

/** The content bytes in the output (status packets left out). */
function dataOf(out: Uint8Array): Uint8Array {
  return concat(afterHandshake(out).filter((p) => p.type === 'data' && !/^status=/.test(packetText(p.payload))).map((p) => (p as { payload: Uint8Array }).payload));
}

function start(opts: Partial<FilterProcessOptions>, out = sink()) {
  const p = pipe();
  const logs: string[] = [];
  const done = runFilterProcess({ input: p.input, output: out.w, log: (m) => logs.push(m), ...opts });
  return { p, out, logs, done };
}

const upper: FilterHandler = async (_req, content, out) => {
  const parts: Uint8Array[] = [];
  for await (const c of content) parts.push(c);
  await out.write(te.encode(new TextDecoder().decode(concat(parts)).toUpperCase()));
};

test('handshake: version 2, and only the capabilities both sides have', async () => {
  const s = start({ clean: upper });
  s.p.push(HANDSHAKE_IN);
  s.p.end();
  assert.equal(await s.done, { requests: 0, failed: 0 });
  assert.equal(s.out.bytes(), concat([encodeTextList(['git-filter-server', 'version=2']), encodeTextList(['capability=clean'])]));
});

test('handshake errors: wrong welcome, no version 2', async () => {
  for (const [welcome, re] of [[['git-foo-client', 'version=2'], /git-filter-client/], [['git-filter-client', 'version=3'], /only version 2/]] as const) {
    const s = start({ clean: upper });
    s.p.push(encodeTextList(welcome as unknown as string[]));
    s.p.end();
    try {
      await s.done;
      assert.unreachable('should reject');
    } catch (e: any) {
      assert.is(e.code, 'E_FILTER_PROTOCOL');
      assert.match(e.message, re);
    }
    assert.is(s.out.bytes().length, 0, 'nothing answered');
  }
});

test('no answer before the final flush; the key=value value may contain "="', async () => {
  let seen: any;
  const s = start({ clean: async (req, content, out) => { seen = req; await upper(req, content, out); }, smudge: upper });
  s.p.push(HANDSHAKE_IN, encodeTextList(['command=clean', 'pathname=dir/a=b.txt', 'ref=refs/heads/main']), ...encodeDataPackets(te.encode('hello')));
  await tick();
  assert.equal(s.out.bytes(), HANDSHAKE_OUT, 'only the handshake so far');
  s.p.push(FLUSH_PKT);
  await tick();
  assert.equal(tokens(s.out.bytes()), ['status=success', '0000', '<5>', '0000', '0000']);
  assert.is(new TextDecoder().decode(dataOf(s.out.bytes())), 'HELLO');
  assert.equal(seen, { command: 'clean', pathname: 'dir/a=b.txt', headers: { command: 'clean', pathname: 'dir/a=b.txt', ref: 'refs/heads/main' } });
  s.p.end();
  assert.equal(await s.done, { requests: 1, failed: 0 });
});

test('content streams in: the handler sees the first packet before the rest is sent', async () => {
  let firstAt = -1;
  let pushedRest = false;
  const s = start({
    clean: async (_req, content, out) => {
      let n = 0;
      for await (const c of content) { if (firstAt < 0) firstAt = pushedRest ? 1 : 0; n += c.length; }
      await out.write(te.encode(String(n)));
    },
  });
  const big = new Uint8Array(300_000).fill(7);
  const pkts = encodeDataPackets(big);
  s.p.push(HANDSHAKE_IN, encodeTextList(['command=clean', 'pathname=x']), pkts[0]!);
  await tick();
  pushedRest = true;
  s.p.push(...pkts.slice(1), FLUSH_PKT);
  s.p.end();
  await s.done;
  assert.is(firstAt, 0, 'first packet reached the handler before the rest was pushed');
  assert.is(new TextDecoder().decode(dataOf(s.out.bytes())), '300000');
});

test('large output goes out as packets of at most 65516 bytes, with backpressure honoured', async () => {
  const out = sink({ highWaterMark: 1, slow: true });
  const big = new Uint8Array(1_000_003);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 255;
  const s = start({
    smudge: async (_req, content, o) => {
      for await (const _ of content) { /* ignore */ }
      await o.write(big.subarray(0, 10)); // odd first write
      await o.write(big.subarray(10));
    },
  }, out);
  s.p.push(HANDSHAKE_IN, request('smudge', 'big.bin', te.encode('pointer')));
  s.p.end();
  await s.done;
  const pk = afterHandshake(out.bytes());
  const sizes = pk.filter((p) => p.type === 'data').map((p) => (p as { payload: Uint8Array }).payload.length);
  assert.ok(Math.max(...sizes) <= PKT_MAX_LENGTH - 4, 'no packet over the limit');
  assert.is(sizes.filter((n) => n === 65516).length, 15, '1,000,003 bytes = 15 full packets + tail (+ status)');
  assert.equal(concat(pk.filter((p) => p.type === 'data' && !/^status=/.test(packetText(p.payload))).map((p) => (p as { payload: Uint8Array }).payload)), big);
  assert.ok(out.maxBuffered() <= 2 * PKT_MAX_LENGTH, `output buffered at most ~one packet beyond the mark (saw ${out.maxBuffered()})`);
});

test('a handler error answers status=error for that file and the next file still works', async () => {
  const s = start({
    clean: async (req, content, out) => {
      if (req.pathname === 'bad') throw new Error('cannot clean this');
      await upper(req, content, out);
    },
  });
  s.p.push(HANDSHAKE_IN, request('clean', 'bad', new Uint8Array(200_000).fill(65)), request('clean', 'good', te.encode('ok')));
  s.p.end();
  assert.equal(await s.done, { requests: 2, failed: 1 });
  assert.equal(tokens(s.out.bytes()), ['status=error', '0000', 'status=success', '0000', '<2>', '0000', '0000']);
  assert.is(s.logs.length, 1);
  assert.match(s.logs[0]!, /clean 'bad' failed \(status=error\): cannot clean this/);
});

test('an error after some output is reported after the content; abort; unknown command; empty content', async () => {
  const s = start({
    clean: async (req, content, out) => {
      for await (const _ of content) { /* read it all */ }
      if (req.pathname === 'abort') throw new FilterAbortError('giving up on everything');
      if (req.pathname === 'empty') return;
      await out.write(te.encode('partial'));
      throw new Error('broke half-way');
    },
  });
  s.p.push(HANDSHAKE_IN, request('clean', 'half', te.encode('x')), request('clean', 'abort', te.encode('x')),
    request('smudge', 'no-handler', te.encode('xyz')), request('clean', 'empty', new Uint8Array(0)));
  s.p.end();
  assert.equal(await s.done, { requests: 4, failed: 3 });
  assert.equal(tokens(s.out.bytes()), [
    'status=success', '0000', '<7>', '0000', 'status=error', '0000',
    'status=abort', '0000',
    'status=error', '0000',
    'status=success', '0000', '0000', '0000',
  ]);
});

test('a handler that ignores its content: the rest is drained before answering, and writes made early are held', async () => {
  const s = start({
    clean: async (_req, _content, out) => { await out.write(te.encode('early')); },
  });
  s.p.push(HANDSHAKE_IN, encodeTextList(['command=clean', 'pathname=a']), ...encodeDataPackets(new Uint8Array(100_000)));
  await tick();
  assert.equal(s.out.bytes(), concat([encodeTextList(['git-filter-server', 'version=2']), encodeTextList(['capability=clean'])]), 'held until the final flush');
  s.p.push(FLUSH_PKT, request('clean', 'b', te.encode('zz')));
  s.p.end();
  assert.equal(await s.done, { requests: 2, failed: 0 });
  assert.equal(tokens(s.out.bytes()), ['status=success', '0000', '<5>', '0000', '0000', 'status=success', '0000', '<5>', '0000', '0000']);
});

test('git hanging up mid-request is a protocol error; between requests it is a clean exit', async () => {
  const s = start({ clean: upper });
  s.p.push(HANDSHAKE_IN, encodeTextList(['command=clean', 'pathname=a']), ...encodeDataPackets(te.encode('abc')));
  s.p.end();
  try {
    await s.done;
    assert.unreachable('should reject');
  } catch (e: any) {
    assert.is(e.code, 'E_FILTER_PROTOCOL');
    assert.match(e.message, /inside the content of 'a'/);
  }
  const s2 = start({ clean: upper });
  s2.p.push(HANDSHAKE_IN.subarray(0, 10));
  s2.p.end();
  try {
    await s2.done;
    assert.unreachable('should reject');
  } catch (e: any) {
    assert.is(e.code, 'E_PKTLINE');
  }
  const s3 = start({ clean: upper });
  s3.p.end();
  assert.equal(await s3.done, { requests: 0, failed: 0 }, 'no input at all: nothing to do');
});

test.run();
