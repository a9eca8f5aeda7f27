/**
 * The web page on a ~100 MB model (issue 6's benchmark), in one run:
 *
 *   1. a GPT-like float32 safetensors v1 and a v2 with 5% of its tensors changed (dense noise),
 *      committed with `git theta add`;
 *   2. `git theta serve` over that repository and the page opened in headless Chromium: time from
 *      opening the page to the finished diff (clone + object download + Wasm statistics in the
 *      worker), and the LFS objects the server sent (from its --verbose request log) against the
 *      changed tensors' bytes;
 *   3. `git push` of v2 to a `git theta serve --allow-push` over a bare repository that already has
 *      v1: bytes the client sent (counted by a TCP relay in front of the server) against the
 *      changed tensors' bytes.
 *
 * Prints figures; asserts nothing. Timings on a shared machine are noisy.
 *
 *   node build/js/bench/web.js [--mb 100] [--runs 3] [--keep]
 */
import { gptLayout, type TensorLayout } from './gpt-layout.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeSafetensorsHeader } from '../src/formats/safetensors.ts';
import { parseMetadata, type ModelMetadata, type ObjectRef } from '../src/theta/metadata.ts';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const BIN = join(root, 'bin/git-theta.js');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) || def : def;
};
const MB = arg('--mb', 100);
const RUNS = arg('--runs', 3);
const keep = process.argv.includes('--keep');
const CHANGED_FRACTION = 0.05;

const work = mkdtempSync(join(tmpdir(), 'theta-bench-web-'));
const HOME = join(work, 'home');
mkdirSync(HOME);
const ENV: NodeJS.ProcessEnv = {
  ...process.env, HOME, XDG_CONFIG_HOME: join(HOME, '.config'), GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@git-theta.invalid', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@git-theta.invalid',
};

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, env: ENV, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.toString();
}
const theta = (cwd: string, ...args: string[]) => sh(process.execPath, [BIN, ...args], cwd);

/** Like sh, without blocking the event loop (the TCP relay below runs in this process). */
function shAsync(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err}`))));
  });
}

// ---- the model ----

type Layout = TensorLayout;
const layout = (totalBytes: number) => gptLayout(totalBytes, { d: 384, vocab: 8192, positions: 1024 });

/** xorshift32 → uniform floats in [-0.1, 0.1). */
function fill(a: Float32Array, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296 - 0.5) * 0.2;
  }
}

function writeModel(path: string, tensors: Layout[], data: (t: Layout, i: number) => Float32Array): void {
  const sorted = tensors.slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header = encodeSafetensorsHeader(sorted.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape })));
  const fd = openSync(path, 'w');
  writeSync(fd, header);
  sorted.forEach((t) => {
    const a = data(t, tensors.indexOf(t));
    writeSync(fd, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  });
  closeSync(fd);
}

// ---- servers ----

async function serve(repo: string, allowPush: boolean): Promise<{ child: ChildProcess; repoUrl: string; log: string[] }> {
  const child = spawn(process.execPath, [BIN, 'serve', repo, '--port', '0', '--verbose', ...(allowPush ? ['--allow-push'] : [])], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  let err = '';
  child.stderr!.on('data', (d) => {
    const lines = (err + d).split('\n');
    err = lines.pop()!;
    log.push(...lines);
  });
  let out = '';
  const repoUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no URL: ${out}`)), 15_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\S+\.git)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.once('close', (c) => { clearTimeout(timer); reject(new Error(`serve exited (${c}): ${out}`)); });
  });
  return { child, repoUrl, log };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once('close', () => done());
    child.kill('SIGTERM');
  });
}

