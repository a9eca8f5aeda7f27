import type { Command } from 'commander';
import { collect } from '../../../core/io.ts';
import { runFilterProcess } from '../../git/filter-process.ts';
import { ThetaRepo } from '../../repo/theta-repo.ts';
import { ensurePrePushHook } from '../../git/ensure-hook.ts';
import { faultPoint } from '../../faults.ts';
import { workProgress } from '../progress.ts';
import { ENV_FORMAT, ENV_UPDATE_DATA, ENV_UPDATE_TYPE } from './add.ts';

/** Set to 1: smudge hands git the metadata as it is (git-lfs's GIT_LFS_SKIP_SMUDGE); checkpoints are then written by `git theta checkout`. */
export const ENV_SKIP_SMUDGE = 'GIT_THETA_SKIP_SMUDGE';

/** `git-theta filter-process` (cli/direct.ts runs it without commander: every plain checkout and add starts it). */
export async function filterProcessCommand(): Promise<void> {
  // a repository the filter runs in needs the pre-push hook (a global install + plain clone has none);
  // its git call runs alongside the repository's set-up
  const [repo] = await Promise.all([ThetaRepo.open(), ensurePrePushHook(process.cwd())]);
  // git hands its stderr to the filter: a "Filtering content" line like git-lfs's, on a terminal only
  const progress = workProgress('Filtering content');
  const counted = async function* (content: AsyncIterable<Uint8Array>) {
    for await (const c of content) { progress.bytes(c.length); yield c; }
  };
  const summary = await runFilterProcess({
    clean: async (req, content, out) => {
      const meta = await repo.clean(req.pathname, counted(content), {
        updateType: process.env[ENV_UPDATE_TYPE],
        updateData: process.env[ENV_UPDATE_DATA],
        format: process.env[ENV_FORMAT] || undefined,
      });
      await out.write(meta);
      progress.item();
    },
    smudge: async (req, content, out) => {
      const blob = await collect(content);
      // `git theta switch` / `clone` let git write the metadata and write the checkpoints themselves
      if (process.env[ENV_SKIP_SMUDGE] === '1') { await out.write(blob); progress.item(); return; }
      await repo.smudge(req.pathname, blob, { write: async (b) => { await out.write(b); progress.bytes(b.length); faultPoint('smudge-write'); }, close: async () => {} });
      progress.item();
    },
  });
  progress.done();
  process.exitCode = 0;
  void summary;
}

export function registerFilter(program: Command): void {
  program
    .command('filter-process', { hidden: true })
    .description("(run by git) the 'theta' clean/smudge filter, speaking git's long-running filter protocol on stdin/stdout")
    .action(filterProcessCommand);
}
