import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ThetaError } from '../../../core/errors.ts';
import { looksLikeMetadata } from '../../../theta/metadata.ts';
import { git, worktreeRoot } from '../../git/git.ts';
import { fetchObjects, objectsAtRefs } from '../../lfs/lfs-node.ts';

const log = (s: string) => process.stderr.write(s);

/** Does the working-tree file hold raw metadata (or is it absent), i.e. was it never rebuilt? */
async function needsCheckout(root: string, path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(join(root, path), 'r');
  } catch {
    return true;
  }
  try {
    const head = new Uint8Array(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    return looksLikeMetadata(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export function registerFetch(program: Command): void {
  program
    .command('fetch')
    .description('Download, in batches, every object the theta-tracked files at <ref>... (default: HEAD) need and the local store lacks')
    .argument('[remote]', 'the remote to fetch from (default: the current branch\'s, else origin)')
    .argument('[refs...]', 'revisions whose files to fetch objects for (default: HEAD)')
    .action(async (remote: string | undefined, refs: string[]) => {
      await fetchObjects({ cwd: process.cwd(), remote, refs, log });
    });

  program
    .command('pull')
    .description("'git pull', then fetch the objects HEAD needs, then rebuild tracked files whose objects were missing")
    .argument('[args...]', "arguments for 'git pull' (remote, branch, options)")
    .allowUnknownOption(true)
    .action(async (args: string[]) => {
      const code = await new Promise<number>((res) => {
        const child = spawn('git', ['pull', ...args], { stdio: 'inherit' });
        child.on('error', () => res(1));
        child.on('close', (c) => res(c ?? 1));
      });
      if (code !== 0) throw new ThetaError('E_GIT', `git pull failed (exit ${code})`, { code });
      const remote = args.find((a) => !a.startsWith('-'));
      const r = await fetchObjects({ cwd: process.cwd(), remote, refs: ['HEAD'], log });
      if (!r.missing.length) return;
      // files whose objects were missing: rebuild them if git left them unbuilt (absent or raw metadata)
      const root = await worktreeRoot();
      const missing = new Set(r.missing.map((x) => x.oid));
      const paths = new Set<string>();
      for (const x of await objectsAtRefs(process.cwd(), ['HEAD'])) if (missing.has(x.oid)) paths.add(x.path);
      const redo: string[] = [];
      for (const p of paths) if (await needsCheckout(root, p)) redo.push(p);
      if (redo.length) {
        await git(['checkout', 'HEAD', '--', ...redo], { cwd: root, inheritStderr: true });
        log(`git-theta: rebuilt ${redo.length} file${redo.length === 1 ? '' : 's'}: ${redo.join(', ')}\n`);
      }
    });
}
