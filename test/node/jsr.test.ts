// JSR readiness: jsr.json exports the same entry points as package.json (the TypeScript source of
// each built module), at the same version, and `deno publish --dry-run` accepts the package (types
// explicit enough for JSR, the generated kernels module included, the page's sources left out).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV, repoRoot, run } from './helpers.ts';

const test = suite('jsr.json');
const DENO = join(repoRoot, 'node_modules/.bin/deno');
const read = (f: string) => JSON.parse(readFileSync(join(repoRoot, f), 'utf8'));

type NpmExports = Record<string, { types: string; default: string }>;

test('jsr.json and package.json export the same entry points, version and license', () => {
  const pkg = read('package.json');
  const jsr = read('jsr.json');
  assert.is(jsr.version, pkg.version);
  assert.is(jsr.license, pkg.license);
  const npm = pkg.exports as NpmExports;
  assert.equal(Object.keys(jsr.exports).sort(), Object.keys(npm).sort(), 'the same subpaths');
  for (const [subpath, source] of Object.entries(jsr.exports as Record<string, string>)) {
    const m = /^\.\/(src\/.+)\.ts$/.exec(source);
    assert.ok(m, `${subpath}: a TypeScript source under src/ (${source})`);
    assert.ok(existsSync(join(repoRoot, source)), `${source} exists`);
    const built = npm[subpath]!;
    assert.is(built.default, `./build/js/${m![1]}.js`, `${subpath}: package.json's JS is built from jsr.json's source`);
    assert.is(built.types, `./build/js/${m![1]}.d.ts`, `${subpath}: and its types`);
    assert.ok(existsSync(join(repoRoot, built.default)) && existsSync(join(repoRoot, built.types)), `${subpath}: built`);
    assert.equal(Object.keys(built), ['types', 'default'], `${subpath}: no runtime-specific condition (every runtime runs the built JS)`);
  }
});

test('deno publish --dry-run accepts the package', async () => {
  const r = await run(DENO, ['publish', '--dry-run', '--allow-dirty'], repoRoot, {
    env: { ...ENV, HOME: process.env.HOME ?? ENV.HOME, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
  });
  const out = r.stdout + r.stderr;
  assert.is(r.code, 0, out.split('\n').filter((l) => /error/i.test(l)).join('\n') || out.slice(-2000));
  assert.match(out, /Success Dry run complete/);
  assert.match(out, /build\/gen\/kernels-wasm\.ts/, 'the generated kernels module is published');
  assert.not.match(out, /src\/web\//, 'the page is not part of the JSR package');
  assert.not.match(out, /^error/m);
});

test.run();
