/**
 * fflate and pako, imported when a zip format first inflates or deflates, not when the formats
 * register: together ~320 KB of module source that textconv of a safetensors file, the merge
 * driver and the filter process would otherwise compile at every start (issue 18, bench/startup.ts).
 *
 * Their deflaters are constructed synchronously (zip.ts's FixedDeflater, zlib-deflate.ts's
 * ZlibDeflater, pytorch.ts's bounded inflate), so every async path that reaches one awaits
 * `loadFflate()` / `loadPako()` first; `fflate()` / `pako()` then return the loaded module, and
 * say which load was missed if one was not awaited (a bug, never a user error).
 */
import { ThetaError } from '../core/errors.ts';

type Fflate = typeof import('fflate');
type Pako = typeof import('pako');

let fflateModule: Fflate | undefined;
let pakoModule: Pako | undefined;
let fflateLoading: Promise<Fflate> | undefined;
let pakoLoading: Promise<Pako> | undefined;

/** Imports fflate once (later calls share the first); resolves to it. */
export function loadFflate(): Promise<Fflate> {
  fflateLoading ??= import('fflate').then((m) => (fflateModule = m), (e) => { fflateLoading = undefined; throw e; });
  return fflateLoading;
}

/** Imports pako once (later calls share the first); resolves to it. */
export function loadPako(): Promise<Pako> {
  pakoLoading ??= import('pako').then((m) => (pakoModule = m), (e) => { pakoLoading = undefined; throw e; });
  return pakoLoading;
}

const notLoaded = (lib: string, load: string) =>
  new ThetaError('E_INTERNAL', `${lib} was used before ${load}() was awaited (a bug in git-theta: please report it)`, { lib });

/** fflate, once `loadFflate()` has resolved. */
export function fflate(): Fflate {
  if (!fflateModule) throw notLoaded('fflate', 'loadFflate');
  return fflateModule;
}

/** pako, once `loadPako()` has resolved. */
export function pako(): Pako {
  if (!pakoModule) throw notLoaded('pako', 'loadPako');
  return pakoModule;
}
