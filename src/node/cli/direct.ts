/**
 * The commands git runs on its own, once per file or per push (textconv, the merge driver, the
 * filter process, the pre-push hook), and `--version`, run without building commander's program:
 * commander and the command table are most of a bare start-up's module loading (bench/startup.ts).
 *
 * Only the exact argument shapes git uses are taken here; any other shape (an option, a missing or
 * extra argument, `--help`) returns undefined and goes through commander as before, so its usage
 * errors and help text stay its own. test/node/startup.test.ts checks which modules these load.
 */

/**
 * A command ready to run, and which registries it needs before its plug-ins load: 'all' (formats,
 * update types, merge strategies: what every commander command sees), 'formats' (textconv, which
 * only reads checkpoints and metadata), 'none' (`--version`, which prints a constant).
 */
export interface DirectCommand {
  registries: 'all' | 'formats' | 'none';
  /** Runs the command once `ready` (the registries and plug-ins) is; its module loads meanwhile. */
  run(ready: Promise<void>): Promise<void>;
}

/** The command module, imported while `ready` settles (as commander's path imports it before the plug-ins load). */
async function loaded<M>(module: Promise<M>, ready: Promise<void>): Promise<M> {
  return (await Promise.all([module, ready]))[0];
}

const positional = (args: string[]) => args.every((a) => !a.startsWith('-'));

/** The command `argv` (process.argv) names when it is one of the shapes above, else undefined. */
export function directCommand(argv: string[], version: string): DirectCommand | undefined {
  const [sub, ...args] = argv.slice(2);
  if ((sub === '--version' || sub === '-V') && args.length === 0) {
    // what commander's .version() prints
    return { registries: 'none', run: async () => { process.stdout.write(`${version}\n`); } };
  }
  if (!positional(args)) return undefined;
  if (sub === 'textconv' && args.length === 1) {
    return { registries: 'formats', run: async (ready) => (await loaded(import('./commands/textconv.ts'), ready)).textconvCommand(args[0]) };
  }
  if (sub === 'filter-process' && args.length === 0) {
    return { registries: 'all', run: async (ready) => (await loaded(import('./commands/filter.ts'), ready)).filterProcessCommand() };
  }
  if (sub === 'merge-driver' && (args.length === 3 || args.length === 4)) {
    return { registries: 'all', run: async (ready) => (await loaded(import('./commands/merge.ts'), ready)).mergeDriverCommand(args[0], args[1], args[2], args[3]) };
  }
  if (sub === 'pre-push' && args.length <= 2) {
    return { registries: 'all', run: async (ready) => (await loaded(import('./commands/hooks.ts'), ready)).prePushCommand(args[0], args[1]) };
  }
  return undefined;
}
