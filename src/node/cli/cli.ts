/**
 * The `git-theta` command line: a thin layer over the library. Each command lives in
 * src/node/cli/commands/<name>.ts; this file only wires arguments and turns errors into one line.
 */
import type { Command, CommanderError } from 'commander';
import { isThetaError, oneLine } from '../../core/errors.ts';
import { endQuietlyOnEpipe, isEpipe } from './epipe.ts';
import { setRawArgv } from './argv.ts';
import { directCommand } from './direct.ts';

/**
 * The command modules, loaded on demand: a run imports only the module of the command it runs
 * (`--version` none), so start-up does not pay for every format, isomorphic-git and undici.
 * Order = order in --help. `names` are the commands each module registers.
 */
type Register = (program: Command) => void;
const COMMANDS: { names: string[]; load: () => Promise<Register> }[] = [
  { names: ['demo'], load: async () => (await import('./commands/demo.ts')).registerDemo },
  { names: ['install'], load: async () => (await import('./commands/install.ts')).registerInstall },
  { names: ['track'], load: async () => (await import('./commands/track.ts')).registerTrack },
  { names: ['add'], load: async () => (await import('./commands/add.ts')).registerAdd },
  { names: ['diff'], load: async () => (await import('./commands/diff.ts')).registerDiff },
  { names: ['checkout'], load: async () => (await import('./commands/checkout.ts')).registerCheckout },
  { names: ['switch', 'clone'], load: async () => (await import('./commands/switch.ts')).registerSwitch },
  { names: ['inspect'], load: async () => (await import('./commands/inspect.ts')).registerInspect },
  { names: ['convert'], load: async () => (await import('./commands/convert.ts')).registerConvert },
  { names: ['log'], load: async () => (await import('./commands/log.ts')).registerLog },
  { names: ['gc'], load: async () => (await import('./commands/gc.ts')).registerGc },
  { names: ['filter-process'], load: async () => (await import('./commands/filter.ts')).registerFilter },
  { names: ['textconv'], load: async () => (await import('./commands/textconv.ts')).registerTextconv },
  { names: ['pre-push'], load: async () => (await import('./commands/hooks.ts')).registerHooks },
  { names: ['merge-driver', 'merge', 'resolve'], load: async () => (await import('./commands/merge.ts')).registerMerge },
  { names: ['merge-models'], load: async () => (await import('./commands/merge-models.ts')).registerMergeModels },
  { names: ['serve'], load: async () => (await import('./commands/serve.ts')).registerServe },
  { names: ['fetch', 'pull'], load: async () => (await import('./commands/fetch.ts')).registerFetch },
  { names: ['fsck'], load: async () => (await import('./commands/fsck.ts')).registerFsck },
  { names: ['migrate'], load: async () => (await import('./commands/migrate.ts')).registerMigrate },
];

export const VERSION = '0.1.0';

/** commander's error class, once commander is loaded (no commander error can exist before). */
let commanderError: typeof CommanderError | undefined;

/** Exit code of a command; commands write their own output. */
export type ExitCode = number;

/** The program with the commands `only` names (all of them when `only` is undefined). */
export async function buildProgram(only?: string): Promise<Command> {
  // (imported here: the commands in direct.ts run without it)
  const { Command, CommanderError: errorClass } = await import('commander');
  commanderError = errorClass;
  const program = new Command('git-theta')
    .description('Version control for machine-learning models: git tracks each tensor of a checkpoint on its own.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const wanted = COMMANDS.filter((c) => only === undefined || c.names.includes(only));
  const registers = await Promise.all(wanted.map((c) => c.load()));
  for (const register of registers) register(program);
  return program;
}

/** Run the CLI; resolves to the process exit code. Never throws for expected errors. */
export async function main(argv: string[]): Promise<ExitCode> {
  setRawArgv(argv);
  endQuietlyOnEpipe();
  try {
    // the commands git runs per file or per push, in the shapes git uses: no commander program
    const direct = directCommand(argv, VERSION);
    if (direct) {
      await direct.run(direct.registries === 'none' ? Promise.resolve() : prepareCommand(argv[2], direct.registries === 'formats'));
      return typeof process.exitCode === 'number' ? process.exitCode : 0;
    }
    const sub = argv[2];
    // --version / -V need no command; a known command loads only its module; anything else (help,
    // a typo that commander answers with a suggestion) loads them all
    const known = sub !== undefined && COMMANDS.some((c) => c.names.includes(sub));
    const versionOnly = sub === '--version' || sub === '-V';
    // (in this order: a command's help text may list the strategies registered when it registers)
    const program = await buildProgram(versionOnly ? '' : known ? sub : undefined);
    if (!versionOnly) await prepareCommand(sub);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

/**
 * What every command but --version sees: the built-in formats, update types and merge strategies
 * registered, as when all command modules were imported (reading the Python tool's metadata needs
 * 'pytorch'), the fast CRC-32, and the plug-ins named in git config. The plug-ins' `git config`
 * call runs while the registries load (a plug-in registers after the built-ins: src/plugins.ts
 * imports the registries it hands to the plug-in). `formatsOnly`: textconv, which looks up formats
 * alone, skips importing the update types and merge strategies (a plug-in still brings them), and
 * leaves the kernels to its checkpoint path (getKernels() also switches CRC-32 to them): a
 * metadata file needs none.
 */
async function prepareCommand(sub: string | undefined, formatsOnly = false): Promise<void> {
  const plugins = sub && !sub.startsWith('-') && sub !== 'help' && sub !== 'install'
    ? import('./plugins.ts').then((m) => m.loadConfiguredPlugins())
    : undefined;
  const [kernels] = await Promise.all([
    formatsOnly || import('../../core/kernels.ts'), import('../../formats/index.ts'),
    formatsOnly || import('../../updates/index.ts'), formatsOnly || import('../../merges/index.ts'),
  ]);
  // zip-based formats (PyTorch, npz) checksum every entry
  await Promise.all([kernels === true ? undefined : kernels.useFastCrc32(), plugins]);
}

export function reportError(err: unknown): ExitCode {
  if (commanderError && err instanceof commanderError) {
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
