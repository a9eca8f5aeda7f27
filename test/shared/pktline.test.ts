import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodePackets, encodeData, encodeDataPackets, encodeText, encodeTextList, FLUSH_PKT, DELIM_PKT,
  PKT_MAX_LENGTH, PKT_MAX_PAYLOAD, PktLineReader, parseLength, packetText, type Packet,
} from '../../src/core/pktline.ts';
import { readerFromBytes, readerFromChunks, concat } from '../../src/core/io.ts';

const test = suite('pktline');
const te = new TextEncoder();
const td = new TextDecoder();
const ascii = (b: Uint8Array) => td.decode(b);

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

async function* chunked(b: Uint8Array, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.slice(i, i + size);
}

async function readAll(r: PktLineReader): Promise<Packet[]> {
  const out: Packet[] = [];
  for (let p = await r.read(); p; p = await r.read()) out.push(p);
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp) {
  try {
    await p;
  } catch (e) {
    assert.is((e as { code?: string }).code, code, `error code for: ${(e as Error).message}`);
    if (re) assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a ${code} error`);
}

test('text packets carry a 4-hex length including the header, and a trailing LF', () => {
  assert.is(ascii(encodeText('git-filter-client')), '0016git-filter-client\n');
  assert.is(ascii(encodeText('version=2\n')), '000eversion=2\n', 'an existing LF is not doubled');
  assert.is(ascii(encodeTextList(['status=success'])), '0013status=success\n0000');
  assert.is(ascii(encodeTextList([])), '0000');
  assert.is(ascii(FLUSH_PKT), '0000');
  assert.is(ascii(DELIM_PKT), '0001');
  assert.is(packetText(te.encode('a=b=c\n')), 'a=b=c');
  assert.is(packetText(te.encode('no-lf')), 'no-lf');
});

test('max payload: 65516 bytes is one packet with header fff0; one more byte is refused', () => {
  assert.is(PKT_MAX_PAYLOAD, 65516);
  assert.is(PKT_MAX_LENGTH, 65520);
  const p = encodeData(bytes(PKT_MAX_PAYLOAD));
  assert.is(p.length, 65520);
  assert.is(ascii(p.subarray(0, 4)), 'fff0');
  assert.throws(() => encodeData(bytes(PKT_MAX_PAYLOAD + 1)), (e: any) => e.code === 'E_ARGUMENT');
  assert.throws(() => encodeData(new Uint8Array(0)), (e: any) => e.code === 'E_ARGUMENT');
});

test('encodeDataPackets splits at the max payload and round-trips', () => {
  const data = bytes(PKT_MAX_PAYLOAD * 2 + 7, 7);
  const pkts = encodeDataPackets(data);
  assert.equal(pkts.map((p) => p.length - 4), [PKT_MAX_PAYLOAD, PKT_MAX_PAYLOAD, 7]);
  const decoded = decodePackets(concat([...pkts, FLUSH_PKT]));
  assert.is(decoded.length, 4);
  assert.is(decoded[3]!.type, 'flush');
  const payload = concat(decoded.filter((p) => p.type === 'data').map((p) => (p as { payload: Uint8Array }).payload));
  assert.equal(payload, data);
  assert.equal(encodeDataPackets(new Uint8Array(0)), []);
});

test('length headers: special values, upper-case hex, malformed and out-of-range', () => {
  const h = (s: string) => te.encode(s);
  assert.is(parseLength(h('0000')), 0);
  assert.is(parseLength(h('0001')), 1);
  assert.is(parseLength(h('FFF0')), 65520);
  assert.is(parseLength(h('00aB')), 0xab);
  assert.throws(() => parseLength(h('00g1')), (e: any) => e.code === 'E_PKTLINE' && /malformed length/.test(e.message));
  assert.throws(() => parseLength(h(' 004')), (e: any) => e.code === 'E_PKTLINE');
  assert.throws(() => parseLength(h('0003')), (e: any) => e.code === 'E_PKTLINE');
  assert.throws(() => parseLength(h('fff1')), (e: any) => e.code === 'E_PKTLINE' && /exceeds/.test(e.message));
  assert.equal(decodePackets(h('000100020000')).map((p) => p.type), ['delim', 'response-end', 'flush']);
  assert.throws(() => decodePackets(h('0009abc')), (e: any) => e.code === 'E_PKTLINE' && /truncated packet/.test(e.message));
  assert.throws(() => decodePackets(h('00')), (e: any) => e.code === 'E_PKTLINE' && /truncated length/.test(e.message));
});

test('streaming reader: the same packets whatever the chunking, null only at a clean end', async () => {
  const big = bytes(PKT_MAX_PAYLOAD + 100, 3);
  const wire = concat([encodeTextList(['command=clean', 'pathname=a=b.bin']), ...encodeDataPackets(big), FLUSH_PKT, DELIM_PKT]);
  const want = decodePackets(wire);
  for (const size of [1, 3, 4, 5, 4096, wire.length]) {
    const r = new PktLineReader(readerFromChunks(chunked(wire, size)));
    const got = await readAll(r);
    assert.equal(got, want, `chunk size ${size}`);
  }
  const r = new PktLineReader(readerFromBytes(wire));
  assert.equal(await r.readTextList(), ['command=clean', 'pathname=a=b.bin']);
  let n = 0;
  for (let p = await r.read(); p && p.type === 'data'; p = await r.read()) n += p.payload.length;
  assert.is(n, big.length);
  assert.is((await r.read())!.type, 'delim');
  assert.is(await r.read(), null);
  assert.is(await new PktLineReader(readerFromBytes(new Uint8Array(0))).readTextList(), null, 'empty input: no list');
});

test('streaming reader: truncated header, truncated body, missing flush, malformed length', async () => {
  const full = concat([encodeText('hello'), FLUSH_PKT]);
  await rejectsWith(new PktLineReader(readerFromChunks(chunked(full.subarray(0, 2), 1))).read(), 'E_PKTLINE', /inside a length header/);
  await rejectsWith(new PktLineReader(readerFromChunks(chunked(full.subarray(0, 7), 2))).read(), 'E_PKTLINE', /inside a packet.*header says 10 bytes, got 7/);
  await rejectsWith(new PktLineReader(readerFromBytes(encodeText('hello'))).readTextList(), 'E_PKTLINE', /no flush/);
  await rejectsWith(new PktLineReader(readerFromBytes(te.encode('zzzzhello'))).read(), 'E_PKTLINE', /malformed length header "zzzz"/);
  await rejectsWith(new PktLineReader(readerFromBytes(concat([encodeText('a'), DELIM_PKT]))).readTextList(), 'E_PKTLINE', /unexpected delim/);
});

test('payloads handed out are copies that survive later reads', async () => {
  const wire = concat([encodeText('first'), encodeText('second'), FLUSH_PKT]);
  const r = new PktLineReader(readerFromBytes(wire));
  const a = await r.read();
  await r.read();
  assert.is(packetText((a as { payload: Uint8Array }).payload), 'first');
});

test('copy: false hands out views of the chunks read (a pipe\'s fresh buffers); the default copies', async () => {
  const payload = bytes(1000, 7);
  const stream = concat([encodeData(payload), encodeData(payload), FLUSH_PKT]);
  // one chunk: every packet lies inside it
  const views = await readAll(new PktLineReader(readerFromChunks(chunked(stream, stream.length)), 'test', { copy: false }));
  const copies = await readAll(new PktLineReader(readerFromChunks(chunked(stream, stream.length)), 'test'));
  for (const ps of [views, copies]) {
    assert.equal(ps.map((p) => p.type), ['data', 'data', 'flush']);
    for (const p of ps.slice(0, 2)) assert.equal((p as { payload: Uint8Array }).payload, payload);
  }
  const v = (views[0] as { payload: Uint8Array }).payload;
  const c = (copies[0] as { payload: Uint8Array }).payload;
  assert.is(v.byteLength < v.buffer.byteLength, true, 'a view into the chunk');
  assert.is(c.byteLength, c.buffer.byteLength, 'a copy of its own');
  // packets split across chunks are gathered into new arrays either way
  const split = await readAll(new PktLineReader(readerFromChunks(chunked(stream, 333)), 'test', { copy: false }));
  assert.equal((split[1] as { payload: Uint8Array }).payload, payload);
});

test.run();
