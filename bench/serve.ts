/** The benchmarks' HTTP server: `git theta serve` on a free loopback port (git smart HTTP and the LFS batch API). */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(fileURLToPath(import.meta.url), '../../../../bin/git-theta.js');

/** `git theta serve <dir>` on a free loopback port; resolves with its git URL and a stop function. */
export function serve(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'serve', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\S+\.git)/.exec(out);
      if (m) resolve({ url: m[1], stop: async () => { child.kill(); await exited; } });
    });
    void exited.then(() => reject(new Error(`git theta serve ${dir} exited: ${out}`)));
  });
}
