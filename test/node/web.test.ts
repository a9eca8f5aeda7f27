// The web page end to end: a repository built here with the real git (`git theta add`, or plain
// git-lfs) is served by `git theta serve` (a child process), the page is opened in headless
// Chromium, and what it shows (window.__thetaDiff and the table rows' data attributes) must match
// `git theta diff <a> <b> --json` for the same revisions. LFS object downloads are counted on the
// server side, from the request log `serve --verbose` writes to stderr: no object of an unchanged
// tensor may be fetched. Screenshots go to test-output/.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { writeTfjs } from '../../src/formats/tfjs.ts';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { parseMetadata, type ModelMetadata, type ObjectRef } from '../../src/theta/metadata.ts';
import { cleanup, fixturesDir, git, repoRoot, requireTool, run, startServe, tempDir, thetaOk, thetaRepo } from './helpers.ts';

const test = suite('web page');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = join(repoRoot, 'test-output');
const HISTORY = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v2.safetensors', 'history-v3-lowrank.safetensors', 'history-v4-sparse.safetensors'];
const PAGE_TIMEOUT = 60_000;

interface Served {
  child: ChildProcess;
  origin: string;
  repoUrl: string;
  /** Request log lines (`GET /x.git/info/lfs/objects/<oid> 200 3ms`). */
  log: string[];
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
let browser: Browser | null = null;

async function serve(repo: string): Promise<Served> {
  const { child, url: repoUrl, log } = await startServe(repo, { timeoutMs: 15_000 });
  children.push(child);
  return { child, origin: new URL(repoUrl).origin, repoUrl, log };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, 5_000);
    child.once('close', () => { clearTimeout(timer); done(); });
    child.kill('SIGTERM');
  });
}

/** LFS object downloads the server answered, from its request log. */
function downloadedOids(s: Served): string[] {
  const out: string[] = [];
  for (const l of s.log) {
    const m = /^GET \/[^ ]*\/info\/lfs\/objects\/([0-9a-f]{64}) 200 /.exec(l);
    if (m) out.push(m[1]!);
  }
  return out;
}

