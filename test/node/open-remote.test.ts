// openRemote on one file system kept between calls (as the page keeps its IndexedDB): the first
// call clones, the next finds the server unchanged and asks for nothing but refs, a new commit is
// fetched, and with the server gone the cached clone and objects still answer (offline). The
// server is `git theta serve` in process; the diffs are checked against `git theta diff --json`.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMemFs, diffRevisions, openRemote, type MemFs } from '../../src/repo/index.ts';
import { startServer, type ThetaServer } from '../../src/node/serve/server.ts';
import { cleanup, fixturesDir, git, thetaOk, thetaRepo } from './helpers.ts';

const test = suite('openRemote (clone, up to date, fetch, offline)');
const state: { repo?: string; server?: ThetaServer; fs: MemFs; url?: string } = { fs: createMemFs() };

async function commit(file: string): Promise<void> {
  copyFileSync(join(fixturesDir, file), join(state.repo!, 'model.safetensors'));
  await thetaOk(state.repo!, 'add', 'model.safetensors');
  await git(state.repo!, 'commit', '-q', '-m', file);
}

async function diffJson(repo: Awaited<ReturnType<typeof openRemote>>): Promise<string> {
  return `${JSON.stringify(await diffRevisions({ ...repo, from: 'HEAD~1', to: 'HEAD' }))}\n`;
}

test.before(async () => {
  state.repo = await thetaRepo();
  await git(state.repo, 'add', '.gitattributes');
  for (const f of ['history-v0.safetensors', 'history-v1.safetensors']) await commit(f);
  state.server = await startServer({ repo: state.repo, port: 0, webDir: null });
  state.url = state.server.repoUrl;
});

test.after(async () => {
  await state.server?.close().catch(() => {});
  if (state.repo) cleanup(state.repo);
});

test('clones, then finds it current (no download), then fetches a new commit', async () => {
  const { fs, url } = state as Required<typeof state>;
  const first = await openRemote({ url, fs });
  assert.is(first.source, 'cloned');
  assert.is(await diffJson(first), await thetaOk(state.repo!, 'diff', 'HEAD~1', 'HEAD', '--json'));
  const downloaded = state.server!.stats.downloads.size;
  assert.ok(downloaded > 0);

  const again = await openRemote({ url, fs });
  assert.is(again.source, 'current');
  assert.is(await diffJson(again), await thetaOk(state.repo!, 'diff', 'HEAD~1', 'HEAD', '--json'));
  assert.is(state.server!.stats.downloads.size, downloaded, 'nothing downloaded again');
  assert.ok([...state.server!.stats.downloads.values()].every((n) => n === 1));

  await commit('history-v4-sparse.safetensors');
  const fetched = await openRemote({ url, fs });
  assert.is(fetched.source, 'fetched');
  assert.is(await diffJson(fetched), await thetaOk(state.repo!, 'diff', 'HEAD~1', 'HEAD', '--json'), 'HEAD moved to the new commit');
  assert.ok([...state.server!.stats.downloads.values()].every((n) => n === 1), 'no object downloaded twice');
});

test('with the server gone, the cached clone and objects still answer (offline)', async () => {
  const { fs, url } = state as Required<typeof state>;
  const want = await thetaOk(state.repo!, 'diff', 'HEAD~1', 'HEAD', '--json');
  await state.server!.close();
  const offline = await openRemote({ url, fs });
  assert.is(offline.source, 'offline');
  assert.ok(offline.offlineReason, 'the reason is given');
  assert.is(await diffJson(offline), want);
});

test('another URL in the same dir is refused with E_CLONE_MISMATCH; an unreachable first clone is E_CLONE_FAILED and leaves nothing', async () => {
  const { fs } = state;
  try {
    await openRemote({ url: 'http://127.0.0.1:9/other.git', fs });
    assert.unreachable('should refuse');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_CLONE_MISMATCH');
  }
  try {
    await openRemote({ url: 'http://127.0.0.1:9/other.git', fs, dir: '/other' });
    assert.unreachable('should fail');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_CLONE_FAILED');
    assert.match((e as Error).message, /^could not clone http:\/\/127\.0\.0\.1:9\/other\.git: /);
  }
  assert.not.ok(await fs.promises.stat('/other').then(() => true, () => false), 'no half clone left');
});

test.run();
