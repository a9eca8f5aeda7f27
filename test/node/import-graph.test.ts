// The shape of src/ (ARCHITECTURE.md): no import circle, and code outside src/node never imports
// Node's built-ins or src/node. Read from the sources, so a new circle fails here before review.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { repoRoot } from './platform-node.ts';

const srcDir = join(repoRoot, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Static import and re-export specifiers of a file (type-only ones too; dynamic import() excluded). */
function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/gm)) out.push(m[1]);
  for (const m of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) out.push(m[1]);
  return out;
}

const files = sourceFiles(srcDir);
const graph = new Map<string, string[]>();
const external = new Map<string, string[]>();
for (const f of files) {
  const specs = specifiers(readFileSync(f, 'utf8'));
  graph.set(f, specs.filter((s) => s.startsWith('.')).map((s) => normalize(join(dirname(f), s))));
  external.set(f, specs.filter((s) => !s.startsWith('.')));
}

/** Every import circle, each as the list of files around it (Tarjan's strongly connected components). */
function circles(): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next); low.set(v, next); next++; stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.map((p) => relative(repoRoot, p)).sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return found;
}

test('src/ has no import circle', () => {
  assert.ok(files.length > 100, `found ${files.length} source files under ${srcDir}`);
  const found = circles();
  assert.equal(found, [], `import circles (break each by moving the shared piece into its own module):\n${found.map((c) => '  ' + c.join(' <-> ')).join('\n')}`);
});

test('every relative import names an existing source file', () => {
  const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => d.startsWith(srcDir) && !graph.has(d)).map((d) => `${relative(repoRoot, f)} -> ${relative(repoRoot, d)}`));
  assert.equal(missing, []);
});

test('only src/node imports node:* or src/node', () => {
  const nodeDir = join(srcDir, 'node') + '/';
  const offenders = files.filter((f) => !f.startsWith(nodeDir)).flatMap((f) => [
    ...external.get(f)!.filter((s) => s.startsWith('node:')).map((s) => `${relative(repoRoot, f)} imports ${s}`),
    ...graph.get(f)!.filter((d) => d.startsWith(nodeDir)).map((d) => `${relative(repoRoot, f)} imports ${relative(repoRoot, d)}`),
  ]);
  assert.equal(offenders, []);
});

test.run();
