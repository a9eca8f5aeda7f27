#!/usr/bin/env node
// Runs the test suite in three runtimes: Node (shared + Node-only tests), Deno and headless
// Chromium (the shared tests), then checks that values the tests publish with `report` are
// identical across runtimes, and prints one closing line `N passed, N failed` for the whole run.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = process.env.THETA_FIXTURES ?? join(root, 'test/fixtures');
const only = process.argv.slice(2); // e.g. `npm test -- node deno`
const want = (r) => !only.length || only.includes(r);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

const results = []; // { runtime, total, passed, skipped, error?, reports: Map }

function parse(runtime, text, error) {
  const plain = stripAnsi(text);
  const total = /Total:\s+(\d+)/.exec(plain);
  const passed = /Passed:\s+(\d+)/.exec(plain);
  const skipped = /Skipped:\s+(\d+)/.exec(plain);
  const reports = new Map();
  for (const m of plain.matchAll(/@@report (\S+) (\S+)/g)) reports.set(m[1], m[2].trim());
  if (!total || !passed) error ??= `${runtime}: the suite did not finish (no uvu summary)`;
  results.push({
    runtime,
    total: total ? +total[1] : 0,
    passed: passed ? +passed[1] : 0,
    skipped: skipped ? +skipped[1] : 0,
    error,
    reports,
  });
}

function runProcess(runtime, cmd, args, env = {}) {
  return new Promise((resolve) => {
    process.stdout.write(`\n=== ${runtime} ===\n`);
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, THETA_FIXTURES: fixtures, ...env } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d); });
    child.on('error', (e) => { parse(runtime, out, `${runtime}: could not start ${cmd}: ${e.message}`); resolve(); });
    child.on('close', (code) => {
      parse(runtime, out, code === 0 ? undefined : `${runtime}: exited with code ${code}`);
      resolve();
    });
  });
}

const MIME = { '.js': 'text/javascript', '.map': 'application/json', '.html': 'text/html', '.json': 'application/json' };

async function runChromium() {
  process.stdout.write('\n=== chromium ===\n');
  if (!existsSync(CHROMIUM)) {
    parse('chromium', '', `chromium: ${CHROMIUM} not found; install it with: apt-get install -y chromium`);
    return;
  }
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    let file;
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><meta charset="utf-8"><title>git-theta tests</title><script type="module" src="/web/tests.js"></script>');
      return;
    } else if (url.pathname.startsWith('/fixtures/')) {
      file = join(fixtures, normalize(decodeURIComponent(url.pathname.slice('/fixtures/'.length))).replace(/^(\.\.[/\\])+/, ''));
    } else if (url.pathname.startsWith('/web/')) {
      file = join(root, 'build/web', normalize(url.pathname.slice('/web/'.length)).replace(/^(\.\.[/\\])+/, ''));
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': MIME[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  let browser;
  let out = '';
  try {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    const page = await browser.newPage();
    let finish;
    const finished = new Promise((r) => (finish = r));
    page.on('console', (msg) => {
      const t = msg.text();
      out += t + '\n';
      process.stdout.write(t + '\n');
      if (/Duration:/.test(stripAnsi(t))) finish();
    });
    page.on('pageerror', (e) => {
      out += `page error: ${e.message}\n`;
      process.stdout.write(`page error: ${e.message}\n`);
      finish();
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    const timeout = setTimeout(finish, 10 * 60 * 1000);
    await finished;
    clearTimeout(timeout);
    const failed = /Total:\s+(\d+)[\s\S]*Passed:\s+(\d+)/.exec(stripAnsi(out));
    parse('chromium', out, failed && failed[1] !== failed[2] ? 'chromium: some tests failed' : undefined);
  } catch (e) {
    parse('chromium', out, `chromium: ${e.message.split('\n')[0]}`);
  } finally {
    await browser?.close();
    server.close();
  }
}

if (want('node')) await runProcess('node', process.execPath, ['build/js/test/node/entry.js']);
// git-lfs's test server for the Deno LFS rows, found and started as the Node suite does (test/node/lfs-test-server.ts)
async function lfsTestServer() {
  let mod;
  try {
    mod = await import('../build/js/test/node/lfs-test-server.js');
  } catch (e) {
    return { env: { THETA_LFS_TEST_ERROR: `could not load build/js/test/node/lfs-test-server.js (run node scripts/build.mjs): ${e.message}` } };
  }
  const where = mod.locateLfsTestServer();
  if (!where.dir) return { env: { THETA_LFS_TEST_SKIP: where.reason } };
  try {
    const server = await mod.startLfsTestServer(where.dir);
    return { server, mod, env: { THETA_LFS_TEST_URL: server.url, THETA_LFS_TEST_STATE: server.stateDir } };
  } catch (e) {
    return { mod, env: { THETA_LFS_TEST_ERROR: e.message } };
  }
}

if (want('deno')) {
  const deno = join(root, 'node_modules/.bin/deno');
  const lfs = await lfsTestServer();
  try {
    await runProcess('deno', deno, ['run', '--allow-read', '--allow-env', '--allow-net=127.0.0.1', '--no-prompt', 'test/deno/entry.ts'], lfs.env);
  } finally {
    await lfs.server?.stop();
    lfs.mod?.cleanupLfsTestServerBuild();
  }
}
if (want('chromium')) await runChromium();

// values the tests published must agree across runtimes (identical kernel bytes, etc.)
let crossPassed = 0;
let crossFailed = 0;
// (only meaningful when more than one runtime ran)
const keys = new Set(results.length > 1 ? results.flatMap((r) => [...r.reports.keys()]) : []);
for (const key of [...keys].sort()) {
  const seen = results.filter((r) => r.reports.has(key));
  const values = new Set(seen.map((r) => r.reports.get(key)));
  if (seen.length === results.length && values.size === 1) {
    crossPassed++;
  } else {
    crossFailed++;
    console.log(`cross-runtime mismatch for '${key}': ` + results.map((r) => `${r.runtime}=${r.reports.get(key) ?? '(missing)'}`).join(' '));
  }
}

let passed = crossPassed;
let failed = crossFailed;
console.log('\n=== summary ===');
for (const r of results) {
  const f = r.total - r.passed;
  passed += r.passed;
  failed += f + (r.error && f === 0 ? 1 : 0);
  console.log(`${r.runtime}: ${r.passed} passed, ${f} failed${r.skipped ? `, ${r.skipped} skipped` : ''}${r.error ? `  (${r.error})` : ''}`);
}
if (results.length > 1) console.log(`cross-runtime: ${crossPassed} passed, ${crossFailed} failed`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
