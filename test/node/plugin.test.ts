// A third-party plug-in (test/node/fixtures/toy-plugin.mjs) adds a format and an update type, and
// both work end to end through git.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { cleanup, git, repoRoot, sha256, theta, thetaOk, thetaRepo } from './helpers.ts';

function toyFile(values: number[][]): Buffer {
  const header = values.map((v, i) => ({ name: `t${i}`, dtype: 'F32', shape: [v.length] }));
  return Buffer.concat([
    Buffer.from('TOY1\n' + JSON.stringify(header) + '\n'),
    ...values.map((v) => Buffer.from(new Float32Array(v).buffer)),
  ]);
}

test('plug-in: a toy format and a toy update type, loaded from theta.plugin, work through git', async () => {
  const dir = await thetaRepo(['*.toy']);
  try {
    await git(dir, 'config', '--add', 'theta.plugin', join(repoRoot, 'test/node/fixtures/toy-plugin.mjs'));
    const v0 = toyFile([[1, 2, 3, 4.5], [0.25, -1]]);
    const v1 = toyFile([[2, 4, 6, 9], [0.25, -1]]);
    writeFileSync(join(dir, 'w.toy'), v0);
    await thetaOk(dir, 'add', 'w.toy', '.gitattributes');
    await git(dir, 'commit', '-q', '-m', 'v0');
    writeFileSync(join(dir, 'w.toy'), v1);
    await thetaOk(dir, 'add', 'w.toy', '--update-type', 'toy-double');
    await git(dir, 'commit', '-q', '-m', 'v1');
    const m = parseMetadata(await git(dir, 'cat-file', 'blob', 'HEAD:w.toy'));
    assert.is(m.format, 'toy');
    assert.is(m.tensors.t0.update, 'toy-double');
    assert.is(m.tensors.t1.update, 'dense', 'unchanged tensor keeps its entry');
    await git(dir, 'checkout', '-q', 'HEAD~1');
    assert.is(sha256(readFileSync(join(dir, 'w.toy'))), sha256(v0));
    await git(dir, 'checkout', '-q', 'main');
    assert.is(sha256(readFileSync(join(dir, 'w.toy'))), sha256(v1));
    // without the plug-in, the toy format is unknown: a clear error, not a crash
    await git(dir, 'config', '--unset-all', 'theta.plugin');
    const r = await theta(dir, ['inspect', 'w.toy']);
    assert.is(r.code, 1);
    assert.match(r.stderr, /not a recognised checkpoint/);
  } finally {
    cleanup(dir);
  }
});

test('plug-in: a module without register() is a one-line error', async () => {
  const dir = await thetaRepo([]);
  try {
    writeFileSync(join(dir, 'bad-plugin.mjs'), 'export const x = 1;\n');
    await git(dir, 'config', '--add', 'theta.plugin', './bad-plugin.mjs');
    const r = await theta(dir, ['inspect', 'nothing.safetensors']);
    assert.is(r.code, 1);
    assert.match(r.stderr, /must export a register\(api\) function/);
  } finally {
    cleanup(dir);
  }
});

test.run();
