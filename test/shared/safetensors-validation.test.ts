// Every safetensors rule, each broken by a hand-built file: the error's `code` and that its message
// names the file (and the tensor where there is one). Also the registry's error paths.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { memorySink, readerFromBytes, readerFromChunks, type ByteReader } from '../../src/core/io.ts';
import { MAX_HEADER_BYTES, safetensors } from '../../src/formats/safetensors.ts';
import { getFormat, listFormats, registerFormat, sniffFormat, unregisterFormat } from '../../src/formats/index.ts';
import type { CheckpointFormat } from '../../src/formats/types.ts';
import { rawSafetensors } from './test-data.ts';

const FILE = 'bad.safetensors';
const enc = (s: string) => new TextEncoder().encode(s);

const build = rawSafetensors;

const entry = (dtype: string, shape: unknown, offsets: unknown) => JSON.stringify({ dtype, shape, data_offsets: offsets });

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

/** Open and read everything (bytes of every tensor); returns the error thrown. */
async function failure(reader: ByteReader): Promise<any> {
  try {
    const r = await safetensors.open(reader, { fileName: FILE });
    for await (const t of r.tensors()) await t.bytes();
  } catch (e) {
    return e;
  }
  return undefined;
}

interface Case {
  what: string;
  file: Uint8Array;
  code: 'E_FORMAT' | 'E_TRUNCATED';
  /** Text the message must contain (besides the file name). */
  says: RegExp;
  tensor?: string;
  /** Only check over random access (the rule needs the file size). */
  sizedOnly?: boolean;
  /** Over a one-way stream the error differs (code, message). */
  streamed?: { code: string; says: RegExp };
}

