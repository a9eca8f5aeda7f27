// Built-in update types, registered on import.
import { registerUpdateType } from './registry.ts';
import { dense } from './dense.ts';
import { sparse } from './sparse.ts';
import { lowRank } from './low-rank.ts';
import { ia3 } from './ia3.ts';
import { pythonGitTheta } from '../interop/python-git-theta/update-type.ts';

// python-git-theta: read-only steps of versions the Python Git-Theta wrote (src/interop/python-git-theta)
for (const t of [dense, sparse, lowRank, ia3, pythonGitTheta]) registerUpdateType(t);

export { registerUpdateType, getUpdateType, listUpdateTypes } from './registry.ts';
export type { UpdateType, EncodeContext, ApplyContext, SideTensor, UpdateStore } from './types.ts';
