/** How git should call this program back (filter, drivers, hooks). */
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';

/** Absolute path of bin/git-theta.js (from build/js/src/node/cli/self.js). */
export function binPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '../../../../../bin/git-theta.js');
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The runtime running us, as a command prefix: Node itself, or `deno run -A` under Deno (git's child needs the same permissions). */
function runtimeCommand(): string {
  const deno = 'Deno' in globalThis;
  return deno ? `${shellQuote(process.execPath)} run -A` : shellQuote(process.execPath);
}

/**
 * The command line git runs: THETA_COMMAND if set, else this runtime (Node, or Deno) and this
 * script by absolute path, so it works without git-theta on PATH and with several versions installed.
 */
export function cliCommand(): string {
  return process.env.THETA_COMMAND ?? `${runtimeCommand()} ${shellQuote(binPath())}`;
}