const ok = entry('F32', [2], [0, 8]);
const cases: Case[] = [
  { what: 'header length over the limit', file: build('{}', 0, MAX_HEADER_BYTES + 1), code: 'E_FORMAT', says: /limit/ },
  { what: 'header length with the high 32 bits set', file: build('{}', 0, 1n << 40n), code: 'E_FORMAT', says: /limit/ },
  { what: 'header length past the end of the file', file: build('{}', 0, 50), code: 'E_FORMAT', says: /larger than the file/, sizedOnly: true },
  { what: 'header length 0', file: build(''), code: 'E_FORMAT', says: /header length is 0/ },
  { what: 'file shorter than the 8-byte length', file: new Uint8Array([2, 0, 0]), code: 'E_TRUNCATED', says: /truncated/ },
  { what: 'invalid UTF-8 in the header', file: build(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), code: 'E_FORMAT', says: /UTF-8/ },
  { what: 'a byte-order mark before the JSON', file: build(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), code: 'E_FORMAT', says: /must start with '\{'/ },
  { what: 'header is not JSON', file: build('{"a": '), code: 'E_FORMAT', says: /not valid JSON/ },
  { what: 'header is a JSON array', file: build('[1,2]'), code: 'E_FORMAT', says: /must start with '\{'/ },
  { what: 'padding with something other than whitespace', file: build('{}\0\0\0\0\0\0'), code: 'E_FORMAT', says: /not valid JSON/ },
  { what: 'entry is not an object', file: build('{"w":[1,2]}'), code: 'E_FORMAT', says: /entry must be an object/, tensor: 'w' },
  { what: 'unknown dtype', file: build(`{"w":${entry('F4', [2], [0, 1])}}`, 1), code: 'E_FORMAT', says: /unknown dtype "F4"/, tensor: 'w' },
  { what: 'missing dtype', file: build('{"w":{"shape":[1],"data_offsets":[0,1]}}', 1), code: 'E_FORMAT', says: /no dtype/, tensor: 'w' },
  { what: 'negative dimension', file: build(`{"w":${entry('U8', [-1], [0, 0])}}`), code: 'E_FORMAT', says: /shape must be/, tensor: 'w' },
  { what: 'fractional dimension', file: build(`{"w":${entry('U8', [1.5], [0, 1])}}`, 1), code: 'E_FORMAT', says: /shape must be/, tensor: 'w' },
  { what: 'dimension as a string', file: build(`{"w":${entry('U8', ['2'], [0, 2])}}`, 2), code: 'E_FORMAT', says: /shape must be/, tensor: 'w' },
  { what: 'shape not an array', file: build(`{"w":${entry('U8', 2, [0, 2])}}`, 2), code: 'E_FORMAT', says: /shape must be/, tensor: 'w' },
  { what: 'data_offsets with three numbers', file: build(`{"w":${entry('U8', [1], [0, 1, 2])}}`, 1), code: 'E_FORMAT', says: /data_offsets must be/, tensor: 'w' },
  { what: 'data_offsets not integers', file: build(`{"w":${entry('U8', [1], [0, 1.5])}}`, 1), code: 'E_FORMAT', says: /data_offsets must be/, tensor: 'w' },
  { what: 'data_offsets beyond 2^53', file: build(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,18014398509481984]}}`, 1), code: 'E_FORMAT', says: /data_offsets must be/, tensor: 'w' },
  { what: 'begin after end', file: build(`{"w":${entry('U8', [0], [3, 2])}}`, 3), code: 'E_FORMAT', says: /begin is after end/, tensor: 'w' },
  { what: 'byte count does not match dtype × shape', file: build(`{"w":${entry('F32', [2, 3], [0, 20])}}`, 20), code: 'E_FORMAT', says: /hold 20 bytes but F32 \[2,3\] needs 24/, tensor: 'w' },
  { what: 'element count overflows', file: build(`{"w":${entry('F64', [4294967296, 4294967296], [0, 8])}}`, 8), code: 'E_FORMAT', says: /too large/, tensor: 'w' },
  { what: 'byte count overflows (safe element count)', file: build(`{"w":${entry('F64', [2 ** 51], [0, 8])}}`, 8), code: 'E_FORMAT', says: /too large/, tensor: 'w' },
  { what: 'buffer does not start at 0', file: build(`{"w":${entry('U8', [2], [1, 3])}}`, 3), code: 'E_FORMAT', says: /gap.*starts at 0/, tensor: 'w' },
  { what: 'gap between tensors', file: build(`{"a":${entry('U8', [2], [0, 2])},"b":${entry('U8', [2], [3, 5])}}`, 5), code: 'E_FORMAT', says: /gap: 'a' ends at 2/, tensor: 'b' },
  { what: 'overlapping tensors', file: build(`{"a":${entry('U8', [2], [0, 2])},"b":${entry('U8', [2], [1, 3])}}`, 3), code: 'E_FORMAT', says: /overlap tensor 'a'/, tensor: 'b' },
  { what: 'two tensors on the same bytes', file: build(`{"a":${entry('U8', [2], [0, 2])},"b":${entry('I8', [2], [0, 2])}}`, 2), code: 'E_FORMAT', says: /overlap/, tensor: 'b' },
  {
    what: 'bytes after the last tensor', file: build(`{"w":${ok}}`, 9), code: 'E_FORMAT', says: /1 bytes after the last tensor are not covered/,
    streamed: { code: 'E_FORMAT', says: /bytes follow the last tensor/ },
  },
  { what: 'duplicate tensor name', file: build(`{"w":${ok},"v":${entry('U8', [0], [8, 8])},"w":${ok}}`, 8), code: 'E_FORMAT', says: /appears twice/, tensor: 'w' },
  { what: 'duplicate tensor name spelled with an escape', file: build(`{"w":${ok},"\\u0077":${ok}}`, 8), code: 'E_FORMAT', says: /appears twice/, tensor: 'w' },
  { what: 'duplicate key inside an entry', file: build(`{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8), code: 'E_FORMAT', says: /key 'dtype' appears twice/, tensor: 'w' },
  { what: 'duplicate __metadata__', file: build(`{"__metadata__":{},"w":${ok},"__metadata__":{}}`, 8), code: 'E_FORMAT', says: /appears twice/ },
  { what: '__metadata__ value not a string', file: build(`{"__metadata__":{"epoch":3},"w":${ok}}`, 8), code: 'E_FORMAT', says: /__metadata__ value of 'epoch' must be a string/ },
  { what: '__metadata__ an array', file: build(`{"__metadata__":["a"],"w":${ok}}`, 8), code: 'E_FORMAT', says: /__metadata__ must be an object/ },
  { what: '__metadata__ null', file: build(`{"__metadata__":null,"w":${ok}}`, 8), code: 'E_FORMAT', says: /__metadata__ must be an object/ },
  {
    what: 'data cut short inside the last tensor', file: build(`{"a":${entry('U8', [2], [0, 2])},"w":${entry('F32', [4], [2, 18])}}`, 10), code: 'E_TRUNCATED', says: /truncated/, tensor: 'w',
  },
  {
    what: 'data missing entirely', file: build(`{"a":${entry('U8', [2], [0, 2])},"w":${entry('F32', [4], [2, 18])}}`, 0), code: 'E_TRUNCATED', says: /truncated/, tensor: 'a',
  },
];

