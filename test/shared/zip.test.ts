// The streaming zip layer on its own: round trips with the writer, CRC-32 against a known value,
// and hostile archives (bombs, truncation, corrupt CRC, lying central directory, pipe-written members).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { collect, memorySink, readerFromBytes, readerFromChunks } from '../../src/core/io.ts';
import { ZipReader, crc32, writeZip, checkZipEntryName, MAX_DEFLATE_RATIO } from '../../src/formats/zip.ts';
import { expectCode } from './assertions.ts';

const Z = suite('zip');

async function zipOf(entries: { name: string; data: Uint8Array; method?: 0 | 8 }[]): Promise<Uint8Array> {
  const s = memorySink();
  await writeZip(entries, s);
  return s.bytes();
}

async function readAll(bytes: Uint8Array, chunk?: number) {
  const src = chunk ? readerFromChunks((async function* () { for (let i = 0; i < bytes.length; i += chunk) yield bytes.slice(i, i + chunk); })()) : readerFromBytes(bytes, 't.zip');
  const z = new ZipReader(src, { fileName: 't.zip' });
  const out: { name: string; data: Uint8Array }[] = [];
  for (let e; (e = await z.next()); ) out.push({ name: e.name, data: await collect(z.data(3)) });
  return { out, trailer: z.trailer() };
}

Z('crc32 of "123456789" is the standard check value 0xCBF43926', () => {
  assert.is(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.is(crc32(new TextEncoder().encode('6789'), crc32(new TextEncoder().encode('12345'))), 0xcbf43926);
});

Z('stored and deflated entries round trip through the writer, whole and over a 2-byte pipe', async () => {
  const big = new Uint8Array(300_000).map((_, i) => (i * 31) % 251);
  const entries = [{ name: 'a.bin', data: big, method: 8 as const }, { name: 'dir/b.txt', data: new TextEncoder().encode('hi'), method: 0 as const }, { name: 'e', data: new Uint8Array(0) }];
  const bytes = await zipOf(entries);
  for (const chunk of [undefined, 2]) {
    const { out, trailer } = await readAll(bytes, chunk);
    assert.equal(out.map((e) => e.name), ['a.bin', 'dir/b.txt', 'e']);
    assert.ok(out[0].data.every((x, i) => x === big[i]) && out[0].data.length === big.length);
    assert.ok(trailer.length > 22);
  }
});

Z('unsafe names are refused', () => {
  for (const n of ['../x', 'a/../../x', '/etc/passwd', '\\x', 'C:x', 'a\\..\\b', '']) {
    try { checkZipEntryName(n); assert.unreachable(n); } catch (e) { assert.is((e as { data: { reason: string } }).data.reason, 'unsafe-path', n); }
  }
  checkZipEntryName('a/b..c/d.npy');
});

Z('zip bomb: a member inflating past its declared size stops with an error', async () => {
  const zeros = new Uint8Array(4 << 20);
  const bytes = (await zipOf([{ name: 'z.bin', data: zeros, method: 8 }])).slice();
  // lie: declared uncompressed size 1000 (local header offset 22, central offset found by signature)
  const dv = new DataView(bytes.buffer);
  dv.setUint32(22, 1000, true);
  for (let i = bytes.length - 22; i >= 0; i--) if (dv.getUint32(i, true) === 0x02014b50) { dv.setUint32(i + 24, 1000, true); break; }
  await expectCode(readAll(bytes), 'E_FORMAT', 'zip-bomb');
  // and a declared size beyond deflate's maximum ratio is refused before inflating
  const csize = dv.getUint32(18, true);
  dv.setUint32(22, csize * MAX_DEFLATE_RATIO + 5000, true);
  await expectCode(readAll(bytes), 'E_FORMAT', 'zip-bomb');
});

Z('corrupt CRC, truncation, corrupt deflate data, bad central directory, pipe-written members', async () => {
  const data = new TextEncoder().encode('hello hello hello hello');
  const stored = await zipOf([{ name: 'a', data }]);
  const crcBad = stored.slice(); crcBad[14] ^= 1;
  // the central directory repeats the CRC; fix it up so the local check is what fails
  const dv = new DataView(crcBad.buffer);
  for (let i = 0; i + 4 <= crcBad.length; i++) if (dv.getUint32(i, true) === 0x02014b50) crcBad[i + 16] ^= 1;
  await expectCode(readAll(crcBad), 'E_FORMAT', 'crc');
  await expectCode(readAll(stored.subarray(0, 40)), 'E_FORMAT', 'past-end');
  await expectCode(readAll(stored.subarray(0, 40), 4), 'E_TRUNCATED');
  await expectCode(readAll(stored.subarray(0, stored.length - 5)), 'E_FORMAT', 'central-directory');
  const deflated = (await zipOf([{ name: 'a', data, method: 8 }])).slice();
  deflated[31 + 1] = 0xff; deflated[31 + 2] = 0xff; deflated[31 + 3] = 0xff;
  await expectCode(readAll(deflated), 'E_FORMAT');
  const pipe = stored.slice();
  pipe[6] |= 8; // data descriptor flag
  pipe.fill(0, 14, 26); // crc and sizes only in the (absent) descriptor
  await expectCode(readAll(pipe), 'E_FORMAT', 'data-descriptor');
  const garbage = new Uint8Array([0x50, 0x4b, 0x09, 0x09, 1, 2, 3]);
  await expectCode(readAll(garbage), 'E_FORMAT', 'bad-signature');
  // bad UTF-8 in a name flagged UTF-8
  const u = (await zipOf([{ name: 'é.npy', data }])).slice();
  const at = 30; u[at] = 0xff;
  await expectCode(readAll(u), 'E_FORMAT', 'bad-utf8');
});

Z.run();
