// Start-up (issue 18): the commands git runs per file or per push, and --version, load only what
// they need. Checked by the modules each process really loads (a Node loader hook records every
// module URL), never by timing: bench/startup.ts times them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, cleanup, fixturesDir, git, repoRoot, run, sha256, tempDir, theta, thetaRepo } from './helpers.ts';

/** A loader hook that appends every loaded module's URL to <dir>/<pid>.modules, and the argv to <pid>.argv. */
function moduleLog(): { dir: string; nodeOptions: string } {
  const dir = tempDir('theta-modules-');
  writeFileSync(join(dir, 'hooks.mjs'), [
    "import { appendFileSync } from 'node:fs';",
    'let log;',
    'export function initialize(data) { log = data.log; }',
    'export async function load(url, context, next) { appendFileSync(log, url + "\\n"); return next(url, context); }',
  ].join('\n'));
  writeFileSync(join(dir, 'register.mjs'), [
    "import { register } from 'node:module';",
    "import { writeFileSync } from 'node:fs';",
    `const base = ${JSON.stringify(dir)} + '/' + process.pid;`,
    "writeFileSync(base + '.argv', JSON.stringify(process.argv.slice(2)));",
    "register('./hooks.mjs', import.meta.url, { data: { log: base + '.modules' } });",
  ].join('\n'));
  return { dir, nodeOptions: `--import ${pathToFileURL(join(dir, 'register.mjs')).href}` };
}

/**
 * The source modules each logged git-theta process loaded, by its first argument: `src/...ts`
 * paths (a chunk of the CLI's bundle stands for the sources build/cli-meta.json lists in it; an
 * unbundled build/js/src/X.js for src/X.ts) and `node_modules/<package>`.
 */
function loadedBy(dir: string): Map<string, string[]> {
  const meta = JSON.parse(readFileSync(join(repoRoot, 'build/cli-meta.json'), 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  const sources = (url: string): string[] => {
    const rel = url.replace(pathToFileURL(repoRoot).href + '/', '');
    const chunk = meta.outputs[rel];
    if (chunk) return Object.keys(chunk.inputs);
    const built = /^build\/js\/(src\/.*)\.js$/.exec(rel);
    if (built) return [`${built[1]}.ts`];
    return [rel.replace(/^node_modules\/((?:@[^/]+\/)?[^/]+)\/.*$/, 'node_modules/$1')];
  };
  const out = new Map<string, string[]>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.argv'))) {
    const argv = JSON.parse(readFileSync(join(dir, f), 'utf8')) as string[];
    const mods = join(dir, f.replace(/\.argv$/, '.modules'));
    const list = existsSync(mods) ? readFileSync(mods, 'utf8').split('\n').filter(Boolean) : [];
    out.set(argv[0] ?? '', [...(out.get(argv[0] ?? '') ?? []), ...list.flatMap(sources)]);
  }
  return out;
}

/** Forget what earlier processes loaded (the hook files stay). */
function clearLog(dir: string): void {
  for (const f of readdirSync(dir)) if (f.endsWith('.argv') || f.endsWith('.modules')) rmSync(join(dir, f));
}

/** Fails naming every module of `mods` that matches one of `forbidden`. */
function assertNone(what: string, mods: string[], forbidden: (string | RegExp)[]): void {
  assert.ok(mods.includes('src/node/cli/cli.ts'), `${what}: the loader hook did not see the CLI load (is module.register available? Node >= 20.6 is needed)`);
  const bad = mods.filter((m) => forbidden.some((f) => (typeof f === 'string' ? m === f : f.test(m))));
  assert.equal(bad, [], `${what} loaded ${bad.join(', ')}`);
}

// what no per-file command needs: commander and the other commands' modules, isomorphic-git,
// undici, the LFS transfer code, the Python tool's msgpack reader, and (on a safetensors file)
// the deflate libraries of the zip formats (src/formats/deflate-libs.ts imports them on first use),
// and the portable SHA-256 (the CLI's is node:crypto's: src/node/files/sha256-cli-shim.ts)
const HEAVY = ['node_modules/commander', 'node_modules/isomorphic-git', 'node_modules/undici', 'node_modules/@msgpack', 'src/node/lfs/lfs-node.ts', 'src/repo/model-blob.ts', 'node_modules/fflate', 'node_modules/pako', 'node_modules/@noble/hashes'];
const OTHER_COMMANDS = (own: string[]) => new RegExp(`^src/node/cli/commands/(?!(${own.join('|')})\\.ts$)`);

function smallSafetensors(): Buffer {
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, Buffer.from(new Float32Array([1, 2, 3, 4, 5, 6.5]).buffer)]);
}

