// git-theta for Node: the library plus Node's edges (files, the local object store, git).
export * from '../index.ts';
export { fileSource, fileReader, atomicFileSink, writeFileAtomically } from './files/fs-source.ts';
export { openLocalStore, nodeStoreFs } from './files/store-fs.ts';
export { useNodeSha256 } from './files/sha256-node.ts';
export { openCheckpointFile } from './files/open-checkpoint.ts';
export { ThetaRepo, diffPath } from './repo/theta-repo.ts';
export { main } from './cli/cli.ts';
