import { ArgumentError } from '../core/errors.ts';
import type { UpdateType } from './types.ts';

const types = new Map<string, UpdateType>();

/** Add an update type (built-ins register themselves; plug-ins call this too). */
export function registerUpdateType(t: UpdateType): void {
  types.set(t.name, t);
}

export function getUpdateType(name: string): UpdateType {
  const t = types.get(name);
  if (!t) {
    throw new ArgumentError(`unknown update type '${name}'; known: ${[...types.keys()].join(', ')} (a plug-in may add more: git config --add theta.plugin <module>)`, { name });
  }
  return t;
}

export function listUpdateTypes(): UpdateType[] {
  return [...types.values()];
}