const rules = suite('safetensors: validation');

for (const c of cases) {
  rules(`${c.what}: ${c.code}${c.tensor ? ` naming '${c.tensor}'` : ''}`, async () => {
    const readers: [string, () => ByteReader][] = [['random access', () => readerFromBytes(c.file, FILE)]];
    if (!c.sizedOnly) readers.push(['stream', () => readerFromChunks(pieces(c.file, 3), FILE)]);
    for (const [how, make] of readers) {
      const e = await failure(make());
      const want = how === 'stream' && c.streamed ? c.streamed : c;
      assert.ok(e, `${how}: no error`);
      assert.is(e.code, want.code, `${how}: code (${e.message})`);
      assert.ok(e.message.startsWith(`${FILE}: `), `${how}: message names the file: ${e.message}`);
      assert.ok(want.says.test(e.message), `${how}: message ${JSON.stringify(e.message)} should match ${want.says}`);
      assert.is(e.data.file, FILE, `${how}: data.file`);
      if (c.tensor) {
        assert.ok(e.message.includes(`tensor '${c.tensor}'`), `${how}: message names tensor '${c.tensor}': ${e.message}`);
        assert.is(e.data.tensor, c.tensor, `${how}: data.tensor`);
      }
    }
  });
}

rules('the streamed truncation error comes from the tensor being read, not at open', async () => {
  const file = build(`{"a":${entry('U8', [2], [0, 2])},"w":${entry('F32', [4], [2, 18])}}`, 10);
  const r = await safetensors.open(readerFromChunks(pieces(file, 4), FILE), { fileName: FILE });
  const seen: string[] = [];
  let error: any;
  try {
    for await (const t of r.tensors()) {
      seen.push(t.name);
      for await (const _ of t.chunks(2)) { /* read */ }
    }
  } catch (e) {
    error = e;
  }
  assert.equal(seen, ['a', 'w']);
  assert.is(error?.code, 'E_TRUNCATED');
  assert.is(error.data.tensor, 'w');
});

rules('a truncated tensor that is skipped (not read) still fails, naming it', async () => {
  const file = build(`{"a":${entry('U8', [2], [0, 2])},"w":${entry('F32', [4], [2, 18])}}`, 10);
  const r = await safetensors.open(readerFromChunks(pieces(file, 5), FILE), { fileName: FILE });
  let error: any;
  try {
    for await (const _ of r.tensors()) { /* skip all */ }
  } catch (e) {
    error = e;
  }
  assert.is(error?.code, 'E_TRUNCATED');
  assert.match(error.message, /tensor 'w'/);
});

rules('accepted: header padded with trailing spaces to any length; empty model; zero-size tensors', async () => {
  const good = [
    build(`{"w":${ok}}        `, 8),
    build(`{"w":${ok}} `, 8),
    build(`{}`),
    build(`{"__metadata__":{"a":"b"}}  `),
    build(`{"e":${entry('F32', [0, 5], [0, 0])},"w":${ok},"z":${entry('U8', [3, 0], [8, 8])}}`, 8),
  ];
  for (const f of good) {
    for (const reader of [readerFromBytes(f, FILE), readerFromChunks(pieces(f, 2), FILE)]) {
      const r = await safetensors.open(reader, { fileName: FILE });
      const names: string[] = [];
      for await (const t of r.tensors()) { names.push(t.name); await t.bytes(); }
      assert.equal(r.skeleton(), f.subarray(0, r.skeleton().length), 'skeleton keeps the padding');
      assert.ok(names.length <= 3);
    }
  }
});

