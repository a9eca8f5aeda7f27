/**
 * An LFS object the Python Git-Theta wrote: a msgpack map from tensor name to a zarr v2 store
 * (a map from store key to bytes), FORMAT.md §4. Decoded into named arrays.
 */
import { decode } from '@msgpack/msgpack';
import { PyThetaFormatError } from './errors.ts';
import { readZarrArray, type ZarrArray } from './zarr.ts';
import type { BloscKernels } from './wasm.ts';

/** `kernels`: decode chunks in Wasm (getBloscKernels()); without, in TypeScript. */
export function decodePyObject(bytes: Uint8Array, where = 'object', kernels?: BloscKernels): Map<string, ZarrArray> {
  let doc: unknown;
  try {
    doc = decode(bytes);
  } catch (e) {
    throw new PyThetaFormatError(`${where}: not a msgpack map of zarr stores (${(e as Error).message})`, { where });
  }
  const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !(v instanceof Uint8Array) && !Array.isArray(v);
  if (!isMap(doc)) throw new PyThetaFormatError(`${where}: not a msgpack map of zarr stores`, { where });
  const out = new Map<string, ZarrArray>();
  for (const [name, store] of Object.entries(doc)) {
    if (!isMap(store)) throw new PyThetaFormatError(`${where}: '${name}' is not a zarr store (a map of keys to bytes)`, { where, tensor: name });
    const keys = new Map<string, Uint8Array>();
    for (const [k, v] of Object.entries(store)) {
      if (!(v instanceof Uint8Array)) throw new PyThetaFormatError(`${where}: '${name}/${k}' is not bytes`, { where, tensor: name });
      keys.set(k, v);
    }
    out.set(name, readZarrArray(keys, `${where}: '${name}'`, kernels));
  }
  return out;
}
