// The package as a user meets it: `npm pack`, then the tarball installed into a fresh temporary
// project that cannot see this checkout's src/. From that install, a Node script, a Deno script
// (`npm:git-theta`, nodeModulesDir "manual") and an esbuild-bundled browser app run in Chromium each
// diff two revisions served by `git theta serve` and must print the same JSON as
// `git theta diff --json`. The CLI itself also runs under Deno (`deno run -A npm:git-theta ...`):
// inspect, diff and serve (the Deno script diffs against the Deno-run server). One pack and one
// install serve every check.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startServer, type ThetaServer } from '../../src/node/serve/server.ts';
import { launchChromium } from './chromium.ts';
import { cleanup, ENV, fixturesDir, git, repoRoot, requireTool, run, tempDir, thetaOk, thetaRepo } from './helpers.ts';

const test = suite('package install (npm pack → Node, Deno, esbuild + Chromium)');
const DENO = join(repoRoot, 'node_modules/.bin/deno');
const HISTORY = ['history-v0.safetensors', 'history-v1.safetensors', 'history-v4-sparse.safetensors'];
/** npm and Deno with the real HOME (the npm cache: the install needs no download that `npm ci` made already). */
const USER_ENV = { ...ENV, HOME: process.env.HOME ?? ENV.HOME, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' };

const state: { dirs: string[]; repo?: string; project?: string; server?: ThetaServer; denoServe?: ChildProcess; browser?: Browser; cli?: string } = { dirs: [] };

// What a user writes (the README shows the same lines).
const NODE_SCRIPT = `import { openRemote, diffRevisions } from 'git-theta';

const [url, from, to] = process.argv.slice(2);
const repo = await openRemote({ url }); // clones into memory; tensor objects come from the LFS server
console.log(JSON.stringify(await diffRevisions({ ...repo, from, to })));
`;
const DENO_SCRIPT = `import { openRemote, diffRevisions, type RevisionsDiff } from 'npm:git-theta';

const [url, from, to] = Deno.args;
const repo = await openRemote({ url });
const diff: RevisionsDiff = await diffRevisions({ ...repo, from, to });
console.log(JSON.stringify(diff));
`;
const BROWSER_APP = `import { openRemote, diffRevisions } from 'git-theta';

const q = new URLSearchParams(location.search);
const out = document.getElementById('out');
try {
  const repo = await openRemote({ url: q.get('repo') });
  out.textContent = JSON.stringify(await diffRevisions({ ...repo, from: q.get('from'), to: q.get('to') }));
  document.body.dataset.state = 'done';
} catch (e) {
  out.textContent = e.message;
  document.body.dataset.state = 'error';
}
`;

async function npm(cwd: string, ...args: string[]): Promise<string> {
  const r = await run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], cwd, { env: USER_ENV });
  assert.is(r.code, 0, `npm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function deno(cwd: string, args: string[]) {
  return run(DENO, args, cwd, { env: USER_ENV });
}

/** `deno run -A npm:git-theta serve` as a child; resolves to the repository URL it prints. */
function denoServe(project: string, repo: string): Promise<string> {
  const child = spawn(DENO, ['run', '-A', '--config', join(project, 'deno.json'), 'npm:git-theta', 'serve', repo, '--port', '0'], { cwd: project, env: USER_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  state.denoServe = child;
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`deno serve printed no URL in 60 s: ${out}`)), 60_000);
    const seen = (d: Buffer) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\S+\.git)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', (d) => (out += d));
    child.once('close', (code) => { clearTimeout(timer); reject(new Error(`deno serve exited (${code}): ${out}`)); });
  });
}

test.before(async () => {
  requireTool('npm', 'npm');
  const repo = (state.repo = await thetaRepo());
  state.dirs.push(repo);
  await git(repo, 'add', '.gitattributes');
  for (const f of HISTORY) {
    copyFileSync(join(fixturesDir, f), join(repo, 'model.safetensors'));
    await thetaOk(repo, 'add', 'model.safetensors');
    await git(repo, 'commit', '-q', '-m', f);
  }
  state.cli = await thetaOk(repo, 'diff', 'HEAD~1', 'HEAD', '--json');

  // one pack (no prepare: build/ is current, the suite builds first) and one install
  const packs = tempDir('theta-pack-');
  state.dirs.push(packs);
  await npm(repoRoot, 'pack', '--ignore-scripts', '--pack-destination', packs);
  const tarball = readdirSync(packs).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote a tarball');
  const project = (state.project = tempDir('theta-user-'));
  state.dirs.push(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'theta-user-app', private: true, type: 'module' }));
  writeFileSync(join(project, 'deno.json'), JSON.stringify({ nodeModulesDir: 'manual' }));
  await npm(project, 'install', '--prefer-offline', join(packs, tarball!));
  mkdirSync(join(project, 'web'), { recursive: true });
  state.server = await startServer({ repo, port: 0, webDir: join(project, 'web') });
});

test.after(async () => {
  await state.browser?.close().catch(() => {});
  await state.server?.close();
  state.denoServe?.kill('SIGTERM');
  for (const d of state.dirs) cleanup(d);
});

test('the tarball carries the built JS, its types and the embedded kernels, not the tests or the sources of the build', () => {
  const pkg = join(state.project!, 'node_modules/git-theta');
  for (const f of ['build/js/src/index.js', 'build/js/src/index.d.ts', 'build/js/src/node/index.js', 'build/js/build/gen/kernels-wasm.js', 'bin/git-theta.js', 'build/web/index.html', 'build/web/worker.js']) {
    assert.ok(existsSync(join(pkg, f)), `${f} is in the package`);
  }
  for (const f of ['build/js/test', 'build/web/tests.js', 'assembly', 'build/wasm']) assert.not.ok(existsSync(join(pkg, f)), `${f} is not in the package`);
});

test('Node: a script importing git-theta prints the same JSON as git theta diff --json', async () => {
  const { project, server } = state as Required<typeof state>;
  writeFileSync(join(project, 'diff.mjs'), NODE_SCRIPT);
  const r = await run(process.execPath, ['diff.mjs', server.repoUrl, 'HEAD~1', 'HEAD'], project);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, state.cli);
  assert.ok(JSON.parse(r.stdout).files[0].summary.modified > 0, 'a tensor changed');
});

test('Deno: npm:git-theta type-checks, and the script prints the same JSON against a Deno-run git theta serve', async () => {
  const { project, repo } = state as Required<typeof state>;
  writeFileSync(join(project, 'diff.ts'), DENO_SCRIPT);
  const checked = await deno(project, ['check', 'diff.ts']);
  assert.is(checked.code, 0, `deno check: ${checked.stderr}`);
  const url = await denoServe(project, repo);
  const r = await deno(project, ['run', '--allow-net', '--allow-env=IGNORE_TEST_WIN32', 'diff.ts', url, 'HEAD~1', 'HEAD']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, state.cli);
});

test('Deno: the CLI (deno run -A npm:git-theta) inspects and diffs like Node', async () => {
  const { project, repo } = state as Required<typeof state>;
  const cli = ['run', '-A', '--config', join(project, 'deno.json'), 'npm:git-theta'];
  const diff = await deno(repo, [...cli, 'diff', 'HEAD~1', 'HEAD', '--json']);
  assert.is(diff.code, 0, diff.stderr);
  assert.is(diff.stdout, state.cli);
  const file = join(fixturesDir, 'model.safetensors');
  const inspect = await deno(repo, [...cli, 'inspect', file, '--json']);
  assert.is(inspect.code, 0, inspect.stderr);
  assert.is(inspect.stdout, await thetaOk(repo, 'inspect', file, '--json'));
});

test('Deno: after git theta install under Deno, git runs the filter through Deno: add, commit and checkout round-trip', async () => {
  const { project } = state as Required<typeof state>;
  const cli = ['run', '-A', '--config', join(project, 'deno.json'), 'npm:git-theta'];
  const repo = tempDir('theta-deno-git-');
  state.dirs.push(repo);
  await git(repo, 'init', '-q', '-b', 'main');
  for (const args of [['install', '--local'], ['track', '*.safetensors']]) {
    const r = await deno(repo, [...cli, ...args]);
    assert.is(r.code, 0, r.stderr);
  }
  assert.match(await git(repo, 'config', 'filter.theta.process'), / run -A \S*\/bin\/git-theta\.js filter-process/);
  await git(repo, 'add', '.gitattributes');
  for (const f of ['history-v0.safetensors', 'history-v1.safetensors']) {
    copyFileSync(join(fixturesDir, f), join(repo, 'model.safetensors'));
    await git(repo, 'add', 'model.safetensors');
    await git(repo, 'commit', '-q', '-m', f);
  }
  assert.match(await git(repo, 'cat-file', 'blob', 'HEAD:model.safetensors'), /^\{\n "git-theta": [1-3],\n "format": "safetensors",/, 'git stored git-theta metadata');
  rmSync(join(repo, 'model.safetensors'));
  await git(repo, 'checkout', 'HEAD~1', '--', 'model.safetensors');
  assert.ok(readFileSync(join(repo, 'model.safetensors')).equals(readFileSync(join(fixturesDir, 'history-v0.safetensors'))), 'byte-identical checkout');
  const diff = await deno(repo, [...cli, 'diff', 'HEAD~1', 'HEAD', '--json']);
  assert.is(diff.code, 0, diff.stderr);
  assert.is(diff.stdout, await thetaOk(repo, 'diff', 'HEAD~1', 'HEAD', '--json'), 'Node reads what Deno wrote');
});

test('browser: an app bundled by esbuild from the install clones and diffs in Chromium, kernels included', async () => {
  const { project, server } = state as Required<typeof state>;
  writeFileSync(join(project, 'app.js'), BROWSER_APP);
  writeFileSync(join(project, 'web/index.html'), '<!doctype html><meta charset="utf-8"><title>diff</title><body data-state="loading"><pre id="out"></pre><script type="module" src="app.js"></script>');
  const esbuild = await import('esbuild');
  await esbuild.build({
    absWorkingDir: project, entryPoints: ['app.js'], outfile: 'web/app.js',
    bundle: true, format: 'esm', platform: 'browser', target: ['chrome100', 'firefox100', 'safari16'], minify: true, logLevel: 'error',
  });
  const size = statSync(join(project, 'web/app.js')).size;
  assert.ok(size < 1_000_000, `the minified app is ${size} bytes (wasm kernels embedded); keep it under 1 MB`);

  state.browser = await launchChromium();
  const page = await state.browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const q = new URLSearchParams({ repo: server.repoUrl, from: 'HEAD~1', to: 'HEAD' });
  await page.goto(`${server.url}/?${q}`);
  await page.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 60_000 });
  const [stateShown, out] = await page.evaluate(() => [document.body.dataset.state, document.getElementById('out')!.textContent]);
  assert.equal(errors, []);
  assert.is(stateShown, 'done', out ?? '');
  assert.is(`${out}\n`, state.cli);
});

test.run();
