// Built-in update types, registered on import.
import { registerUpdateType } from './registry.ts';
import { dense } from './dense.ts';
import { sparse } from './sparse.ts';
import { lowRank } from './low-rank.ts';
import { ia3 } from './ia3.ts';

for (const t of [dense, sparse, lowRank, ia3]) registerUpdateType(t);

export { registerUpdateType, getUpdateType, listUpdateTypes } from './registry.ts';
export type { UpdateType, EncodeContext, ApplyContext, SideTensor, UpdateStore } from './types.ts';