/** A TCP relay that counts the bytes clients send through it. */
async function relay(targetPort: number): Promise<{ server: Server; port: number; sent: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let closedBytes = 0;
  const server = createServer((client) => {
    sockets.add(client);
    const upstream = connect(targetPort, '127.0.0.1');
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', () => { closedBytes += client.bytesRead; sockets.delete(client); upstream.destroy(); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    server, port,
    sent: () => closedBytes + [...sockets].reduce((s, c) => s + c.bytesRead, 0),
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

// ---- helpers ----

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

function objectsOf(m: ModelMetadata, name: string): ObjectRef[] {
  const out: ObjectRef[] = [];
  for (const step of m.tensors[name]!.chain) {
    for (const v of Object.values(step)) if (v && typeof v === 'object' && typeof (v as ObjectRef).oid === 'string') out.push(v as ObjectRef);
  }
  return out;
}

function objectSize(repo: string, oid: string): number {
  const p = join(repo, '.git/lfs/objects', oid.slice(0, 2), oid.slice(2, 4), oid);
  return existsSync(p) ? statSync(p).size : 0;
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install chromium (apt-get install -y chromium)`);

  // 1. the repository
  const tensors = layout(MB * 1e6);
  const nChanged = Math.max(1, Math.round(tensors.length * CHANGED_FRACTION));
  // spread the changed tensors over the model (every k-th tensor), so big and small ones change
  const step = tensors.length / nChanged;
  const changed = new Set(Array.from({ length: nChanged }, (_, i) => Math.floor(i * step + step / 2)));
  const tensorBytes = (t: Layout) => t.shape.reduce((a, b) => a * b, 1) * 4;
  const changedBytes = [...changed].reduce((s, i) => s + tensorBytes(tensors[i]!), 0);
  const totalBytes = tensors.reduce((s, t) => s + tensorBytes(t), 0);

  const repo = join(work, 'model');
  mkdirSync(repo);
  sh('git', ['init', '-q', '-b', 'main'], repo);
  theta(repo, 'install', '--local');
  theta(repo, 'track', '*.safetensors');
  sh('git', ['add', '.gitattributes'], repo);
  const file = join(repo, 'model.safetensors');
  const base = (t: Layout, i: number) => { const a = new Float32Array(tensorBytes(t) / 4); fill(a, 1000 + i); return a; };
  writeModel(file, tensors, base);
  theta(repo, 'add', 'model.safetensors');
  sh('git', ['commit', '-q', '-m', 'v1'], repo);
  writeModel(file, tensors, (t, i) => {
    const a = base(t, i);
    if (changed.has(i)) {
      const noise = new Float32Array(a.length);
      fill(noise, 7 + i);
      for (let j = 0; j < a.length; j++) a[j] = a[j]! + noise[j]! * 0.01;
    }
    return a;
  });
  theta(repo, 'add', 'model.safetensors');
  sh('git', ['commit', '-q', '-m', 'v2: 5% of tensors fine-tuned'], repo);

  const meta = (rev: string) => parseMetadata(spawnSync('git', ['cat-file', 'blob', `${rev}:model.safetensors`], { cwd: repo, env: ENV }).stdout);
  const m1 = meta('HEAD~1');
  const m2 = meta('HEAD');
  const changedNames = Object.keys(m2.tensors).filter((n) => m1.tensors[n]!.hash !== m2.tensors[n]!.hash);
  const needed = new Map<string, number>();
  for (const n of changedNames) for (const o of [...objectsOf(m1, n), ...objectsOf(m2, n)]) needed.set(o.oid, o.size);
  const newObjects = new Map<string, number>();
  for (const n of changedNames) for (const o of objectsOf(m2, n)) newObjects.set(o.oid, o.size);

  console.log(`model: ${tensors.length} float32 tensors, ${mb(totalBytes)}; v2 changes ${changedNames.length} tensors (${(100 * changedNames.length / tensors.length).toFixed(1)}%), ${mb(changedBytes)}`);

  // 2. the page
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const s = await serve(repo, false);
  const origin = new URL(s.repoUrl).origin;
  const times: number[] = [];
  try {
    for (let r = 0; r < RUNS; r++) {
      const context = await browser.newContext(); // a cold cache each time
      const page = await context.newPage();
      const logStart = s.log.length;
      const t0 = performance.now();
      await page.goto(`${origin}/?from=HEAD~1&to=HEAD`);
      await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: 120_000 });
      const ms = performance.now() - t0;
      const shown = await page.evaluate(() => ({
        state: document.body.dataset.state,
        error: document.getElementById('error')?.textContent,
        stats: (window as any).__thetaStats,
        summary: (window as any).__thetaDiff?.files?.[0]?.summary,
      }));
      await context.close();
      if (shown.state !== 'ready') throw new Error(`the page failed: ${shown.error}`);
      times.push(ms);
      const got = s.log.slice(logStart).map((l) => /^GET \/\S*\/info\/lfs\/objects\/([0-9a-f]{64}) 200 /.exec(l)?.[1]).filter((x): x is string => !!x);
      const gotBytes = got.reduce((sum, oid) => sum + objectSize(repo, oid), 0);
      const stray = got.filter((o) => !needed.has(o));
      const neededBytes = [...needed.values()].reduce((a, b) => a + b, 0);
      console.log(
        `page run ${r + 1}: open → diff shown ${(ms / 1000).toFixed(2)} s (worker diff ${(shown.stats.diffMs / 1000).toFixed(2)} s); ` +
        `summary ${JSON.stringify(shown.summary)}; LFS objects downloaded ${got.length} (${mb(gotBytes)}) = ` +
        `${(gotBytes / changedBytes).toFixed(2)}× the changed tensors' bytes (both versions of them: ${mb(neededBytes)}); objects of unchanged tensors: ${stray.length}`,
      );
    }
  } finally {
    await browser.close();
    await stop(s.child);
  }
  const sorted = times.slice().sort((a, b) => a - b);
  console.log(`page: median ${(sorted[Math.floor(sorted.length / 2)]! / 1000).toFixed(2)} s over ${RUNS} runs (goal ≤ 3 s)`);

  // 3. git push of v2 to a server that has v1
  const bare = join(work, 'remote.git');
  sh('git', ['init', '-q', '--bare', '-b', 'main', bare], work);
  const ps = await serve(bare, true);
  const port = Number(new URL(ps.repoUrl).port);
  const proxy = await relay(port);
  try {
    const url = ps.repoUrl.replace(`:${port}/`, `:${proxy.port}/`);
    sh('git', ['remote', 'add', 'bench', url], repo);
    await shAsync('git', ['push', '-q', 'bench', 'HEAD~1:refs/heads/main'], repo);
    const before = proxy.sent();
    const t0 = performance.now();
    await shAsync('git', ['push', '-q', 'bench', 'HEAD:refs/heads/main'], repo);
    const ms = performance.now() - t0;
    const sent = proxy.sent() - before;
    const newBytes = [...newObjects.values()].reduce((a, b) => a + b, 0);
    console.log(
      `git push of v2: ${mb(sent)} sent in ${(ms / 1000).toFixed(2)} s = ${(sent / changedBytes).toFixed(3)}× the changed tensors' bytes ` +
      `(${mb(changedBytes)}; their new objects ${mb(newBytes)}) (goal ≤ 1.1×)`,
    );
  } finally {
    await proxy.close();
    await stop(ps.child);
  }
}

main()
  .catch((e) => {
    console.error(`bench/web: ${(e as Error).message}`);
    process.exitCode = 1;
  })
  .finally(() => {
    if (!keep) rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  });
