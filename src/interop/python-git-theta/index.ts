/** Reading repositories written by the Python Git-Theta (r-three/git-theta 0.2): see FORMAT.md in test/fixtures/python-git-theta. */
export { PyThetaFormatError, PyThetaHistoryError } from './errors.ts';
export { lz4DecodeBlock } from './lz4.ts';
export { bloscDecode, byteUnshuffle, bitUnshuffle } from './blosc.ts';
export { createBloscKernels, getBloscKernels, type BloscKernels } from './wasm.ts';
export { readZarrArray, type ZarrArray } from './zarr.ts';
export { decodePyObject } from './objects.ts';
export { looksLikePyMetadata, parsePyMetadata, pyObjectRefs, type PyEntry } from './metadata.ts';
export { PY_UPDATE, pythonGitTheta } from './update-type.ts';
export { convertPyMetadata, pyCheckpointFormat, type PyHistory, type ConvertOptions } from './convert.ts';
export { pySummary } from './summary.ts';