rules('rebuild: wrong byte counts are errors naming the tensor; a bad skeleton is rejected', async () => {
  const file = build(`{"a":${entry('U8', [2], [0, 2])},"w":${entry('F32', [2], [2, 10])}}`, 10);
  const skeleton = file.subarray(0, file.length - 10);
  const give = (sizes: Record<string, number>) => (name: string) => (async function* () { yield new Uint8Array(sizes[name]); })();
  const attempt = async (skel: Uint8Array, sizes: Record<string, number>) => {
    try {
      await safetensors.rebuild(skel, give(sizes), memorySink());
    } catch (e) {
      return e as any;
    }
    return undefined;
  };
  let e = await attempt(skeleton, { a: 2, w: 7 });
  assert.is(e?.code, 'E_FORMAT');
  assert.match(e.message, /tensor 'w': got 7 bytes but its F32 \[2\] header needs 8/);
  e = await attempt(skeleton, { a: 3, w: 8 });
  assert.is(e?.code, 'E_FORMAT');
  assert.match(e.message, /tensor 'a': got more than the 2 bytes/);
  e = await attempt(file, { a: 2, w: 8 });
  assert.is(e?.code, 'E_FORMAT', 'a skeleton with trailing bytes');
  e = await attempt(skeleton.subarray(0, 5), { a: 2, w: 8 });
  assert.is(e?.code, 'E_FORMAT', 'a skeleton shorter than 8 bytes');
  assert.is(await attempt(skeleton, { a: 2, w: 8 }), undefined, 'right sizes rebuild');
});

const registry = suite('formats: registry');

registry('sniffFormat: unknown bytes are an UnknownFormatError naming the file', () => {
  for (const [head, name, says] of [
    [enc('PK\x03\x04 zip file here'), 'model.xyz', /no registered format/],
    [enc('PK\x03\x04 zip file here'), 'model.bin', /named like pytorch but its first bytes are not pytorch/],
    [new Uint8Array(0), 'empty.safetensors', /named like safetensors/],
    [build('{}', 0, 1n << 40n), 'big.safetensors', /named like safetensors/],
    [build('[1]'), undefined, /no registered format/],
  ] as const) {
    try {
      sniffFormat(head as Uint8Array, name);
      assert.unreachable(`sniffed ${name}`);
    } catch (e: any) {
      assert.is(e.code, 'E_UNKNOWN_FORMAT');
      assert.ok(e.message.startsWith(`${name ?? '<input>'}: `), e.message);
      assert.match(e.message, says);
    }
  }
  assert.is(sniffFormat(build(`{"w":${ok}}`, 8), 'weights.bin'), safetensors, 'content decides, not the name');
});

registry('getFormat, registerFormat, listFormats: a new format is one object and one registration', async () => {
  assert.throws(() => getFormat('nope'), (e: any) => e.code === 'E_UNKNOWN_FORMAT' && /format 'nope'/.test(e.message));
  const magic: CheckpointFormat = {
    id: 'test-magic',
    extensions: ['.magic'],
    sniff: (head) => head[0] === 0x4d && head[1] === 0x47,
    open: async () => { throw new Error('not used'); },
    rebuild: async () => {},
    write: async () => {},
  };
  registerFormat(magic);
  try {
    registerFormat(magic); // same object again: fine
    assert.is(getFormat('test-magic'), magic);
    assert.ok(listFormats().includes(magic));
    assert.is(sniffFormat(enc('MG....'), 'x.magic'), magic);
    assert.throws(() => registerFormat({ ...magic }), (e: any) => e.code === 'E_ARGUMENT' && /already registered/.test(e.message));
    assert.throws(() => registerFormat({ ...magic, id: 'half', write: undefined as any }), (e: any) => e.code === 'E_ARGUMENT' && /no write/.test(e.message));
  } finally {
    assert.ok(unregisterFormat('test-magic'));
  }
  assert.throws(() => getFormat('test-magic'), (e: any) => e.code === 'E_UNKNOWN_FORMAT');
});

rules.run();
registry.run();
