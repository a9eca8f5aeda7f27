/**
 * git-lfs's own integration-test server (lfstest-gitserver) for our tests: found, built once per run
 * into a temporary directory, started on a fresh state directory, stopped after.
 *
 * Where it is: `THETA_LFS_TEST_SERVER`, else `<repoRoot>/../shared/lfs-test-server` (CI puts a copy of
 * `shared/` beside the clone). When that directory is absent, a plain clone skips the suites that need
 * it (one line says so); with `CI` set the absence is a failure. Used by the Node suite and by
 * scripts/test.mjs (which starts it for the Deno rows), so it imports nothing but Node built-ins.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root, from test/node/ (sources) or build/js/test/node/ (compiled). */
export const REPO_ROOT = here.includes('/build/js/') ? join(here, '../../../..') : join(here, '../..');

export interface LfsTestServerLocation {
  /** The server's source directory (with build.sh, start.sh, mkrepo.sh), or null when absent. */
  dir: string | null;
  /** Where it was looked for and how to provide it (for the skip line or the failure). */
  reason: string;
}

export function locateLfsTestServer(env: NodeJS.ProcessEnv = process.env): LfsTestServerLocation {
  const fromEnv = env.THETA_LFS_TEST_SERVER;
  const dir = resolve(fromEnv || join(REPO_ROOT, '..', 'shared', 'lfs-test-server'));
  const how = fromEnv ? `THETA_LFS_TEST_SERVER=${fromEnv}` : `${dir} (set THETA_LFS_TEST_SERVER to git-lfs's lfstest-gitserver directory with build.sh/start.sh)`;
  if (!existsSync(join(dir, 'build.sh')) || !existsSync(join(dir, 'start.sh'))) return { dir: null, reason: `no lfs-test-server at ${how}` };
  return { dir, reason: `lfs-test-server at ${dir}` };
}

export interface LfsTestServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** https://127.0.0.1:PORT and the PEM certificate it presents. */
  sslUrl: string;
  certPath: string;
  stateDir: string;
  /** Create a bare repository NAME (its name selects server behaviours); returns its git URL. */
  mkrepo(name: string): Promise<string>;
  /** The server's log so far (e.g. lines `storage PUT <oid> repo: <name>`). */
  log(): string;
  stop(): Promise<void>;
}

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { env, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${[cmd, ...args].join(' ')} failed: ${(stderr || err.message).trim().split('\n').slice(-3).join(' | ')}`));
      else res(stdout);
    });
  });
}

let buildDir: string | null = null;
let built: Promise<string> | null = null;

/** Build once per process (build.sh into a temporary directory; the source directory may be read-only). */
function buildOnce(dir: string): Promise<string> {
  if (!built) {
    buildDir = mkdtempSync(join(tmpdir(), 'lfstest-build-'));
    const out = join(buildDir, 'lfstest-gitserver');
    built = sh('bash', [join(dir, 'build.sh'), out]).then(
      () => out,
      (e: Error) => {
        throw new Error(`could not build lfstest-gitserver (needs Go: apt-get install -y golang-go golang-github-klauspost-compress-dev golang-github-cespare-xxhash-dev): ${e.message}`);
      },
    );
  }
  return built;
}

/** Build (once) and start the server on a fresh state directory. */
export async function startLfsTestServer(dir: string): Promise<LfsTestServer> {
  const bin = await buildOnce(dir);
  const stateDir = mkdtempSync(join(tmpdir(), 'lfstest-state-'));
  // start.sh builds into $TMPDIR/lfstest-gitserver unless it is up to date: point it at our build
  const url = (await sh('bash', [join(dir, 'start.sh'), stateDir], { ...process.env, TMPDIR: dirname(bin) })).trim().split('\n').pop()!;
  const sslUrl = readFileSync(join(stateDir, 'sslurl'), 'utf8').trim();
  const pid = Number(readFileSync(join(stateDir, 'pid'), 'utf8').trim());
  return {
    url,
    sslUrl,
    certPath: join(stateDir, 'cert'),
    stateDir,
    mkrepo: async (name) => (await sh('bash', [join(dir, 'mkrepo.sh'), stateDir, name])).trim(),
    log: () => {
      try {
        return readFileSync(join(stateDir, 'server.log'), 'utf8');
      } catch {
        return '';
      }
    },
    async stop() {
      try {
        process.kill(pid);
      } catch {
        // already gone
      }
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Remove the build directory (call once at the end of a run). */
export function cleanupLfsTestServerBuild(): void {
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  buildDir = null;
  built = null;
}
