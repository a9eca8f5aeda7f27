/** Loading plug-ins named in git config (`theta.plugin`, may be given several times). */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { ThetaError } from '../../core/errors.ts';
import { configGetAll, git } from '../git/git.ts';

export async function loadConfiguredPlugins(cwd = process.cwd()): Promise<string[]> {
  const names = await configGetAll('theta.plugin', cwd);
  if (!names.length) return [];
  // (imported when a plug-in is named: it imports every registry, which textconv does not need)
  const { loadPlugin } = await import('../../plugins.ts');
  const top = (await git(['rev-parse', '--show-toplevel'], { cwd, allowFail: true })).stdout.toString().trim() || cwd;
  for (const name of names) {
    let url: string;
    if (name.startsWith('.') || isAbsolute(name)) {
      url = pathToFileURL(resolve(top, name)).href;
    } else {
      try {
        url = pathToFileURL(createRequire(resolve(top, 'package.json')).resolve(name)).href;
      } catch {
        throw new ThetaError('E_PLUGIN', `theta.plugin '${name}': cannot find it (install it with npm in the repository, or give a path)`, { plugin: name });
      }
    }
    let mod;
    try {
      mod = await import(url);
    } catch (e) {
      throw new ThetaError('E_PLUGIN', `theta.plugin '${name}': failed to load: ${(e as Error).message}`, { plugin: name });
    }
    await loadPlugin(mod, `theta.plugin '${name}'`);
  }
  return names;
}
