// Merges of zip checkpoints through real `git merge`: a PyTorch file and npz files (stored and
// zlib-deflated members) whose tensors changed on both branches. The merged file must be a valid
// zip (CRC-32s and sizes of the merged values: Python's zipfile.testzip), load with torch/numpy to
// the expected merge, and `git status` must be clean right after the merge commit (the committed
// metadata is what cleaning the checked-out file gives).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, git, run, tempDir, thetaOk, thetaRepo } from './helpers.ts';

const PYTHON = '/usr/bin/python3';

/** base, ours (a+1, c+1) and theirs (b*2, c+3) of a three-tensor model, in one of three kinds of file. */
const WRITE = String.raw`
import sys
try:
    import torch, numpy as np
except ImportError:
    print("NO_TORCH"); sys.exit(3)
kind, out = sys.argv[1], sys.argv[2]
g = torch.Generator().manual_seed(0)
a = torch.randn(64, 32, generator=g); b = torch.randn(32, generator=g); c = torch.randn(16, 8, generator=g)
for name, (x, y, z) in {"base": (a, b, c), "ours": (a + 1, b, c + 1), "theirs": (a, b * 2, c + 3)}.items():
    d = {"a": x, "b": y, "c": z}
    if kind == "pt":
        torch.save(d, f"{out}/{name}.pt")
    else:
        save = np.savez if kind == "npz" else np.savez_compressed
        save(f"{out}/{name}.npz", **{k: v.numpy() for k, v in d.items()})
`;

/** Loads the merged file, compares it with the expected merge and tests the zip's CRCs. */
const CHECK = String.raw`
import sys, json, zipfile
import torch, numpy as np
kind, f, base = sys.argv[1], sys.argv[2], sys.argv[3]
load = (lambda p: {k: v.numpy() for k, v in torch.load(p).items()}) if kind == "pt" else (lambda p: dict(np.load(p)))
b = load(base)
want = {"a": b["a"] + 1, "b": b["b"] * 2, "c": ((b["c"] + 1) + (b["c"] + 3)) / 2}
got = load(f)
diff = max(float(np.abs(got[k] - want[k]).max()) for k in want)
print(json.dumps({"names": sorted(got), "maxdiff": diff, "testzip": zipfile.ZipFile(f).testzip()}))
`;

function python(script: string, args: string[]): string {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8' });
  if (r.error || r.status === 3 || r.stdout.startsWith('NO_TORCH')) {
    throw new Error(`this test needs PyTorch and NumPy for ${PYTHON}: install python3-torch and python3-numpy (apt-get install -y python3-torch python3-numpy)`);
  }
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const t = suite('merge keeps zip checkpoints valid (real git)');

for (const kind of ['pt', 'npz', 'npz-compressed'] as const) {
  t(`${kind}: tensors changed on different sides and on both (average) merge into a valid file and a clean status`, async () => {
    const files = tempDir('theta-merge-sk-');
    const ext = kind === 'pt' ? 'pt' : 'npz';
    const dir = await thetaRepo([`*.${ext}`]);
    try {
      python(WRITE, [kind, files]);
      const file = join(dir, `m.${ext}`);
      const put = async (side: string, msg: string) => {
        copyFileSync(join(files, `${side}.${ext}`), file);
        await thetaOk(dir, 'add', `m.${ext}`, '.gitattributes');
        await git(dir, 'commit', '-q', '-m', msg);
      };
      await put('base', 'base');
      await git(dir, 'checkout', '-q', '-b', 'other');
      await put('theirs', 'theirs');
      await git(dir, 'checkout', '-q', 'main');
      await put('ours', 'ours');
      const r = await run('git', ['merge', '--no-edit', 'other'], dir, { env: { THETA_MERGE_STRATEGY: 'average' } });
      assert.is(r.code, 0, r.stdout + r.stderr);
      const check = JSON.parse(python(CHECK, [kind === 'pt' ? 'pt' : 'npz', file, join(files, `base.${ext}`)]));
      assert.equal(check.names, ['a', 'b', 'c']);
      assert.is(check.testzip, null, 'a member of the merged zip has a wrong CRC-32');
      assert.ok(check.maxdiff <= 1e-6, `merged values differ from the expected merge by ${check.maxdiff}`);
      assert.is(await git(dir, 'status', '--porcelain'), '');
      // the committed metadata is what a fresh clean of the checked-out file gives
      await git(dir, 'add', '--renormalize', '.');
      assert.is(await git(dir, 'status', '--porcelain'), '');
    } finally {
      cleanup(dir);
      cleanup(files);
    }
  });
}

t.run();
