// examples/deno/diff.ts end to end: a repository written with the real git and `git theta add` is
// served by `git theta serve` (smart HTTP through git http-backend, and the LFS API); the Deno example clones it into memory and must print exactly what
// `git theta diff <a> <b> --json` prints, downloading only objects of tensors that changed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type ThetaServer } from '../../src/node/serve/server.ts';
import { parseMetadata, referencedObjects } from '../../src/theta/metadata.ts';
import { cleanup, fixturesDir, git, repoRoot, run, thetaOk, thetaRepo } from './helpers.ts';

const test = suite('examples/deno/diff.ts');
const HISTORY = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v4-sparse.safetensors'];
const DENO = join(repoRoot, 'node_modules/.bin/deno');

interface Served {
  url: string;
  server: ThetaServer;
  /** LFS objects downloaded (oid -> times). */
  downloads: Map<string, number>;
}

/** `git theta serve` (in process): git smart HTTP through git http-backend plus the LFS API. */
async function serve(repo: string): Promise<Served> {
  const server = await startServer({ repo, port: 0, webDir: null });
  return { url: server.repoUrl, server, downloads: server.stats.downloads };
}

const state: { dir?: string; served?: Served } = {};

test('prints the same JSON as git theta diff --json, downloading only changed tensors', async () => {
  const dir = (state.dir = await thetaRepo());
  await git(dir, 'add', '.gitattributes');
  for (const f of HISTORY) {
    copyFileSync(join(fixturesDir, f), join(dir, 'model.safetensors'));
    await thetaOk(dir, 'add', 'model.safetensors');
    await git(dir, 'commit', '-q', '-m', f);
  }
  const served = (state.served = await serve(dir));

  const r = await run(DENO, ['run', '--allow-net', '--allow-env=IGNORE_TEST_WIN32', 'examples/deno/diff.ts', served.url, 'HEAD~1', 'HEAD'], repoRoot);
  assert.is(r.code, 0, r.stderr);
  const cli = await thetaOk(dir, 'diff', 'HEAD~1', 'HEAD', '--json');
  assert.is(r.stdout, cli, 'same bytes as the CLI');
  const parsed = JSON.parse(r.stdout);
  assert.ok(parsed.files[0].summary.modified > 0 && parsed.files[0].summary.unchanged > 0);

  // exactly the objects of the changed tensors' recipes, at both revisions; no skeleton, nothing unchanged
  const before = parseMetadata(await git(dir, 'cat-file', 'blob', 'HEAD~1:model.safetensors'));
  const after = parseMetadata(await git(dir, 'cat-file', 'blob', 'HEAD:model.safetensors'));
  const needed = new Set<string>();
  const unchanged = new Set<string>([before.skeleton.oid, after.skeleton.oid]);
  for (const [name, e] of Object.entries(after.tensors)) {
    const refs = [...referencedObjects({ ...after, tensors: { [name]: e } }), ...referencedObjects({ ...before, tensors: { [name]: before.tensors[name] } })]
      .filter((x) => x.oid !== after.skeleton.oid && x.oid !== before.skeleton.oid);
    for (const x of refs) (e.hash === before.tensors[name].hash ? unchanged : needed).add(x.oid);
  }
  for (const oid of needed) unchanged.delete(oid);
  assert.equal(new Set(served.downloads.keys()), needed);
  assert.ok([...served.downloads.values()].every((n) => n === 1), 'each object downloaded once');
  assert.ok([...served.downloads.keys()].every((o) => !unchanged.has(o)));
});

test('--approx downloads nothing and matches git theta diff --approx --json', async () => {
  const { dir, served } = state as Required<typeof state>;
  served.downloads.clear();
  const r = await run(DENO, ['run', '--allow-net', '--allow-env=IGNORE_TEST_WIN32', 'examples/deno/diff.ts', served.url, 'HEAD~2', 'HEAD', '--approx'], repoRoot);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, await thetaOk(dir, 'diff', 'HEAD~2', 'HEAD', '--json', '--approx'));
  assert.is(served.downloads.size, 0);
});

test('a bad revision is one line on stderr and exit code 1', async () => {
  const { served } = state as Required<typeof state>;
  const r = await run(DENO, ['run', '--allow-net', '--allow-env=IGNORE_TEST_WIN32', 'examples/deno/diff.ts', served.url, 'no-such-branch', 'HEAD'], repoRoot);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^git-theta: revision 'no-such-branch' not found/);
  assert.is(r.stdout, '');
});

test.after(async () => {
  await state.served?.server.close();
  if (state.dir) cleanup(state.dir);
});

test.run();