test('start-up: --version prints the version and loads neither commander nor any format', async () => {
  const log = moduleLog();
  try {
    for (const flag of ['--version', '-V']) {
      const r = await run(process.execPath, [BIN, flag], log.dir, { env: { NODE_OPTIONS: log.nodeOptions } });
      assert.is(r.code, 0);
      assert.is(r.stdout, JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version + '\n');
      assertNone(flag, loadedBy(log.dir).get(flag)!, [...HEAVY, /^src\/formats\//, /^src\/node\/cli\/commands\//, /kernels-wasm/]);
    }
  } finally {
    cleanup(log.dir);
  }
});

test('start-up: textconv, the filter process, the merge driver and pre-push load no commander, command table, isomorphic-git, undici or msgpack', async () => {
  const dir = await thetaRepo();
  const log = moduleLog();
  try {
    const model = smallSafetensors();
    writeFileSync(join(dir, 'm.safetensors'), model);
    await git(dir, 'add', 'm.safetensors', '.gitattributes');
    await git(dir, 'commit', '-q', '-m', 'v1');
    const meta = join(dir, '.git', 'meta');
    writeFileSync(meta, await git(dir, 'cat-file', 'blob', 'HEAD:m.safetensors'));
    rmSync(join(dir, 'm.safetensors'));
    const env = { NODE_OPTIONS: log.nodeOptions };

    // the filter process, started by a plain checkout: its smudge writes the same bytes back
    const co = await run('git', ['checkout', '--', 'm.safetensors'], dir, { env });
    assert.is(co.code, 0, co.stderr);
    assert.is(sha256(readFileSync(join(dir, 'm.safetensors'))), sha256(model));
    const filter = loadedBy(log.dir).get('filter-process');
    assert.ok(filter, 'git ran the filter process under the loader hook');
    assertNone('filter-process', filter!, [...HEAVY, OTHER_COMMANDS(['filter', 'add', 'install'])]);
    clearLog(log.dir);

    // textconv of the checkpoint and of its metadata: the same report as before, from the formats alone
    const tc = await run(process.execPath, [BIN, 'textconv', 'm.safetensors'], dir, { env });
    assert.is(tc.code, 0, tc.stderr);
    assert.match(tc.stdout, /^safetensors checkpoint, 1 tensors, 24 bytes of tensor data\nw  F32\[2,3\]  mean /);
    const tcm = await run(process.execPath, [BIN, 'textconv', meta], dir, { env });
    assert.is(tcm.code, 0, tcm.stderr);
    assert.match(tcm.stdout, /\bw\b.*F32/);
    assertNone('textconv', loadedBy(log.dir).get('textconv')!, [
      ...HEAVY, OTHER_COMMANDS(['textconv']), 'src/updates/index.ts', 'src/merges/index.ts', /^src\/interop\/python-git-theta\/(objects|convert|summary)\.ts$/,
      'node:crypto', // (~4 ms to load; fs-source.ts imports it when it writes a file)
    ]);
    clearLog(log.dir);

    // the merge driver on three equal sides, and pre-push with nothing to push
    for (const s of ['base', 'ours', 'theirs']) copyFileSync(meta, join(dir, '.git', s));
    const md = await run(process.execPath, [BIN, 'merge-driver', ...['base', 'ours', 'theirs'].map((s) => join(dir, '.git', s)), 'm.safetensors'], dir, { env });
    assert.is(md.code, 0, md.stderr);
    assert.is(readFileSync(join(dir, '.git', 'ours'), 'utf8'), readFileSync(meta, 'utf8'));
    assertNone('merge-driver', loadedBy(log.dir).get('merge-driver')!, [...HEAVY, OTHER_COMMANDS(['merge'])]);
    const pp = await run(process.execPath, [BIN, 'pre-push', 'origin', join(dir, 'nowhere')], dir, { env, input: '' });
    assert.is(pp.code, 0, pp.stderr);
    assertNone('pre-push', loadedBy(log.dir).get('pre-push')!, ['node_modules/commander', 'node_modules/isomorphic-git', 'node_modules/undici', 'node_modules/@noble/hashes', OTHER_COMMANDS(['hooks', 'install'])]);
  } finally {
    cleanup(dir);
    cleanup(log.dir);
  }
});

test('start-up: textconv of a compressed npz imports the deflate libraries when it first needs them', async () => {
  const log = moduleLog();
  try {
    // a fresh process whose first deflate use is numpy's read (inflate, then zlib's and fflate's re-deflation checks)
    const r = await run(process.execPath, [BIN, 'textconv', join(fixturesDir, 'arrays-compressed.npz')], log.dir, { env: { NODE_OPTIONS: log.nodeOptions } });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^npz checkpoint, 3 tensors, 3152 bytes of tensor data\nb  I64\[30\]  mean 14\.50 /);
    const mods = loadedBy(log.dir).get('textconv')!;
    for (const lib of ['node_modules/fflate', 'node_modules/pako']) assert.ok(mods.includes(lib), `textconv of a compressed npz loaded ${lib}`);
  } finally {
    cleanup(log.dir);
  }
});

test('start-up: other argument shapes still go through commander (its usage errors and help)', async () => {
  const log = moduleLog();
  try {
    const r = await run(process.execPath, [BIN, 'textconv'], log.dir, { env: { NODE_OPTIONS: log.nodeOptions } });
    assert.is(r.code, 1);
    assert.match(r.stderr, /missing required argument 'file'/);
    assert.ok(loadedBy(log.dir).get('textconv')!.includes('node_modules/commander'), 'commander answered');
    const h = await theta(log.dir, ['textconv', '--help']);
    assert.is(h.code, 0);
    assert.match(h.stdout, /Usage: git-theta textconv \[options\] <file>/);
  } finally {
    cleanup(log.dir);
  }
});

test('start-up: textconv of a plug-in format loads the plug-in (and the registries it is handed)', async () => {
  const dir = await thetaRepo(['*.toy']);
  try {
    await git(dir, 'config', '--add', 'theta.plugin', join(repoRoot, 'test/node/fixtures/toy-plugin.mjs'));
    const header = [{ name: 't0', dtype: 'F32', shape: [2] }];
    writeFileSync(join(dir, 'w.toy'), Buffer.concat([Buffer.from('TOY1\n' + JSON.stringify(header) + '\n'), Buffer.from(new Float32Array([1, 3]).buffer)]));
    const r = await theta(dir, ['textconv', 'w.toy']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^toy checkpoint, 1 tensors, 8 bytes of tensor data\nt0  F32\[2\]  mean 2\.000  std 1\.000 /);
  } finally {
    cleanup(dir);
  }
});

test.run();
