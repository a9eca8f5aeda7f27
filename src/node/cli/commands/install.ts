import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { configGet, git, gitText } from '../../git/git.ts';
import { cliCommand } from '../self.ts';
import { ArgumentError, ThetaError } from '../../../core/errors.ts';

export const HOOK_MARKER = '# git-theta pre-push hook';
export const CHAINED_HOOK = 'pre-push.theta-chained';

export interface InstallResult {
  changed: string[];
}

/** The git configuration the `theta` driver needs, as key -> value. */
export function driverConfig(cmd = cliCommand()): Record<string, string> {
  return {
    'filter.theta.process': `${cmd} filter-process`,
    'filter.theta.required': 'true',
    'diff.theta.textconv': `${cmd} textconv`,
    'diff.theta.cachetextconv': 'true',
    'merge.theta.name': 'git-theta per-tensor model merge',
    'merge.theta.driver': `${cmd} merge-driver %O %A %B %P`,
  };
}

export async function install(opts: { scope: '--local' | '--global'; cwd?: string }): Promise<InstallResult> {
  const changed: string[] = [];
  for (const [key, value] of Object.entries(driverConfig())) {
    const current = await configGet(key, opts.cwd, opts.scope);
    if (current === value) continue;
    await git(['config', opts.scope, key, value], { cwd: opts.cwd });
    changed.push(`${key}`);
  }
  const inRepo = (await git(['rev-parse', '--git-dir'], { cwd: opts.cwd, allowFail: true })).code === 0;
  if (inRepo) changed.push(...(await installHook(opts.cwd)));
  return { changed };
}

function hookScript(): string {
  return `#!/bin/sh
${HOOK_MARKER} (installed by 'git theta install'; runs any hook it replaced, e.g. git-lfs's)
exec ${cliCommand()} pre-push "$@"
`;
}

/** Install the pre-push hook where git looks for hooks (honours core.hooksPath). */
export async function installHook(cwd?: string): Promise<string[]> {
  const hooksDir = resolve(cwd ?? process.cwd(), await gitText(['rev-parse', '--git-path', 'hooks'], { cwd }));
  await mkdir(hooksDir, { recursive: true });
  const hook = join(hooksDir, 'pre-push');
  const script = hookScript();
  if (existsSync(hook)) {
    const text = await readFile(hook, 'utf8');
    if (text === script) return [];
    if (text.includes(HOOK_MARKER)) {
      await writeFile(hook, script);
      await chmod(hook, 0o755);
      return [`${hook} (updated)`];
    }
    // another tool's hook (git-lfs's, a user's): keep it, and run it from ours
    const chained = join(hooksDir, CHAINED_HOOK);
    if (existsSync(chained)) {
      throw new ThetaError('E_HOOK_CONFLICT', `both ${hook} and ${chained} exist and neither is git-theta's; merge them by hand, then run 'git theta install' again`, { hook, chained });
    }
    await rename(hook, chained);
  }
  await writeFile(hook, script);
  await chmod(hook, 0o755);
  return [hook];
}

export function registerInstall(program: Command): void {
  program
    .command('install')
    .description("Configure git for git-theta: the 'theta' filter (long-running process), diff and merge drivers, and a pre-push hook that keeps any existing one (git-lfs's) running")
    .option('--local', "write the repository's .git/config")
    .option('--global', 'write ~/.gitconfig (the default)')
    .action(async (o: { local?: boolean; global?: boolean }) => {
      if (o.local && o.global) throw new ArgumentError("choose one of --local and --global: 'git theta install --local' configures this repository, '--global' your user");
      const r = await install({ scope: o.local ? '--local' : '--global' });
      process.stderr.write(r.changed.length ? `git-theta installed (${r.changed.length} settings/hooks written)\n` : 'git-theta already installed; nothing changed\n');
    });
}
