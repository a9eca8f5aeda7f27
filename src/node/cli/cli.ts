/**
 * The `git-theta` command line: a thin layer over the library. Each command lives in
 * src/node/cli/commands/<name>.ts; this file only wires arguments and turns errors into one line.
 */
import { Command, CommanderError } from 'commander';
import { isThetaError, oneLine } from '../../core/errors.ts';
import { endQuietlyOnEpipe, isEpipe } from './epipe.ts';
import { loadConfiguredPlugins } from './plugins.ts';
import { setRawArgv } from './argv.ts';
import { useFastCrc32 } from '../../core/kernels.ts';
import { registerInspect } from './commands/inspect.ts';
import { registerInstall } from './commands/install.ts';
import { registerTrack } from './commands/track.ts';
import { registerAdd } from './commands/add.ts';
import { registerDiff } from './commands/diff.ts';
import { registerFilter } from './commands/filter.ts';
import { registerTextconv } from './commands/textconv.ts';
import { registerHooks } from './commands/hooks.ts';
import { registerLog } from './commands/log.ts';
import { registerGc } from './commands/gc.ts';
import { registerDemo } from './commands/demo.ts';
import { registerMerge } from './commands/merge.ts';
import { registerCheckout } from './commands/checkout.ts';
import { registerConvert } from './commands/convert.ts';
import { registerMergeModels } from './commands/merge-models.ts';
import { registerServe } from './commands/serve.ts';
import { registerFetch } from './commands/fetch.ts';
import { registerFsck } from './commands/fsck.ts';
import { registerMigrate } from './commands/migrate.ts';

export const VERSION = '0.1.0';

/** Exit code of a command; commands write their own output. */
export type ExitCode = number;

export function buildProgram(): Command {
  const program = new Command('git-theta')
    .description('Version control for machine-learning models: git tracks each tensor of a checkpoint on its own.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerDemo(program);
  registerInstall(program);
  registerTrack(program);
  registerAdd(program);
  registerDiff(program);
  registerCheckout(program);
  registerInspect(program);
  registerConvert(program);
  registerLog(program);
  registerGc(program);
  registerFilter(program);
  registerTextconv(program);
  registerHooks(program);
  registerMerge(program);
  registerMergeModels(program);
  registerServe(program);
  registerFetch(program);
  registerFsck(program);
  registerMigrate(program);
  return program;
}

/** Run the CLI; resolves to the process exit code. Never throws for expected errors. */
export async function main(argv: string[]): Promise<ExitCode> {
  setRawArgv(argv);
  endQuietlyOnEpipe();
  const program = buildProgram();
  try {
    await useFastCrc32(); // zip-based formats (PyTorch, npz) checksum every entry
    const sub = argv[2];
    if (sub && !sub.startsWith('-') && sub !== 'help' && sub !== 'install') await loadConfiguredPlugins();
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): ExitCode {
  if (err instanceof CommanderError) {
    // --help and --version end here with code 0; usage errors were already printed by commander
    return err.exitCode;
  }
  if (isEpipe(err)) return 0; // the reader of our output went away (`| head`): not an error
  if (isThetaError(err)) {
    process.stderr.write(`git-theta: ${err.message}\n`);
    return 1;
  }
  const e = err as { code?: string; message?: string; stack?: string };
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') {
    process.stderr.write(`git-theta: ${oneLine(String(e.message))}: the disk is full; free some space (git theta gc removes unneeded objects), then run the command again\n`);
    return 1;
  }
  if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EISDIR' || e?.code === 'EROFS') {
    process.stderr.write(`git-theta: ${oneLine(String(e.message))}\n`);
    return 1;
  }
  process.stderr.write(`git-theta: internal error: ${oneLine(String(e?.message ?? err))}\n`);
  if (process.env.THETA_DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
  else process.stderr.write('git-theta: set THETA_DEBUG=1 for the stack trace, and please report it\n');
  return 1;
}
