// `numpy.savez_compressed` files (written here by NumPy 1.24 through /usr/bin/python3): every
// deflated member is reproduced by zlib's deflate and stored per tensor, so a commit that changes
// one array stores about that array's bytes; checkouts are byte-identical; a member written at a
// level we do not try keeps its compressed bytes, with one note.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readerFromBytes } from '../../src/core/io.ts';
import { getFormat } from '../../src/formats/index.ts';
import '../../src/formats/numpy.ts';
import { cleanup, git, objectFiles, run, sha256, thetaRepo } from './helpers.ts';

const PYTHON = '/usr/bin/python3';
const N = suite('npz written by numpy.savez_compressed');

function numpy(code: string, cwd: string): string {
  const r = spawnSync(PYTHON, ['-c', `import numpy as np, zipfile, io\n${code}`], { cwd, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`this test needs NumPy for ${PYTHON}: install python3-numpy (apt-get install -y python3-numpy) (${r.stderr ?? r.error})`);
  return r.stdout;
}

const SAVE = (seed: number, bump: number) => `
rng = np.random.default_rng(${seed})
arrays = {f'layer{i}.weight': rng.standard_normal((128, 96)).astype(np.float32) for i in range(6)}
arrays['embed'] = rng.standard_normal((500, 64)).astype(np.float16)
arrays['steps'] = np.arange(1000, dtype=np.int64)
arrays['layer3.weight'][0, :${bump}] += 1
np.savez_compressed('m.npz', **arrays)
print(np.__version__)
`;

async function storedBytes(dir: string, run: () => Promise<void>): Promise<number> {
  const objects = join(dir, '.git', 'lfs', 'objects');
  const before = objectFiles(objects);
  await run();
  let n = 0;
  for (const [oid, b] of objectFiles(objects)) if (!before.has(oid)) n += b.length;
  return n;
}

N('every member reproduced, one changed array stores about its bytes, checkouts byte-identical', async () => {
  const dir = await thetaRepo(['*.npz']);
  try {
    const version = numpy(SAVE(1, 0), dir).trim();
    assert.ok(/^1\./.test(version), `numpy ${version}`);
    const v1 = readFileSync(join(dir, 'm.npz'));
    // the reader reproduces every member with zlib's deflate
    const r = await getFormat('npz').open(readerFromBytes(new Uint8Array(v1)), { fileName: 'm.npz' });
    for await (const t of r.tensors()) await t.bytes();
    assert.is(r.metadata!.deflatedReproduced, 8);
    assert.is(r.metadata!.deflatedKeptCompressed, 0);
    await r.close();

    const first = await storedBytes(dir, async () => {
      const a = await run('git', ['add', '.gitattributes', 'm.npz'], dir);
      assert.is(a.code, 0, a.stderr);
      assert.not.match(a.stderr, /could not be reproduced/);
    });
    await git(dir, 'commit', '-q', '-m', 'v1');
    const raw = 6 * 128 * 96 * 4 + 500 * 64 * 2 + 1000 * 8;
    assert.ok(first <= 1.1 * raw + 8192, `first commit stored ${first} bytes for ${raw} bytes of arrays`);

    numpy(SAVE(1, 50), dir); // layer3.weight: 50 values changed
    const v2 = readFileSync(join(dir, 'm.npz'));
    const second = await storedBytes(dir, async () => { await git(dir, 'add', 'm.npz'); });
    await git(dir, 'commit', '-q', '-m', 'v2');
    const changed = 128 * 96 * 4;
    assert.ok(second <= 1.1 * changed + 8192, `second commit stored ${second} bytes; the changed array has ${changed}`);

    await git(dir, 'checkout', '-q', 'HEAD~1', '--', 'm.npz');
    assert.is(sha256(readFileSync(join(dir, 'm.npz'))), sha256(v1));
    await git(dir, 'checkout', '-q', 'HEAD', '--', 'm.npz');
    assert.is(sha256(readFileSync(join(dir, 'm.npz'))), sha256(v2));
  } finally {
    cleanup(dir);
  }
});

N('a member no deflate we have reproduces keeps its bytes, with one note, and checks out exactly', async () => {
  const dir = await thetaRepo(['*.npz']);
  try {
    numpy(`
rng = np.random.default_rng(3)
with zipfile.ZipFile('odd.npz', 'w', compression=zipfile.ZIP_DEFLATED, compresslevel=3) as z:
    for name in ['a', 'b']:
        buf = io.BytesIO(); np.save(buf, np.round(rng.standard_normal((64, 64)), 1).astype(np.float32))
        z.writestr(name + '.npy', buf.getvalue())
`, dir);
    const bytes = readFileSync(join(dir, 'odd.npz'));
    const a = await run('git', ['add', '.gitattributes', 'odd.npz'], dir);
    assert.is(a.code, 0, a.stderr);
    const notes = a.stderr.split('\n').filter((l) => l.includes('could not be reproduced'));
    assert.is(notes.length, 1, a.stderr);
    assert.match(notes[0], /odd\.npz: 2 compressed members/, notes[0]);
    await git(dir, 'commit', '-q', '-m', 'odd');
    await git(dir, 'rm', '-q', '--cached', 'odd.npz');
    await git(dir, 'checkout', '-q', 'HEAD', '--', 'odd.npz');
    assert.is(sha256(readFileSync(join(dir, 'odd.npz'))), sha256(bytes));
  } finally {
    cleanup(dir);
  }
});

N.run();
