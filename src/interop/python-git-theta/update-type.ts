/**
 * One step of a Python-written parameter's history as a step of our recipes: the update type
 * `python-git-theta` reads the Python tool's LFS object (msgpack of zarr stores) and applies it
 * the way that tool does. A converted tensor's chain is these steps, oldest (dense) first, so
 * everything that rebuilds our tensors (checkout, diff, merge, clean's previous version) rebuilds
 * Python-written ones too, and a new commit of ours that keeps a tensor keeps its steps — its
 * Python objects are reused, not stored again.
 */
import type { ObjectRef, UpdateStep } from '../../theta/metadata.ts';
import type { ApplyContext, UpdateType } from '../../updates/types.ts';
import type { Target } from './apply.ts';
import { PyThetaFormatError } from './errors.ts';

export const PY_UPDATE = 'python-git-theta';
export const PY_KINDS = ['dense', 'sparse', 'low-rank', 'ia3'] as const;
export type PyKind = (typeof PY_KINDS)[number];

export function pyStep(kind: PyKind, object: ObjectRef): UpdateStep {
  return { update: PY_UPDATE, kind, object: { oid: object.oid, size: object.size } };
}

/** Apply one Python step: `prev` is null only for a dense step. */
export async function applyPyStep(step: UpdateStep, prev: Uint8Array | null, ctx: ApplyContext): Promise<Uint8Array> {
  const ref = step.object as ObjectRef;
  const kind = step.kind as PyKind;
  if (!PY_KINDS.includes(kind)) throw new PyThetaFormatError(`tensor '${ctx.name}': Python Git-Theta update type '${String(kind)}' is not supported (dense, sparse, low-rank, ia3 are)`, { tensor: ctx.name });
  // the readers (msgpack, zarr, blosc) are imported on the first Python step: the registry of update
  // types holds this one in every process, and few processes ever apply one
  const [bytes, { decodePyObject }, { getBloscKernels }, { applyIa3, applyLowRank, applySparse, denseValue }] = await Promise.all([
    ctx.store.get(ref.oid), import('./objects.ts'), import('./wasm.ts'), import('./apply.ts'),
  ]);
  if (bytes.length !== ref.size) throw new PyThetaFormatError(`tensor '${ctx.name}': object ${ref.oid} has ${bytes.length} bytes, its metadata says ${ref.size}`, { tensor: ctx.name });
  const u = decodePyObject(bytes, `object ${ref.oid.slice(0, 12)} of tensor '${ctx.name}'`, await getBloscKernels());
  const t: Target = { name: ctx.name, dtype: ctx.dtype, shape: ctx.shape, kernels: ctx.kernels };
  if (kind === 'dense') return denseValue(u, t);
  if (!prev) throw new PyThetaFormatError(`tensor '${ctx.name}': a ${kind} update needs a previous value`, { tensor: ctx.name });
  if (kind === 'sparse') return applySparse(prev, u, t);
  if (kind === 'low-rank') return applyLowRank(prev, u, t);
  return applyIa3(prev, u, t);
}

export const pythonGitTheta: UpdateType = {
  name: PY_UPDATE,
  // the step says itself whether it needs the previous value (its `kind`)
  incremental: false,
  description: 'a version written by the Python Git-Theta (read only; new versions are stored with our types)',
  async encode() {
    return null;
  },
  apply: applyPyStep,
};
