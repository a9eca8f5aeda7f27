import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { collect } from '../../../core/io.ts';
import { gitText } from '../../git/git.ts';
import { CHAINED_HOOK } from './install.ts';
import { prePushUpload } from '../../lfs/lfs-node.ts';

/** Run the pre-push hook that `install` set aside (git-lfs's, a user's) with the same input. */
async function runChained(args: string[], stdin: Uint8Array): Promise<number> {
  const hooksDir = resolve(process.cwd(), await gitText(['rev-parse', '--git-path', 'hooks']));
  const chained = join(hooksDir, CHAINED_HOOK);
  if (!existsSync(chained)) return 0;
  return new Promise((res) => {
    const child = spawn(chained, args, { stdio: ['pipe', 'inherit', 'inherit'] });
    child.on('error', (e) => {
      process.stderr.write(`git-theta: could not run ${chained}: ${e.message}\n`);
      res(1);
    });
    child.on('close', (code) => res(code ?? 1));
    child.stdin.on('error', () => {}); // a hook that does not read its input (EPIPE) is not an error
    child.stdin.end(stdin);
  });
}

/** `git-theta pre-push [remote] [url]` (cli/direct.ts runs it without commander: git runs it on every push). */
export async function prePushCommand(remote?: string, url?: string): Promise<void> {
  const stdin = await collect(process.stdin);
  // upload the objects the pushed commits need and the server lacks; a failure refuses the push
  try {
    await prePushUpload({ cwd: process.cwd(), remote: remote ?? '', url, stdin: new TextDecoder().decode(stdin), log: (s) => process.stderr.write(s) });
  } catch (e) {
    process.stderr.write(`git-theta: pre-push: ${(e as Error).message}\ngit-theta: the push was refused (git sent nothing)\n`);
    process.exitCode = 1;
    return;
  }
  process.exitCode = await runChained([remote, url].filter((x): x is string => !!x), stdin);
}

export function registerHooks(program: Command): void {
  program
    .command('pre-push', { hidden: true })
    .description('(run by git) pre-push hook: uploads the objects the pushed commits need to the LFS server, then runs any pre-push hook git-theta set aside')
    .argument('[remote]')
    .argument('[url]')
    .action(prePushCommand);

}