async function chromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install chromium (apt-get install -y chromium)`);
  if (!browser) {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
      timeout: 30_000,
    });
  }
  return browser;
}

interface Shown {
  state: string;
  error: string;
  diff: { files: FileJson[] } | undefined;
  stats: { downloads: { objects: number; bytes: number } } | undefined;
  progress: string[];
  /** Table rows: path, then the data attributes. */
  rows: { path: string; name: string; status: string; l2?: string; relative?: string; maxabs?: string; cosine?: string }[];
  commits: number;
  models: { path: string; kind: string }[];
  branches: string[];
}

interface TensorJson { name: string; status: string; dtype: string; shape: number[]; update?: string; l2?: number | null; relative?: number | null; maxabs?: number | null; cosine?: number | null; old_dtype?: string; old_shape?: number[] }
interface FileJson { path: string; format: string; from: string; to: string; approx: boolean; summary: Record<string, number>; tensors: TensorJson[] }

/** Open the page, wait until it is ready or shows an error, and read what it shows. */
async function openPage(url: string, screenshot?: string): Promise<{ page: Page; shown: Shown; errors: string[] }> {
  const b = await chromium();
  const page = await b.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url, { timeout: 15_000 });
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: PAGE_TIMEOUT });
  if (screenshot) {
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, screenshot), fullPage: true });
  }
  const shown = await page.evaluate(() => ({
    state: document.body.dataset.state ?? '',
    error: document.getElementById('error')!.hidden ? '' : document.getElementById('error')!.textContent ?? '',
    diff: (window as any).__thetaDiff,
    stats: (window as any).__thetaStats,
    progress: (window as any).__thetaProgress ?? [],
    rows: [...document.querySelectorAll('article.file tbody tr')].map((tr) => ({
      path: (tr.closest('article') as HTMLElement).dataset.path!, ...(tr as HTMLElement).dataset,
    })) as Shown['rows'],
    commits: document.querySelectorAll('#commits li').length,
    models: [...document.querySelectorAll('#models li[data-path]')].map((li) => ({ path: (li as HTMLElement).dataset.path!, kind: (li as HTMLElement).dataset.kind! })),
    branches: [...document.querySelectorAll('#branch option')].map((o) => (o as HTMLOptionElement).value),
  }));
  return { page, shown, errors };
}

function close(a: number | null | undefined, b: number | null | undefined, what: string): void {
  if (a === null || a === undefined || b === null || b === undefined) {
    assert.is(a ?? null, b ?? null, what);
    return;
  }
  const tol = 1e-6 * Math.max(Math.abs(a), Math.abs(b)) + 1e-12;
  assert.ok(Math.abs(a - b) <= tol, `${what}: page ${a} vs CLI ${b}`);
}

const NUMS = ['l2', 'relative', 'maxabs', 'cosine'] as const;

/** The page's files against the CLI's: statuses and layouts exactly, numbers to 1e-6 relative. */
function compareFiles(page: FileJson[], cli: FileJson[], o: { update: boolean; from?: string; to?: string } = { update: true }): void {
  assert.equal(page.map((f) => f.path), cli.map((f) => f.path), 'the same files');
  for (let i = 0; i < cli.length; i++) {
    const p = page[i]!;
    const c = cli[i]!;
    assert.is(p.format, c.format);
    assert.equal(p.summary, c.summary, `${c.path}: summary`);
    assert.equal(p.tensors.map((t) => [t.name, t.status, t.dtype, t.shape.join('x')]), c.tensors.map((t) => [t.name, t.status, t.dtype, t.shape.join('x')]), `${c.path}: statuses`);
    for (let j = 0; j < c.tensors.length; j++) {
      const pt = p.tensors[j]!;
      const ct = c.tensors[j]!;
      if (o.update) assert.is(pt.update, ct.update, `${ct.name}: update type`);
      for (const k of NUMS) close(pt[k], ct[k], `${c.path} ${ct.name} ${k}`);
    }
  }
}

/** The table rows against the CLI's numbers (what a person sees is what the CLI says). */
function compareRows(rows: Shown['rows'], cli: FileJson[]): void {
  const want = cli.flatMap((f) => f.tensors.filter((t) => t.status !== 'unchanged').map((t) => ({ path: f.path, t })));
  assert.is(rows.length, want.length, 'one row per changed tensor');
  want.forEach(({ path, t }, i) => {
    const r = rows[i]!;
    assert.is(r.path, path);
    assert.is(r.name, t.name);
    assert.is(r.status, t.status);
    for (const k of NUMS) {
      const v = t[k];
      if (typeof v === 'number') close(Number(r[k]), v, `row ${t.name} ${k}`);
      else assert.is(r[k], undefined, `row ${t.name} ${k} is empty`);
    }
  });
}

async function cliDiff(repo: string, from: string, to: string): Promise<FileJson[]> {
  // the page lists unchanged tensors too (behind a toggle): compare with --all
  return (JSON.parse(await thetaOk(repo, 'diff', from, to, '--json', '--all')) as { files: FileJson[] }).files;
}

async function metadataAt(repo: string, rev: string, path: string): Promise<ModelMetadata> {
  const r = await run('git', ['cat-file', 'blob', `${rev}:${path}`], repo);
  assert.is(r.code, 0, r.stderr);
  return parseMetadata(r.out);
}

function tensorObjects(m: ModelMetadata, name: string): string[] {
  const out: string[] = [];
  for (const step of m.tensors[name]!.chain) {
    for (const v of Object.values(step)) if (v && typeof v === 'object' && typeof (v as ObjectRef).oid === 'string') out.push((v as ObjectRef).oid);
  }
  return out;
}

/** Objects a diff may need (changed tensors, both sides) and objects it must not fetch (unchanged tensors only). */
function expectedObjects(a: ModelMetadata, b: ModelMetadata): { needed: Set<string>; forbidden: Set<string> } {
  const needed = new Set<string>();
  const unchanged = new Set<string>();
  for (const name of Object.keys(b.tensors)) {
    const ea = a.tensors[name];
    const eb = b.tensors[name]!;
    if (!ea) continue;
    if (ea.hash === eb.hash) for (const o of [...tensorObjects(a, name), ...tensorObjects(b, name)]) unchanged.add(o);
    else for (const o of [...tensorObjects(a, name), ...tensorObjects(b, name)]) needed.add(o);
  }
  for (const o of [a.skeleton.oid, b.skeleton.oid]) unchanged.add(o);
  return { needed, forbidden: new Set([...unchanged].filter((o) => !needed.has(o))) };
}

async function buildThetaRepo(): Promise<string> {
  const repo = await thetaRepo();
  dirs.push(repo);
  // what the page downloads is under test: every tensor an object (none inline in the metadata)
  await git(repo, 'config', 'theta.inlineMax', '0');
  await git(repo, 'add', '.gitattributes');
  for (const [i, f] of HISTORY.entries()) {
    copyFileSync(join(fixturesDir, f), join(repo, 'model.safetensors'));
    await thetaOk(repo, 'add', 'model.safetensors');
    await git(repo, 'commit', '-q', '-m', `v${i}: ${f}`);
    if (i === 2) await git(repo, 'branch', 'experiment');
  }
  return repo;
}

test.after(async () => {
  await browser?.close().catch(() => {});
  browser = null;
  for (const c of children) await stop(c);
  for (const d of dirs) cleanup(d);
});

test('chromium is available (install chromium (apt-get install -y chromium))', async () => {
  await chromium();
});

test('theta repository: the page clones, lists, and diffs HEAD~1 → HEAD like git theta diff --json; only changed tensors are downloaded', async () => {
  requireTool('git-lfs', 'git-lfs');
  const repo = await buildThetaRepo();
  const s = await serve(repo);
  try {
    const { page, shown, errors } = await openPage(`${s.origin}/`, 'web-theta.png');
    await page.close();
    assert.equal(errors, [], 'no page errors');
    assert.is(shown.error, '', 'no error shown');
    assert.is(shown.state, 'ready');
    assert.is(shown.commits, HISTORY.length, 'every commit listed');
    assert.equal(shown.branches, ['experiment', 'main']);
    assert.equal(shown.models, [{ path: 'model.safetensors', kind: 'theta' }]);

    const cli = await cliDiff(repo, 'HEAD~1', 'HEAD');
    assert.ok(cli.length === 1 && cli[0]!.summary.modified > 0, 'the CLI sees a modified tensor');
    compareFiles(shown.diff!.files, cli);
    compareRows(shown.rows, cli);

    const { needed, forbidden } = expectedObjects(await metadataAt(repo, 'HEAD~1', 'model.safetensors'), await metadataAt(repo, 'HEAD', 'model.safetensors'));
    const got = downloadedOids(s);
    assert.ok(got.length > 0, 'objects of the changed tensors were downloaded');
    assert.equal(new Set(got), needed, 'exactly the objects of changed tensors');
    assert.is(got.length, new Set(got).size, 'no object downloaded twice');
    for (const o of got) assert.not.ok(forbidden.has(o), `object ${o} of an unchanged tensor was downloaded`);
    assert.is(shown.stats!.downloads.objects, got.length, 'the page counts what the server sent');
    assert.equal(shown.progress, ['clone', 'download'], 'the progress bar showed the clone, then the download');
  } finally {
    await stop(s.child);
  }
});

test('theta repository: revisions and path from the URL query; a bad revision is one clear line', async () => {
  const repo = await buildThetaRepo();
  const s = await serve(repo);
  try {
    const q = new URLSearchParams({ repo: s.repoUrl, from: 'HEAD~4', to: 'experiment', path: 'model.safetensors' });
    const { page, shown } = await openPage(`${s.origin}/?${q}`);
    assert.is(shown.state, 'ready', shown.error);
    const cli = await cliDiff(repo, 'HEAD~4', 'experiment');
    compareFiles(shown.diff!.files, cli);
    compareRows(shown.rows, cli);
    assert.is(shown.diff!.files[0]!.from, 'HEAD~4');
    // the chart has one bar per layer (0, 2, 4 for this MLP) and they carry the largest relative change
    const bars = await page.evaluate(() => [...document.querySelectorAll('svg.chart g[data-layer]')].map((g) => [(g as SVGGElement).dataset.layer, Number((g as SVGGElement).dataset.relative)]));
    const layers = [...new Set(cli[0]!.tensors.map((t) => t.name.split('.')[0]))];
    assert.equal(bars.map((b) => b[0]), layers);
    for (const [layer, rel] of bars) {
      const want = Math.max(0, ...cli[0]!.tensors.filter((t) => t.name.split('.')[0] === layer && t.status === 'modified').map((t) => t.relative ?? 0));
      close(rel as number, want, `bar ${layer}`);
    }
    await page.close();

    const bad = await openPage(`${s.origin}/?from=no-such-rev&to=HEAD`);
    await bad.page.close();
    assert.is(bad.shown.state, 'error');
    assert.match(bad.shown.error, /no-such-rev/);
    assert.not.match(bad.shown.error, /\n/);
    assert.is(bad.shown.rows.length, 0);
  } finally {
    await stop(s.child);
  }
});

test('plain git-lfs repository: the page diffs two versions of a safetensors file like git theta diff does for the same files', async () => {
  requireTool('git-lfs', 'git-lfs');
  const repo = tempDir('theta-web-lfs-');
  dirs.push(repo);
  await git(repo, 'init', '-q', '-b', 'main');
  await git(repo, 'lfs', 'install', '--local');
  await git(repo, 'lfs', 'track', '*.safetensors');
  await git(repo, 'add', '.gitattributes');
  const versions = ['history-v1.safetensors', 'history-v4-sparse.safetensors'];
  for (const f of versions) {
    copyFileSync(join(fixturesDir, f), join(repo, 'weights.safetensors'));
    await git(repo, 'add', 'weights.safetensors');
    await git(repo, 'commit', '-q', '-m', f);
  }
  const pointer = await run('git', ['cat-file', 'blob', 'HEAD:weights.safetensors'], repo);
  assert.match(pointer.stdout, /^version https:\/\/git-lfs\.github\.com\/spec\/v1/, 'git-lfs stored a pointer');
  const oids = ['HEAD~1', 'HEAD'].map(async (r) => /oid sha256:([0-9a-f]{64})/.exec((await run('git', ['cat-file', 'blob', `${r}:weights.safetensors`], repo)).stdout)![1]!);

  // the oracle: git theta diff of the same two files in a git-theta repository
  const oracle = await thetaRepo();
  dirs.push(oracle);
  for (const f of versions) {
    copyFileSync(join(fixturesDir, f), join(oracle, 'weights.safetensors'));
    await thetaOk(oracle, 'add', 'weights.safetensors');
    await git(oracle, 'commit', '-q', '-m', f);
  }
  const cli = await cliDiff(oracle, 'HEAD~1', 'HEAD');

  const s = await serve(repo);
  try {
    const { page, shown, errors } = await openPage(`${s.origin}/`, 'web-lfs.png');
    await page.close();
    assert.equal(errors, []);
    assert.is(shown.state, 'ready', shown.error);
    assert.equal(shown.models, [{ path: 'weights.safetensors', kind: 'lfs' }]);
    compareFiles(shown.diff!.files, cli, { update: false });
    compareRows(shown.rows, cli);
    // a git-lfs file is one object per version: both are needed, nothing else
    assert.equal(new Set(downloadedOids(s)), new Set(await Promise.all(oids)));
  } finally {
    await stop(s.child);
  }
});

test('TF.js model: the page lists the model under its model.json and diffs it weight by weight like git theta diff', async () => {
  const repo = await thetaRepo([]);
  dirs.push(repo);
  await git(repo, 'config', 'theta.inlineMax', '0'); // the page's object count is under test
  // three float32 weights in 1000-byte shards: 'b' spans two shards, and changes in v2
  const weights = (bump: number) => [
    { name: 'a', dtype: 'F32' as const, shape: [100], data: new Uint8Array(new Float32Array(100).map((_, i) => Math.sin(i)).buffer) },
    { name: 'b', dtype: 'F32' as const, shape: [20, 20], data: new Uint8Array(new Float32Array(400).map((_, i) => Math.cos(i) + (i % 50 === 0 ? bump : 0)).buffer) },
    { name: 'c', dtype: 'F32' as const, shape: [10], data: new Uint8Array(new Float32Array(10).fill(0.5).buffer) },
  ];
  const write = (bump: number) => writeTfjs(weights(bump), async (p) => {
    const parts: Uint8Array[] = [];
    return { async write(b) { parts.push(b.slice()); }, async close() { mkdirSync(join(repo, 'web'), { recursive: true }); writeFileSync(join(repo, 'web', p), Buffer.concat(parts)); } };
  }, { shardBytes: 1000 });
  await write(0);
  await thetaOk(repo, 'track', 'web');
  await thetaOk(repo, 'add', '.gitattributes', 'web');
  await git(repo, 'commit', '-q', '-m', 'v1');
  await write(0.25);
  await thetaOk(repo, 'add', 'web');
  await git(repo, 'commit', '-q', '-m', 'v2');
  const cli = await cliDiff(repo, 'HEAD~1', 'HEAD');
  assert.equal(cli.map((f) => [f.path, f.format, f.summary.modified, f.summary.unchanged]), [['web/model.json', 'tfjs', 1, 2]]);

  const s = await serve(repo);
  try {
    const { page, shown, errors } = await openPage(`${s.origin}/`, 'web-tfjs.png');
    await page.close();
    assert.equal(errors, []);
    assert.is(shown.state, 'ready', shown.error);
    assert.equal(shown.models, [{ path: 'web/model.json', kind: 'theta' }]);
    compareFiles(shown.diff!.files, cli);
    compareRows(shown.rows, cli);
    assert.ok(shown.stats!.downloads.objects > 0 && shown.stats!.downloads.bytes > 0, `the page counts objects and bytes: ${JSON.stringify(shown.stats!.downloads)}`);
    // exactly the objects of the changed weight's pieces, in both versions, each once
    const needed = new Set<string>();
    for (const rev of ['HEAD~1', 'HEAD']) {
      for (const shard of ['web/group1-shard1of3.bin', 'web/group1-shard2of3.bin']) {
        const m = await metadataAt(repo, rev, shard);
        for (const name of Object.keys(m.tensors).filter((n) => n.startsWith('b#'))) for (const o of tensorObjects(m, name)) needed.add(o);
      }
    }
    const got = downloadedOids(s);
    assert.equal(new Set(got), needed);
    assert.is(got.length, needed.size, 'no object downloaded twice');
  } finally {
    await stop(s.child);
  }
});

test.run();
