/**
 * The floor for a checkout through git's filter pipe: a long-running filter process that does
 * nothing but store each file whole on clean (under .git/null-filter/<sha256>) and stream the same
 * bytes back to git on smudge, in 1 MiB reads. bench/git.ts times `git checkout` with it beside
 * git-lfs and git-theta, so what our smudge costs on top of the pipe can be read off.
 *
 *   git config filter.null.process "node build/js/bench/null-filter.js"
 */
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readSync, closeSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { runFilterProcess } from '../src/node/git/filter-process.ts';

const dir = join(execFileSync('git', ['rev-parse', '--absolute-git-dir']).toString().trim(), 'null-filter');
mkdirSync(dir, { recursive: true });

await runFilterProcess({
  clean: async (_req, content, out) => {
    const tmp = join(dir, `tmp-${process.pid}`);
    const fd = openSync(tmp, 'w');
    const h = createHash('sha256');
    for await (const c of content) { h.update(c); writeSync(fd, c); }
    closeSync(fd);
    const oid = h.digest('hex');
    renameSync(tmp, join(dir, oid));
    await out.write(new TextEncoder().encode(`null-filter ${oid}\n`));
  },
  smudge: async (_req, content, out) => {
    let text = '';
    for await (const c of content) text += Buffer.from(c).toString();
    const oid = text.trim().split(' ')[1];
    const fd = openSync(join(dir, oid), 'r');
    try {
      for (;;) {
        const buf = new Uint8Array(1 << 20);
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n <= 0) break;
        await out.write(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
  },
});
