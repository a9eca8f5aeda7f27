// A PyTorch training checkpoint with 400+ entries (written by the real torch.save through
// /usr/bin/python3): a commit that changes one tensor stores that tensor plus a few KB, because the
// skeleton (zip headers, CRC-32s, pickle) is stored as a sparse delta over bytes against the
// previous version; checkouts of both versions are byte-identical.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseMetadata } from '../../src/theta/metadata.ts';
import { cleanup, git, objectFiles, sha256, thetaOk, thetaRepo } from './helpers.ts';
import { inlineBytesAdded } from '../shared/test-data.ts';

const PYTHON = '/usr/bin/python3';
const P = suite('pytorch: small commits for big checkpoints');

const SAVE = (bump: number) => `
import torch, collections
g = torch.Generator().manual_seed(0)
model = collections.OrderedDict((f'blocks.{i}.{k}', torch.randn(16, 16, generator=g)) for i in range(150) for k in ('attn', 'mlp', 'norm'))
model['blocks.7.mlp'][0, :${bump}] += 1.0
opt = {'state': {i: {'step': torch.tensor(100.0)} for i in range(30)}, 'param_groups': [{'lr': 0.001, 'params': list(range(30))}]}
torch.save({'model': model, 'optimizer': opt, 'epoch': 3}, 'ckpt.pt')
`;

function torch(code: string, cwd: string): void {
  const r = spawnSync(PYTHON, ['-c', code], { cwd, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`this test needs PyTorch for ${PYTHON}: install python3-torch (apt-get install -y python3-torch) (${r.stderr ?? r.error})`);
}

P('one changed tensor of a 480-entry checkpoint stores that tensor plus a few KB', async () => {
  const dir = await thetaRepo(['*.pt']);
  try {
    torch(SAVE(0), dir);
    const v1 = readFileSync(join(dir, 'ckpt.pt'));
    await thetaOk(dir, 'add', '.gitattributes', 'ckpt.pt');
    await git(dir, 'commit', '-q', '-m', 'v1');
    const m1 = parseMetadata(await git(dir, 'show', 'HEAD:ckpt.pt'));
    assert.ok(Object.keys(m1.tensors).length >= 400, `${Object.keys(m1.tensors).length} tensors`);
    assert.ok(m1.skeleton.size > 40_000, `skeleton ${m1.skeleton.size} bytes`);

    torch(SAVE(16), dir); // one row of one 16×16 tensor changed
    const v2 = readFileSync(join(dir, 'ckpt.pt'));
    const objects = join(dir, '.git', 'lfs', 'objects');
    const before = objectFiles(objects);
    await thetaOk(dir, 'add', 'ckpt.pt');
    await git(dir, 'commit', '-q', '-m', 'v2');
    const m2 = parseMetadata(await git(dir, 'show', 'HEAD:ckpt.pt'));
    // what the commit stored: new objects, and new objects small enough to ride inline in the metadata
    let stored = inlineBytesAdded([m1], [m2]);
    for (const [oid, b] of objectFiles(objects)) if (!before.has(oid)) stored += b.length;
    const changed = 16 * 16 * 4;
    assert.ok(stored > 0 && stored <= 1.1 * changed + 8192, `v2 stored ${stored} bytes for a ${changed}-byte tensor (skeleton ${m1.skeleton.size} bytes)`);
    assert.ok(m2.skeleton_delta, 'the skeleton is stored as a delta');
    assert.is(m2.skeleton.oid, m1.skeleton.oid, 'on the previous skeleton');
    // version 2 marks a skeleton delta, 3 inline objects too (the 480 small tensors ride in the metadata)
    assert.match(await git(dir, 'show', 'HEAD:ckpt.pt'), /^\{\n "git-theta": 3,/);

    const diff = JSON.parse(await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json'));
    assert.equal(diff.files[0].tensors.map((t: { name: string }) => t.name), ['model.blocks.7.mlp']);

    await git(dir, 'checkout', '-q', 'HEAD~1', '--', 'ckpt.pt');
    assert.is(sha256(readFileSync(join(dir, 'ckpt.pt'))), sha256(v1));
    await git(dir, 'checkout', '-q', 'HEAD', '--', 'ckpt.pt');
    assert.is(sha256(readFileSync(join(dir, 'ckpt.pt'))), sha256(v2));
    await thetaOk(dir, 'checkout', 'HEAD~1', '--', 'ckpt.pt');
    assert.is(sha256(readFileSync(join(dir, 'ckpt.pt'))), sha256(v1));
    await thetaOk(dir, 'checkout', 'HEAD', '--', 'ckpt.pt');
    assert.is(await git(dir, 'status', '--porcelain'), '');
  } finally {
    cleanup(dir);
  }
});

P.run();
