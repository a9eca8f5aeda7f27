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

/**
 * The command line git runs: THETA_COMMAND if set, else this Node and this script by absolute
 * path, so it works without git-theta on PATH and with several versions installed.
 */
export function cliCommand(): string {
  return process.env.THETA_COMMAND ?? `${shellQuote(process.execPath)} ${shellQuote(binPath())}`;
}
