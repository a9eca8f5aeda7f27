import type { MergeStrategy } from '../types.ts';

/** Keep one side exactly (any dtype). */
function pick(name: string, description: string, which: (models: Uint8Array[], base: Uint8Array | null) => Uint8Array | null, needsBase = false): MergeStrategy {
  return {
    name,
    description,
    params: [],
    needsBase,
    anyDtype: true,
    merge(input) {
      const b = which(input.models, input.base);
      return b ? { bytes: b } : null;
    },
  };
}

export const ours = pick('ours', 'keep our version of the tensor', (m) => m[0]);
export const theirs = pick('theirs', 'take their version of the tensor', (m) => m[m.length - 1]);
export const base = pick('base', 'keep the merge base version (drop both changes)', (_m, b) => b, true);

export const fail: MergeStrategy = {
  name: 'fail',
  description: 'leave the conflict for later',
  params: [],
  needsBase: false,
  anyDtype: true,
  merge: () => null,
};
