import { ArgumentError } from '../core/errors.ts';
import type { MergeParams, MergeStrategy } from './types.ts';

const strategies = new Map<string, MergeStrategy>();

export function registerMergeStrategy(s: MergeStrategy): void {
  strategies.set(s.name, s);
}

export function getMergeStrategy(name: string): MergeStrategy {
  const s = strategies.get(name);
  if (!s) throw new ArgumentError(`unknown merge strategy '${name}'; known: ${[...strategies.keys()].join(', ')}`, { name });
  return s;
}

export function listMergeStrategies(): MergeStrategy[] {
  return [...strategies.values()];
}

/** A strategy with its parameters, e.g. parsed from "ties:density=0.2,lambda=1". */
export interface StrategyChoice {
  strategy: MergeStrategy;
  params: MergeParams;
}

/** Parse "name" or "name:key=value,key=value" and check parameters against the strategy's spec. */
export function parseStrategySpec(spec: string, overrides: MergeParams = {}): StrategyChoice {
  const [name, rest] = spec.trim().split(/:(.*)/s, 2);
  const strategy = getMergeStrategy(name.trim());
  const given: MergeParams = {};
  if (rest) {
    for (const part of rest.split(',')) {
      if (!part.trim()) continue;
      const m = /^\s*([A-Za-z_][\w-]*)\s*=\s*(.+?)\s*$/.exec(part);
      if (!m) throw new ArgumentError(`merge strategy '${spec}': bad parameter '${part}' (expected key=value)`);
      given[m[1]] = m[2];
    }
  }
  return { strategy, params: checkParams(strategy, { ...given, ...overrides }) };
}

export function checkParams(strategy: MergeStrategy, given: MergeParams): MergeParams {
  const out: MergeParams = {};
  const known = new Set(strategy.params.map((p) => p.name));
  for (const k of Object.keys(given)) {
    if (!known.has(k)) {
      throw new ArgumentError(`merge strategy '${strategy.name}' has no parameter '${k}'${known.size ? ` (it takes ${[...known].join(', ')})` : ' (it takes none)'}`);
    }
  }
  for (const p of strategy.params) {
    const raw = given[p.name] ?? p.default;
    if (typeof p.default === 'number') {
      const v = typeof raw === 'number' ? raw : Number(raw);
      if (!Number.isFinite(v) || (p.min !== undefined && v < p.min) || (p.max !== undefined && v > p.max)) {
        throw new ArgumentError(`merge strategy '${strategy.name}': ${p.name}=${raw} is not a number in [${p.min ?? '-inf'}, ${p.max ?? 'inf'}]`);
      }
      out[p.name] = v;
    } else {
      const v = String(raw);
      if (p.choices && !p.choices.includes(v)) throw new ArgumentError(`merge strategy '${strategy.name}': ${p.name} must be one of ${p.choices.join(', ')}`);
      out[p.name] = v;
    }
  }
  return out;
}

export function formatChoice(c: StrategyChoice): string {
  const ps = Object.entries(c.params).map(([k, v]) => `${k}=${v}`).join(',');
  return ps ? `${c.strategy.name}:${ps}` : c.strategy.name;
}
