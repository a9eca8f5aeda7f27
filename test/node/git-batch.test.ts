// The long-running git helpers: blobs by any spec (binary bytes with newlines, empty blobs), missing
// paths and trees as null, many questions at once answered in order, attribute values.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { batchAttribute, batchReadBlob } from '../../src/node/git/git-batch.ts';
import { cleanup, git, tempDir } from './helpers.ts';

const t = suite('git batch helpers');

t('cat-file --batch and check-attr --stdin answer like one-shot git, many at a time, in order', async () => {
  const dir = tempDir('theta-batch-');
  try {
    await git(dir, 'init', '-q', '-b', 'main');
    const binary = new Uint8Array(70_000).map((_, i) => (i * 31 + 10) & 0xff); // holds many '\n' bytes
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub/a.bin'), binary);
    writeFileSync(join(dir, 'empty'), '');
    const attrs = 'sub/*.bin theta-format=tfjs-shard\n*.md -diff\n';
    writeFileSync(join(dir, '.gitattributes'), attrs);
    await git(dir, 'add', '.');
    await git(dir, 'commit', '-q', '-m', 'one');
    const a = await batchReadBlob(dir, 'HEAD:sub/a.bin');
    assert.ok(a && Buffer.compare(a, Buffer.from(binary)) === 0, 'binary blob byte for byte');
    assert.is((await batchReadBlob(dir, ':empty'))?.length, 0, 'an empty blob is empty, not null');
    assert.is(await batchReadBlob(dir, 'HEAD:missing'), null);
    assert.is(await batchReadBlob(dir, 'HEAD:sub'), null, 'a tree is not a blob');
    const specs = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? 'HEAD:nope' : i % 3 === 1 ? 'HEAD:sub/a.bin' : ':.gitattributes'));
    const got = await Promise.all(specs.map((s) => batchReadBlob(dir, s)));
    got.forEach((b, i) => assert.is(b?.length ?? null, i % 3 === 0 ? null : i % 3 === 1 ? binary.length : attrs.length, `answer ${i} in order`));
    assert.equal(await Promise.all(['sub/a.bin', 'x.md', 'other.bin', 'sub/a.bin'].map((p) => batchAttribute(dir, 'theta-format', p))), ['tfjs-shard', 'unspecified', 'unspecified', 'tfjs-shard']);
    assert.is(await batchAttribute(dir, 'diff', 'x.md'), 'unset');
  } finally {
    cleanup(dir);
  }
});

t.run();
