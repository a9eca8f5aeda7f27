// The page remembers: clones and downloaded LFS objects stay in IndexedDB (LightningFS), so a
// second opening of the same repository in the same browser profile asks the server only for its
// refs (no git-upload-pack, no LFS batch, no object), a commit made on the server afterwards is
// fetched (only the new objects are downloaded), "Clear cache" forgets everything, and with the
// server gone the page still opens (its service worker) and shows the cached diff. Requests
// are counted at the server (`git theta serve`, in process, one log line per request).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startServer, type ThetaServer } from '../../src/node/serve/server.ts';
import { launchChromium } from './chromium.ts';
import { cleanup, fixturesDir, git, requireTool, thetaOk, thetaRepo } from './helpers.ts';

const test = suite('web page cache (IndexedDB)');
const HISTORY = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v2.safetensors'];

interface Shown {
  state: string;
  error: string;
  diff: unknown;
  cache: { persistent: boolean; source: string } | undefined;
  downloads: number | undefined;
  commits: number;
}

const state: { repo?: string; server?: ThetaServer; browser?: Browser; context?: BrowserContext; log: string[] } = { log: [] };

/** The requests the server answered since the last call, by kind. */
function takeRequests() {
  const lines = state.log.splice(0);
  const objects = lines.flatMap((l) => /^GET \/\S*\/info\/lfs\/objects\/([0-9a-f]{64}) 200 /.exec(l)?.[1] ?? []);
  return {
    objects,
    batches: lines.filter((l) => /^POST \/\S*\/info\/lfs\/objects\/batch /.test(l)).length,
    uploadPacks: lines.filter((l) => /^POST \/\S*\/git-upload-pack /.test(l)).length,
    refs: lines.filter((l) => /^GET \/\S*\/info\/refs\?service=git-upload-pack /.test(l)).length,
  };
}

async function open(): Promise<{ page: Page; shown: Shown }> {
  const page = await state.context!.newPage();
  await page.goto(`${state.server!.url}/`);
  return { page, shown: await shownWhenSettled(page) };
}

async function shownWhenSettled(page: Page): Promise<Shown> {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: 60_000 });
  return page.evaluate(() => ({
    state: document.body.dataset.state ?? '',
    error: document.getElementById('error')!.textContent ?? '',
    diff: (window as any).__thetaDiff,
    cache: (window as any).__thetaCache,
    downloads: (window as any).__thetaStats?.downloads.objects,
    commits: document.querySelectorAll('#commits li').length,
  }));
}

async function commit(file: string): Promise<void> {
  copyFileSync(join(fixturesDir, file), join(state.repo!, 'model.safetensors'));
  await thetaOk(state.repo!, 'add', 'model.safetensors');
  await git(state.repo!, 'commit', '-q', '-m', file);
}

// the page lists unchanged tensors too (behind a toggle): compare with --all
const cliDiff = async () => JSON.parse(await thetaOk(state.repo!, 'diff', 'HEAD~1', 'HEAD', '--json', '--all'));

test.before(async () => {
  requireTool('git-lfs', 'git-lfs');
  const repo = (state.repo = await thetaRepo());
  // what the page downloads and caches is under test: every tensor an object (none inline in the metadata)
  await git(repo, 'config', 'theta.inlineMax', '0');
  await git(repo, 'add', '.gitattributes');
  for (const f of HISTORY) await commit(f);
  state.server = await startServer({ repo, port: 0, log: (l) => state.log.push(l) });
  state.browser = await launchChromium();
  state.context = await state.browser.newContext(); // one profile: its IndexedDB outlives each page
});

test.after(async () => {
  await state.browser?.close().catch(() => {});
  await state.server?.close().catch(() => {}); // (the offline test closes it already)
  if (state.repo) cleanup(state.repo);
});

const seen = new Set<string>();

test('first opening clones and downloads the objects of the changed tensors', async () => {
  const { page, shown } = await open();
  await page.close();
  assert.is(shown.state, 'ready', shown.error);
  assert.equal(shown.cache, { persistent: true, source: 'cloned' });
  assert.equal(shown.diff, await cliDiff());
  const r = takeRequests();
  assert.is(r.uploadPacks, 1, 'one clone');
  assert.ok(r.objects.length > 0, 'objects were downloaded');
  assert.is(shown.downloads, r.objects.length);
  for (const o of r.objects) seen.add(o);
});

test('second opening: only the refs are asked for; no pack, no LFS batch, no object', async () => {
  const { page, shown } = await open();
  await page.close();
  assert.is(shown.state, 'ready', shown.error);
  assert.equal(shown.cache, { persistent: true, source: 'current' });
  assert.equal(shown.diff, await cliDiff(), 'the same diff, from the cache');
  const r = takeRequests();
  assert.is(r.refs, 1, 'the refs were listed');
  assert.is(r.uploadPacks, 0, 'no git fetch');
  assert.is(r.batches, 0, 'no LFS batch request');
  assert.equal(r.objects, [], 'no object downloaded again');
  assert.is(shown.downloads, 0);
});

test('a commit made on the server is fetched; only objects not cached are downloaded', async () => {
  await commit('history-v4-sparse.safetensors');
  const { page, shown } = await open();
  await page.close();
  assert.is(shown.state, 'ready', shown.error);
  assert.equal(shown.cache, { persistent: true, source: 'fetched' });
  assert.is(shown.commits, HISTORY.length + 1, 'the new commit is listed');
  assert.equal(shown.diff, await cliDiff(), 'HEAD is the new commit');
  const r = takeRequests();
  assert.is(r.uploadPacks, 1, 'one fetch');
  assert.ok(r.objects.length > 0, 'the new commit\'s objects were downloaded');
  for (const o of r.objects) assert.not.ok(seen.has(o), `object ${o} was downloaded again`);
  assert.is(new Set(r.objects).size, r.objects.length, 'each object once');
});

test('Clear cache forgets the clone and the objects: the next opening clones and downloads again', async () => {
  const { page } = await open();
  takeRequests();
  await Promise.all([page.waitForEvent('load'), page.click('#clear-cache')]); // the page reloads itself
  const shown = await shownWhenSettled(page);
  await page.close();
  assert.is(shown.state, 'ready', shown.error);
  assert.equal(shown.cache, { persistent: true, source: 'cloned' });
  const r = takeRequests();
  assert.is(r.uploadPacks, 1, 'cloned again');
  assert.ok(r.objects.length > 0, 'objects downloaded again');
});

test('with the server gone, the page opens from its service worker and shows the cached diff (offline)', async () => {
  const { page } = await open();
  assert.ok(await page.evaluate(() => navigator.serviceWorker.ready.then((r) => !!r.active)), 'the page registered its service worker');
  await page.close();
  const want = await cliDiff();
  const url = state.server!.url;
  await state.server!.close();
  const again = await state.context!.newPage();
  await again.goto(`${url}/`);
  const shown = await shownWhenSettled(again);
  await again.close();
  assert.is(shown.state, 'ready', shown.error);
  assert.is(shown.cache?.source, 'offline');
  assert.equal(shown.diff, want, 'the diff, from the cache alone');
});

test.run();
