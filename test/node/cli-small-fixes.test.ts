// Small CLI behaviours: a reader that stops early (`| head`) ends `inspect` quietly with status 0;
// a safetensors `__metadata__` key `note` is the user's, not a message printed on every add.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memorySink } from '../../src/core/io.ts';
import { getFormat } from '../../src/formats/index.ts';
import '../../src/formats/safetensors.ts';
import { BIN, cleanup, git, requireTool, run, tempDir, thetaRepo } from './helpers.ts';

const S = suite('cli: small fixes');

async function safetensors(path: string, n: number, metadata?: Record<string, string>) {
  const sink = memorySink();
  const ts = Array.from({ length: n }, (_, i) => ({ name: `layer.${i}.weight`, dtype: 'F32' as const, shape: [4], data: new Uint8Array(new Float32Array([i, 1, 2, 3]).buffer) }));
  await getFormat('safetensors').write(ts, sink, metadata ? { metadata } : undefined);
  writeFileSync(path, sink.bytes());
}

S('inspect | head: no EPIPE crash, status 0, nothing on stderr', async () => {
  requireTool('bash', 'bash');
  const dir = tempDir('theta-epipe-');
  try {
    await safetensors(join(dir, 'm.safetensors'), 5000);
    const r = await run('bash', ['-c', `"${process.execPath}" "${BIN}" inspect m.safetensors | head -n 2 >/dev/null; echo "status=\${PIPESTATUS[0]}"`], dir);
    assert.match(r.stdout, /status=0/);
    assert.is(r.stderr, '');
  } finally {
    cleanup(dir);
  }
});

S('a safetensors __metadata__ note is not printed on add', async () => {
  const dir = await thetaRepo(['*.safetensors']);
  try {
    await safetensors(join(dir, 'model.safetensors'), 3, { note: 'fine-tuned on my data' });
    const r = await run('git', ['add', '.gitattributes', 'model.safetensors'], dir);
    assert.is(r.code, 0, r.stderr);
    assert.not.match(r.stderr, /stored without splitting|fine-tuned on my data/);
    assert.match(await git(dir, 'show', ':model.safetensors'), /"format": "safetensors"/);
  } finally {
    cleanup(dir);
  }
});

S('git theta checkout of many checkpoints names eight of them and counts the rest', async () => {
  const dir = await thetaRepo(['*.safetensors']);
  try {
    const names = Array.from({ length: 11 }, (_, i) => `m${String(i).padStart(2, '0')}.safetensors`);
    for (const [i, n] of names.entries()) await safetensors(join(dir, n), 2 + i);
    await git(dir, 'add', '.gitattributes', ...names);
    await git(dir, 'commit', '-q', '-m', 'v1');
    for (const n of names) rmSync(join(dir, n));
    const r = await run(process.execPath, [BIN, 'checkout', '--', '.'], dir);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, `wrote 11 checkpoint(s): ${names.slice(0, 8).join(', ')}, and 3 more\n`);
    assert.is((await git(dir, 'status', '--porcelain')).trim(), '');
  } finally {
    cleanup(dir);
  }
});

S.run();
