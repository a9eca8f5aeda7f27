// git-theta library entry: runtime-neutral (Node, Deno, browsers). Node-only pieces (the CLI, the
// git filter process, file access) are in `git-theta/node`.
export * from './core/errors.ts';
export * from './core/dtypes.ts';
export * from './core/io.ts';
export { simdSupported, instantiateKernels, type KernelVariant } from './core/wasm.ts';
export { Kernels, getKernels, useFastCrc32 } from './core/kernels.ts';
export { createSha256, setSha256Factory, sha256Hex, type Sha256, type Sha256Factory } from './core/sha256.ts';
export type { CheckpointFormat, CheckpointReader, StreamedTensor, TensorHeader, TensorToWrite } from './formats/types.ts';
export { registerFormat, getFormat, listFormats, sniffFormat } from './formats/index.ts';
export { safetensors } from './formats/safetensors.ts';
export { openSharded } from './formats/sharded.ts';
export { registerUpdateType, getUpdateType, listUpdateTypes } from './updates/index.ts';
export type { UpdateType, EncodeContext, ApplyContext } from './updates/types.ts';
export * from './theta/metadata.ts';
export { cleanCheckpoint, parseTolerance, type CleanOptions, type Tolerance } from './theta/clean.ts';
export { smudgeCheckpoint } from './theta/smudge.ts';
export { rebuildTensor } from './theta/rebuild.ts';
export { diffModels, metadataTensors, type ModelDiff, type TensorDiff, type DiffTensor } from './theta/diff.ts';
export { metadataSummary } from './theta/summary.ts';
export { inspectCheckpoint, type InspectReport } from './inspect.ts';
export type { ObjectStore } from './store/types.ts';
export { createLocalStore } from './store/local.ts';
export { createMemoryStore, memoryFs } from './store/memory.ts';
export { loadPlugin, pluginApi, type PluginApi } from './plugins.ts';
export * from './repo/index.ts';
export { registerMergeStrategy, getMergeStrategy, listMergeStrategies, parseStrategySpec, type MergeStrategy } from './merges/index.ts';
export { mergeThreeWay } from './merges/three-way.ts';
export { mergeFiles } from './merges/merge-files.ts';
export { convertCheckpoint, dequantizeForStats } from './formats/convert.ts';
export { pytorch } from './formats/pytorch.ts';
export { openTfjs } from './formats/tfjs.ts';
export { LfsClient } from './lfs/client.ts';
export { createRemoteStore } from './lfs/remote-store.ts';
export { discoverLfsEndpoint } from './lfs/endpoint.ts';
export { crc32 } from './core/crc32.ts';
// repositories written by the Python Git-Theta: its metadata, objects and update chains
export * from './interop/python-git-theta/index.ts';
