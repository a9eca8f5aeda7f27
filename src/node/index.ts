// git-theta for Node: the library plus Node's edges (files, the local object store, git).
export * from '../index.ts';
export { fileSource, fileReader, atomicFileSink, writeFileAtomically } from './fs-source.ts';
export { openLocalStore, nodeStoreFs } from './store-fs.ts';
export { useNodeSha256 } from './sha256-node.ts';
export { openCheckpointFile } from './open-checkpoint.ts';
export { ThetaRepo, diffPath } from './theta-repo.ts';
export { main } from './cli.ts';
