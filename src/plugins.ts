/**
 * Plug-ins add formats and update types (and later merge strategies) without forking git-theta.
 * A plug-in is an ES module exporting `register(api)` (named or default); git-theta calls it with
 * the registration functions below, so the plug-in needs no import of git-theta itself and always
 * reaches the registries of the copy that is running.
 *
 * Node CLI: `git config --add theta.plugin <npm-package-or-path>` (paths relative to the
 * repository root). Deno and browsers: `await loadPlugin(module)` with the imported module.
 */
import { registerFormat, getFormat, listFormats } from './formats/index.ts';
import { registerUpdateType, getUpdateType, listUpdateTypes } from './updates/index.ts';
import { ThetaError } from './core/errors.ts';
import { registerMergeStrategy, getMergeStrategy, listMergeStrategies } from './merges/index.ts';

export const pluginApi = {
  registerFormat,
  getFormat,
  listFormats,
  registerUpdateType,
  getUpdateType,
  listUpdateTypes,
  registerMergeStrategy,
  getMergeStrategy,
  listMergeStrategies,
};

export type PluginApi = typeof pluginApi;

export interface PluginModule {
  register?: (api: PluginApi) => void | Promise<void>;
  default?: ((api: PluginApi) => void | Promise<void>) | { register?: (api: PluginApi) => void | Promise<void> };
}

export async function loadPlugin(mod: PluginModule, name = 'plug-in'): Promise<void> {
  const fn = mod.register ?? (typeof mod.default === 'function' ? mod.default : mod.default?.register);
  if (typeof fn !== 'function') {
    throw new ThetaError('E_PLUGIN', `${name}: a git-theta plug-in must export a register(api) function`, { plugin: name });
  }
  await fn(pluginApi);
}
