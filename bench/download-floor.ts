/**
 * The floor of a clone's download in Node, without git or git-theta's store: a 0.28 GB GPT-like
 * safetensors (`--gb` to change) is added with `git theta add` and served by `git theta serve` on
 * loopback (as bench/git.ts serves it); then, in this process, one LFS batch request and a GET of
 * every object, four at a time, each body hashed with SHA-256 — through fetch() (its web stream),
 * through undici's request() (its Node stream), and through request() with each object also
 * written to a file. Prints wall and CPU seconds per way, medians of `--runs` rounds (the ways
 * alternate within each round). What a clone spends beyond the last row is git, the store's logic
 * and writing the checkpoint itself.
 *
 *   node build/js/bench/download-floor.js [--gb 0.3] [--runs 3]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetch as undiciFetch, request } from 'undici';
import { gptLayout, writeModel } from './gpt-layout.ts';
import { serve } from './serve.ts';
import { parseMetadata, referencedObjects } from '../src/theta/metadata.ts';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const BIN = join(root, 'bin/git-theta.js');
const arg = (name: string, dflt: number) => (process.argv.includes(name) && Number(process.argv[process.argv.indexOf(name) + 1])) || dflt;
const gb = arg('--gb', 0.3);
const runs = arg('--runs', 3);
const GIT_ENV = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x' };

function run(cwd: string, cmd: string[]): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd, env: GIT_ENV, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

type Way = 'fetch' | 'request' | 'request+write';

async function download(api: string, objects: { oid: string; size: number }[], way: Way, dir: string): Promise<{ wall: number; cpu: number }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await undiciFetch(`${api}/objects/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.git-lfs+json', accept: 'application/vnd.git-lfs+json' },
    body: JSON.stringify({ operation: 'download', transfers: ['basic'], objects }),
  });
  const answer = (await r.json()) as { objects: { oid: string; actions: { download: { href: string; header?: Record<string, string> } } }[] };
  const queue = [...answer.objects];
  const one = async () => {
    for (let o = queue.shift(); o; o = queue.shift()) {
      const a = o.actions.download;
      const h = createHash('sha256');
      const fd = way === 'request+write' ? openSync(join(dir, o.oid), 'wx') : -1;
      if (way === 'fetch') {
        const res = await undiciFetch(a.href, { headers: a.header ?? {} });
        const reader = res.body!.getReader();
        for (let c = await reader.read(); !c.done; c = await reader.read()) h.update(c.value);
      } else {
        const res = await request(a.href, { headers: a.header ?? {} });
        for await (const c of res.body) {
          h.update(c);
          if (fd >= 0) writeSync(fd, c);
        }
      }
      if (fd >= 0) closeSync(fd);
      if (h.digest('hex') !== o.oid) throw new Error(`${o.oid}: wrong bytes`);
    }
  };
  await Promise.all([one(), one(), one(), one()]);
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'theta-bench-dl-'));
  const repo = join(work, 'repo');
  run(work, ['git', 'init', '-q', repo]);
  run(repo, [process.execPath, BIN, 'install', '--local']);
  run(repo, [process.execPath, BIN, 'track', '*.safetensors']);
  await writeModel(join(repo, 'model.safetensors'), gptLayout(gb * 1e9, { d: 1024, vocab: 16384, positions: 2048 }), new Set(), 1);
  run(repo, [process.execPath, BIN, 'add', '.gitattributes', 'model.safetensors']);
  run(repo, ['git', 'commit', '-q', '-m', 'v1']);
  const meta = parseMetadata(new TextEncoder().encode(run(repo, ['git', 'show', 'HEAD:model.safetensors'])), 'model.safetensors');
  const objects = referencedObjects(meta).map((r) => ({ oid: r.oid, size: r.size }));
  const bytes = objects.reduce((a, o) => a + o.size, 0);

  const server = await serve(repo);
  const url = server.url;
  const api = `${url}/info/lfs`;
  const ways: Way[] = ['fetch', 'request', 'request+write'];
  const got: Record<Way, { wall: number; cpu: number }[]> = { fetch: [], request: [], 'request+write': [] };
  try {
    for (let round = 0; round < runs; round++) {
      for (const way of [...ways.slice(round % 3), ...ways.slice(0, round % 3)]) {
        const dir = mkdtempSync(join(work, 'objects-'));
        got[way].push(await download(api, objects, way, dir));
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await server.stop();
  }
  const median = (xs: number[]) => { const a = [...xs].sort((x, y) => x - y); return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2; };
  console.log(`${objects.length} objects, ${(bytes / 1e6).toFixed(0)} MB, GET 4 at a time from git theta serve on loopback, SHA-256 each; medians of ${runs}`);
  for (const way of ways) {
    const w = got[way].map((x) => x.wall);
    console.log(`${way.padEnd(14)} ${median(w).toFixed(3)} s wall [${Math.min(...w).toFixed(3)}-${Math.max(...w).toFixed(3)}], ${median(got[way].map((x) => x.cpu)).toFixed(3)} s CPU`);
  }
  rmSync(work, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
