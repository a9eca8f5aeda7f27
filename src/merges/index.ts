// Built-in merge strategies, registered on import.
import { registerMergeStrategy } from './registry.ts';
import { base, fail, ours, theirs } from './strategies/select.ts';
import { average, taskArithmetic } from './strategies/linear.ts';
import { ties } from './strategies/ties.ts';
import { dare } from './strategies/dare.ts';
import { slerp } from './strategies/slerp.ts';

for (const s of [ours, theirs, base, average, taskArithmetic, ties, dare, slerp, fail]) registerMergeStrategy(s);

export { registerMergeStrategy, getMergeStrategy, listMergeStrategies, parseStrategySpec, formatChoice, type StrategyChoice } from './registry.ts';
export type { MergeStrategy, MergeInput, MergeOutput, MergeParams, ParamSpec } from './types.ts';
export { trimTopK, electAndMerge } from './strategies/ties.ts';
export { dareUniform, dareDrop } from './strategies/dare.ts';
