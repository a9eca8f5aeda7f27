// The filter process driven by the real git binary: add, commit, delete, checkout, failures.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const test = suite('filter process (real git)');
const here = dirname(fileURLToPath(import.meta.url));
const TOY = join(here, 'fixtures', 'toy-filter.js');
const MAGIC = Buffer.from('TOY1\n');

let repo = '';
let home = '';
let logFile = '';

function git(args: string[], opts: { env?: Record<string, string>; allowFail?: boolean } = {}) {
  const r = spawnSync('git', args, {
    cwd: repo,
    env: { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1', TOY_FILTER_LOG: logFile, ...opts.env },
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`could not run git (${r.error.message}); install it with: apt-get install -y git`);
  if (r.status !== 0 && !opts.allowFail) throw new Error(`git ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { status: r.status, stdout: r.stdout as Buffer, stderr: String(r.stderr) };
}

/** The filter log since the last call: process starts and requests. */
function takeLog(): string[] {
  const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [];
  unlinkSync(logFile);
  writeFileSync(logFile, '');
  return lines;
}

function cleaned(b: Buffer): Buffer {
  const out = Buffer.alloc(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b[i]! ^ 0x5a;
  return Buffer.concat([MAGIC, out]);
}

function random(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

const files: Record<string, Buffer> = {
  'a.toy': Buffer.from('hello, filter\n'),
  'big.toy': random(1_500_000 + 17, 11),
  'empty.toy': Buffer.alloc(0),
  'sub dir/with=equals.toy': Buffer.from('x=y\n'.repeat(1000)),
  'plain.txt': Buffer.from('not filtered\n'),
};

test.before(() => {
  const v = spawnSync('git', ['--version']);
  if (v.error) throw new Error('these tests need git on PATH; install it with: apt-get install -y git');
  if (!existsSync(TOY)) throw new Error(`${TOY} is missing: run npm run build first`);
  home = mkdtempSync(join(tmpdir(), 'theta-filter-home-'));
  repo = mkdtempSync(join(tmpdir(), 'theta-filter-repo-'));
  logFile = join(home, 'toy.log');
  writeFileSync(logFile, '');
  git(['init', '-q', '-b', 'main']);
  git(['config', 'user.email', 'test@example.com']);
  git(['config', 'user.name', 'Test']);
  git(['config', 'filter.toy.process', `"${process.execPath}" "${TOY}"`]);
  git(['config', 'filter.toy.required', 'true']);
  writeFileSync(join(repo, '.gitattributes'), '*.toy filter=toy\n');
});

test.after(() => {
  if (repo) rmSync(repo, { recursive: true, force: true });
  if (home) rmSync(home, { recursive: true, force: true });
});

test('git add + commit cleans every file through one process; the blobs are the cleaned form', () => {
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(dirname(join(repo, name)), { recursive: true });
    writeFileSync(join(repo, name), body);
  }
  git(['add', '.']);
  const log = takeLog();
  git(['commit', '-q', '-m', 'toys']); // (commit may start its own process to re-check racily clean files)
  const starts = log.filter((l) => l.startsWith('start '));
  assert.is(starts.length, 1, `one filter process for git add (log: ${log.join(' | ')})`);
  const pid = starts[0]!.split(' ')[1];
  const cleans = log.filter((l) => l.includes(' clean '));
  assert.equal(cleans.map((l) => l.split(' ')[0]), cleans.map(() => pid), 'all cleans by that process');
  assert.equal(cleans.map((l) => l.slice(l.indexOf('clean ') + 6)).sort(), Object.keys(files).filter((f) => f.endsWith('.toy')).sort());
  for (const [name, body] of Object.entries(files)) {
    const blob = git(['cat-file', '-p', `HEAD:${name}`]).stdout;
    const want = name.endsWith('.toy') ? cleaned(body) : body;
    assert.ok(blob.equals(want), `stored blob of ${name} (${blob.length} bytes, want ${want.length})`);
  }
});

test('delete + git checkout smudges them back byte-identical, again in one process', () => {
  takeLog();
  for (const name of Object.keys(files)) unlinkSync(join(repo, name));
  git(['checkout', '--', '.']);
  for (const [name, body] of Object.entries(files)) {
    const got = readFileSync(join(repo, name));
    assert.ok(got.equals(body), `${name}: ${got.length} bytes back, ${body.length} added`);
  }
  const log = takeLog();
  assert.is(log.filter((l) => l.startsWith('start ')).length, 1, `one process for checkout (log: ${log.join(' | ')})`);
  assert.is(log.filter((l) => l.includes(' smudge ')).length, 4);
  assert.is(git(['status', '--porcelain']).stdout.toString(), '', 'worktree clean after checkout');
});

test('a handler error makes git add fail, with the handler message on stderr', () => {
  writeFileSync(join(repo, 'bad.toy'), random(300_000, 3));
  const r = git(['add', 'bad.toy'], { allowFail: true });
  assert.is.not(r.status, 0, 'git add must fail');
  assert.match(r.stderr, /toy: refusing to clean bad\.toy/);
  assert.match(r.stderr, /bad\.toy: clean filter 'toy' failed/);
  writeFileSync(join(repo, 'midway.toy'), random(200_000, 4));
  const m = git(['add', 'midway.toy'], { allowFail: true });
  assert.is.not(m.status, 0, 'an error after partial output fails too');
  assert.match(m.stderr, /toy: failed half-way through midway\.toy/);
  assert.is(git(['ls-files', 'bad.toy', 'midway.toy']).stdout.toString(), '', 'neither was staged');
  takeLog();
});

test('after one file fails, the same process still filters the next one', () => {
  writeFileSync(join(repo, 'zgood.toy'), 'fine\n');
  // not required: git keeps going after a failure (and stores that file unfiltered)
  git(['-c', 'filter.toy.required=false', 'add', 'bad.toy', 'zgood.toy']);
  const log = takeLog();
  const starts = log.filter((l) => l.startsWith('start '));
  assert.is(starts.length, 1, `one process (log: ${log.join(' | ')})`);
  // (git may also re-clean racily clean files committed earlier; only the two named files matter here)
  const order = log.filter((l) => / (bad|zgood)\.toy$/.test(l)).map((l) => l.split(' ').slice(1).join(' '));
  assert.equal(order, ['clean bad.toy', 'clean zgood.toy'], 'the failing file came first');
  const staged = (name: string) => git(['cat-file', '-p', `:${name}`]).stdout;
  assert.ok(staged('zgood.toy').equals(cleaned(Buffer.from('fine\n'))), 'the next file was cleaned');
  assert.ok(staged('bad.toy').equals(readFileSync(join(repo, 'bad.toy'))), 'the failed file went in unfiltered');
  git(['reset', '-q']);
});

test.run();
