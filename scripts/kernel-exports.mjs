// The TypeScript interface of the kernel module's exports, generated from what asc declares for
// assembly/ (asconfig.json: "bindings": "raw" makes asc write build/wasm/kernels.<target>.d.ts).
// The host (src/core/kernels/, merge-kernels.ts, interop blosc) reads exports only through this
// interface, so an export that is missing or misspelled is a tsc error, and a new export in
// assembly/ is typed on the next build with nothing to edit by hand.
//
// asc's declarations are for its JS glue; the host calls the raw instance, so two things differ and
// are mapped here: a `bool` is a number (0 or 1) on the raw instance, and an exported global is a
// WebAssembly.Global. Every name is checked against the compiled modules' own export lists (both
// builds), so a change in asc's declaration text fails the build instead of typing something wrong.

const FN = /^ {2}export function (\w+)\((.*)\): ([\w<>[\] |]+);$/;
const CONST = /^ {2}export const (\w+): /;
const OK_TYPES = new Set(['number', 'bigint', 'boolean', 'void']);

/**
 * @param {string} dts asc's declaration file for one build
 * @param {{ name: string, kind: string }[][]} moduleExports WebAssembly.Module.exports of every build
 * @returns {string} TypeScript source: KernelExports and KernelFunctionName
 */
export function kernelExportsSource(dts, moduleExports) {
  const start = dts.indexOf('declare namespace __AdaptedExports {');
  const end = dts.indexOf('\n}\n', start);
  if (start < 0 || end < 0) throw new Error('kernel exports: asc declaration file has no __AdaptedExports namespace (asc output changed?)');
  const lines = dts.slice(start, end).split('\n').slice(1);
  const members = [];
  let doc = [];
  for (const line of lines) {
    const f = FN.exec(line), c = CONST.exec(line);
    if (/^ {2}(\/\*\*| \*)/.test(line)) doc.push(line);
    else if (f) {
      const [, name, params, ret] = f;
      const types = [...params.matchAll(/\w+: ([^,]+)/g)].map((m) => m[1]).concat(ret);
      const bad = types.find((t) => !OK_TYPES.has(t));
      if (bad) throw new Error(`kernel exports: ${name} uses type ${bad}; kernels take and return numbers only (pointers and lengths)`);
      const raw = (t) => (t === 'boolean' ? 'number' : t);
      const sig = params.replace(/: boolean\b/g, ': number');
      members.push({ name, kind: 'function', text: [...doc, `  readonly ${name}: (${sig}) => ${raw(ret)};`] });
      doc = [];
    } else if (c) {
      const name = c[1];
      members.push({ name, kind: name === 'memory' ? 'memory' : 'global', text: [...doc, `  readonly ${name}: ${name === 'memory' ? 'WebAssembly.Memory' : 'WebAssembly.Global'};`] });
      doc = [];
    }
  }
  const declared = new Map(members.map((m) => [m.name, m.kind]));
  for (const exps of moduleExports) {
    const actual = new Map(exps.map((e) => [e.name, e.kind]));
    const diff = [
      ...[...declared].filter(([n, k]) => actual.get(n) !== k).map(([n, k]) => `declared ${k} ${n} is ${actual.get(n) ?? 'missing'} in the module`),
      ...[...actual].filter(([n]) => !declared.has(n)).map(([n, k]) => `module exports ${k} ${n}, which asc did not declare`),
    ];
    if (diff.length) throw new Error(`kernel exports: asc's declarations and the compiled module disagree: ${diff.join('; ')}`);
  }
  return (
    `/** Every export of the kernel module (both builds), typed from asc's declarations for assembly/. */\n` +
    `export interface KernelExports {\n${members.flatMap((m) => m.text).join('\n')}\n}\n\n` +
    `/** The names of the exported kernel functions. */\n` +
    `export type KernelFunctionName = ${members.filter((m) => m.kind === 'function').map((m) => JSON.stringify(m.name)).join(' | ')};\n`
  );
}
