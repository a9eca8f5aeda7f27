// Format readers must copy what they keep: the Node file stream (fileChunks) reuses two buffers,
// as git's pipe may. Every fixture read through tiny reused chunks rebuilds byte for byte.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileChunks } from '../../src/node/files/fs-source.ts';
import { memorySink, readerFromChunks } from '../../src/core/io.ts';
import { sniffFormat } from '../../src/formats/index.ts';
import { fixturesDir, sha256 } from './helpers.ts';

test('every fixture read through reused 61-byte buffers rebuilds byte-identically', async () => {
  const files = readdirSync(fixturesDir).filter((f) => /\.(pt|npz|npy|safetensors)$/.test(f));
  assert.ok(files.length >= 15);
  for (const f of files) {
    const path = join(fixturesDir, f);
    const orig = readFileSync(path);
    const format = sniffFormat(orig.subarray(0, 4096), f);
    const r = await format.open(readerFromChunks(fileChunks(path, 61), f), { fileName: f });
    const tensors = new Map<string, Uint8Array>();
    for await (const t of r.tensors()) tensors.set(t.name, (await t.bytes()).slice());
    const sink = memorySink();
    await format.rebuild(r.skeleton().slice(), async function* (n) { yield tensors.get(n)!; }, sink);
    assert.is(sha256(sink.bytes()), sha256(orig), f);
  }
});

test.run();
