/**
 * The pre-push hook must exist in every repository where git-theta's filter runs, or a push would
 * send the commits without their objects. `git theta install --local` writes it, but a global install
 * followed by a plain `git clone` never does; so the filter process installs it when it is missing,
 * the way git-lfs installs its hooks from its own filter, keeping (chaining) a hook that is already there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gitText } from './git.ts';
import { HOOK_MARKER, installHook } from '../cli/commands/install.ts';

/** Is git-theta's pre-push hook where git looks for hooks? */
export async function hasPrePushHook(cwd: string): Promise<boolean> {
  const hooksDir = resolve(cwd, await gitText(['rev-parse', '--git-path', 'hooks'], { cwd }));
  const hook = join(hooksDir, 'pre-push');
  return existsSync(hook) && readFileSync(hook, 'utf8').includes(HOOK_MARKER);
}

/**
 * Install the pre-push hook when it is missing. Never throws: a filter must not fail a checkout over
 * a hook; a problem is reported on stderr with what to do.
 */
export async function ensurePrePushHook(cwd: string, warn: (s: string) => void = (s) => process.stderr.write(s)): Promise<string[]> {
  try {
    if (await hasPrePushHook(cwd)) return [];
    return await installHook(cwd);
  } catch (e) {
    warn(`git-theta: could not install the pre-push hook (${(e as Error).message}); run 'git theta install --local' in this repository before pushing\n`);
    return [];
  }
}
