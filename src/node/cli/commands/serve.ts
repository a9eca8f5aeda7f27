import type { Command } from 'commander';
import { ThetaError } from '../../../core/errors.ts';
import { gitCommonDir } from '../../git/git.ts';
import { startServer } from '../../serve/server.ts';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve a repository over HTTP: git smart HTTP (through git http-backend), the git-lfs batch API for its objects, ' +
        'CORS for browsers, and the web page. Loopback only and read-only unless told otherwise.',
    )
    .addHelpText('after', `
Who may do what:
  Host       only requests addressed to localhost, 127.0.0.1, [::1], the --host name (unless 0.0.0.0/::)
             and each --allow-host name are answered (others get 421): this stops DNS rebinding.
  reading    GET/HEAD, clone and fetch (git-upload-pack), LFS batch downloads: from any origin
             (Access-Control-Allow-Origin: *, no credentials).
  writing    LFS uploads (batch upload, PUT) and pushes (git-receive-pack): only with --allow-push;
             from a web page (a request with an Origin header) only if its origin is given with
             --cors-origin; and with --token T, only with T as a Bearer token or as the password of
             Basic credentials (git asks its credential helper; any user name), compared in constant time.
Examples:
  git theta serve --allow-push                                   push over loopback, no token
  git theta serve --host 0.0.0.0 --allow-host models.lan --allow-push --token "$(openssl rand -hex 16)"`)
    .argument('[repo]', 'a bare repository or a work tree (default: the current repository)')
    .option('--port <n>', 'port to listen on (0 = any free port)', '8080')
    .option('--host <address>', 'address to listen on (anything but loopback exposes the repository to the network)', '127.0.0.1')
    .option('--allow-push', 'accept git pushes and LFS uploads (with no --token, anyone who can reach the port may push: keep it on loopback)')
    .option('--allow-host <name>', 'also answer requests whose Host header names <name> (repeatable)', collect, [] as string[])
    .option('--cors-origin <origin>', 'let web pages from <origin> (e.g. https://app.example) write, with --allow-push (repeatable)', collect, [] as string[])
    .option('--token <token>', 'writes need this token (Bearer, or the password of Basic credentials); better given as THETA_SERVE_TOKEN, since other users can see a command line')
    .option('--verbose', 'log every request on stderr')
    .action(async (repo: string | undefined, o: { port: string; host: string; allowPush?: boolean; verbose?: boolean; allowHost: string[]; corsOrigin: string[]; token?: string }) => {
      const token = o.token ?? process.env.THETA_SERVE_TOKEN;
      if (token !== undefined && token.length < 8) throw new ThetaError('E_ARGUMENT', '--token must be at least 8 characters (e.g. openssl rand -hex 16)', {});
      for (const origin of o.corsOrigin) {
        if (!/^https?:\/\/[^/\s]+$/i.test(origin.replace(/\/$/, ''))) throw new ThetaError('E_ARGUMENT', `--cors-origin takes an origin like https://app.example:8443 (got ${JSON.stringify(origin)})`, {});
      }
      if (o.corsOrigin.length && !o.allowPush) process.stderr.write('git-theta serve: note: --cors-origin only matters with --allow-push (reads are open to every origin)\n');
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ThetaError('E_ARGUMENT', `--port must be 0..65535 (got '${o.port}')`, {});
      const path = repo ?? (await gitCommonDir(process.cwd()));
      const s = await startServer({
        repo: path,
        host: o.host,
        port,
        allowPush: !!o.allowPush,
        allowHosts: o.allowHost,
        corsOrigins: o.corsOrigin,
        token,
        log: o.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined,
      });
      process.stdout.write(`git-theta serve: ${s.repoUrl} (${o.allowPush ? 'push allowed' : 'read-only'}); page at ${s.url}/\n`);
      process.stdout.write(`  clone with: git clone ${s.repoUrl}\n`);
      if (!/^(127\.|::1$|localhost$|\[::1\]$)/.test(o.host)) {
        process.stderr.write(`git-theta serve: warning: listening on ${o.host}, reachable from other machines${o.allowPush && !token ? ', and anyone there may push (set --token)' : ''}\n`);
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
