/**
 * Which merge strategy a tensor gets, in order of precedence:
 *   1. the command line (`git theta merge/resolve --strategy`), passed to the driver as
 *      THETA_MERGE_STRATEGY, or that environment variable set by the user;
 *   2. a rule in the committed `.thetamerge` file matching the tensor's name (last match wins);
 *   3. git config `theta.merge.strategy`;
 *   4. an interactive menu, when stdin and stderr are a terminal;
 *   5. otherwise none: the tensor stays conflicted (the driver never waits for input).
 *
 * `.thetamerge`: one rule per line, `<tensor-name-glob> <strategy>[:key=value,...]`; `*` matches
 * any run of characters, `?` one; blank lines and `#` comments are ignored. Example:
 *     *.bias          average:alpha=0.5
 *     encoder.*       ties:density=0.2,lambda=1
 *     lm_head.weight  ours
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ThetaError } from '../../core/errors.ts';
import { formatChoice, listMergeStrategies, parseStrategySpec, type StrategyChoice } from '../../merges/index.ts';
import type { ConflictInfo } from '../../merges/three-way.ts';
import { configGet } from '../git/git.ts';

export const ENV_MERGE_STRATEGY = 'THETA_MERGE_STRATEGY';
export const RULES_FILE = '.thetamerge';

export interface Rule {
  pattern: RegExp;
  source: string;
  choice: StrategyChoice;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${re}$`);
}

export function parseRules(text: string, file = RULES_FILE): Rule[] {
  const rules: Rule[] = [];
  text.split('\n').forEach((line, i) => {
    const l = line.replace(/#.*$/, '').trim();
    if (!l) return;
    const m = /^(\S+)\s+(\S+)$/.exec(l);
    if (!m) throw new ThetaError('E_CONFIG', `${file}:${i + 1}: expected '<tensor-glob> <strategy>[:key=value,...]'`, { file, line: i + 1 });
    try {
      rules.push({ pattern: globToRegExp(m[1]), source: `${file}:${i + 1}`, choice: parseStrategySpec(m[2]) });
    } catch (e) {
      throw new ThetaError('E_CONFIG', `${file}:${i + 1}: ${(e as Error).message}`, { file, line: i + 1 });
    }
  });
  return rules;
}

export interface ChooserOptions {
  root: string;
  /** From the command line; wins over everything. */
  spec?: string;
  /** Allow the interactive menu (only used when stdin and stderr are terminals). */
  interactive?: boolean;
}

export type Chooser = (info: ConflictInfo) => StrategyChoice | null;

/** A chooser over the non-interactive sources; `needsMenu` lists tensors none of them decide. */
export async function makeChooser(o: ChooserOptions): Promise<{ choose: Chooser; source: (name: string) => string | null }> {
  const fixed = o.spec ?? process.env[ENV_MERGE_STRATEGY] ?? null;
  const fixedChoice = fixed ? parseStrategySpec(fixed) : null;
  const rulesPath = join(o.root, RULES_FILE);
  const rules = existsSync(rulesPath) ? parseRules(readFileSync(rulesPath, 'utf8')) : [];
  const cfg = await configGet('theta.merge.strategy', o.root);
  const cfgChoice = cfg ? parseStrategySpec(cfg) : null;
  const decide = (name: string): [StrategyChoice, string] | null => {
    if (fixedChoice) return [fixedChoice, o.spec ? '--strategy' : ENV_MERGE_STRATEGY];
    for (let i = rules.length - 1; i >= 0; i--) if (rules[i].pattern.test(name)) return [rules[i].choice, rules[i].source];
    if (cfgChoice) return [cfgChoice, 'theta.merge.strategy'];
    return null;
  };
  return {
    choose: (info) => decide(info.name)?.[0] ?? null,
    source: (name) => decide(name)?.[1] ?? null,
  };
}

export function canPrompt(): boolean {
  return !!process.stdin.isTTY && !!process.stderr.isTTY;
}

/**
 * The interactive menu: lists the tensors no rule decides, lets the user pick a strategy and its
 * parameters (for all of them or one by one), shows a summary and asks before anything is written.
 */
export async function promptForStrategies(path: string, infos: ConflictInfo[]): Promise<Map<string, StrategyChoice> | null> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  // lines typed ahead of a prompt are queued, not lost
  const lines = rl[Symbol.asyncIterator]();
  const question = async (q: string): Promise<string> => {
    process.stderr.write(q);
    const r = await lines.next();
    if (r.done) throw new ThetaError('E_ABORTED', 'the merge menu got end of input; nothing written', {});
    return r.value;
  };
  const out = new Map<string, StrategyChoice>();
  try {
    const strategies = listMergeStrategies();
    process.stderr.write(`\ngit-theta: ${infos.length} tensor(s) of ${path} need a merge strategy:\n`);
    for (const i of infos) process.stderr.write(`  ${i.name}  ${i.dtype}[${i.shape.join(',')}]  (${i.kind})\n`);
    process.stderr.write('strategies:\n');
    strategies.forEach((s, k) => process.stderr.write(`  ${k + 1}. ${s.name.padEnd(16)} ${s.description}\n`));
    const ask = async (label: string): Promise<StrategyChoice | null> => {
      for (;;) {
        const ans = (await question(`strategy for ${label} [1-${strategies.length} or name, empty = fail]: `)).trim();
        if (!ans) return null;
        const s = /^\d+$/.test(ans) ? strategies[Number(ans) - 1] : strategies.find((x) => x.name === ans);
        if (!s) {
          process.stderr.write(`  no strategy '${ans}'\n`);
          continue;
        }
        const given: Record<string, string> = {};
        for (const p of s.params) {
          const v = (await question(`  ${p.name} (${p.description}) [${p.default}]: `)).trim();
          if (v) given[p.name] = v;
        }
        try {
          return parseStrategySpec(s.name + (Object.keys(given).length ? ':' + Object.entries(given).map(([k, v]) => `${k}=${v}`).join(',') : ''));
        } catch (e) {
          process.stderr.write(`  ${(e as Error).message}\n`);
        }
      }
    };
    const mode = infos.length > 1 ? (await question('one strategy for all, or each tensor on its own? [A/e]: ')).trim().toLowerCase() : 'a';
    if (mode.startsWith('e')) {
      for (const i of infos) {
        const c = await ask(i.name);
        if (c) out.set(i.name, c);
      }
    } else {
      const c = await ask(infos.length > 1 ? `all ${infos.length} tensors` : infos[0].name);
      if (c) for (const i of infos) out.set(i.name, c);
    }
    process.stderr.write('summary:\n');
    for (const i of infos) process.stderr.write(`  ${i.name}: ${out.has(i.name) ? formatChoice(out.get(i.name)!) : 'left conflicted'}\n`);
    const ok = (await question('write this merge? [Y/n]: ')).trim().toLowerCase();
    return ok === '' || ok.startsWith('y') ? out : null;
  } finally {
    rl.close();
  }
}
