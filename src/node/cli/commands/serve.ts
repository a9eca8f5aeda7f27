import type { Command } from 'commander';
import { ThetaError } from '../../../core/errors.ts';
import { gitCommonDir } from '../../git/git.ts';
import { startServer } from '../../serve/server.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve a repository over HTTP: git smart HTTP (through git http-backend), the git-lfs batch API for its objects, ' +
        'CORS for browsers, and the web page. Loopback only and read-only unless told otherwise.',
    )
    .argument('[repo]', 'a bare repository or a work tree (default: the current repository)')
    .option('--port <n>', 'port to listen on (0 = any free port)', '8080')
    .option('--host <address>', 'address to listen on (anything but loopback exposes the repository to the network)', '127.0.0.1')
    .option('--allow-push', 'accept git pushes and LFS uploads (no authentication: keep it on loopback)')
    .option('--verbose', 'log every request on stderr')
    .action(async (repo: string | undefined, o: { port: string; host: string; allowPush?: boolean; verbose?: boolean }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ThetaError('E_ARGUMENT', `--port must be 0..65535 (got '${o.port}')`, {});
      const path = repo ?? (await gitCommonDir(process.cwd()));
      const s = await startServer({
        repo: path,
        host: o.host,
        port,
        allowPush: !!o.allowPush,
        log: o.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined,
      });
      process.stdout.write(`git-theta serve: ${s.repoUrl} (${o.allowPush ? 'push allowed' : 'read-only'}); page at ${s.url}/\n`);
      process.stdout.write(`  clone with: git clone ${s.repoUrl}\n`);
      if (!/^(127\.|::1$|localhost$|\[::1\]$)/.test(o.host)) {
        process.stderr.write(`git-theta serve: warning: listening on ${o.host}, reachable from other machines, with no authentication\n`);
      }
      await new Promise<void>((done) => {
        const stop = () => {
          s.close().then(done, done);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
