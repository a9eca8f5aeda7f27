import type { Command } from 'commander';
import { extname } from 'node:path';
import { ArgumentError } from '../../../core/errors.ts';
import { getKernels } from '../../../core/kernels.ts';
import { getFormat, listFormats } from '../../../formats/index.ts';
import { mergeFiles } from '../../../merges/merge-files.ts';
import { listMergeStrategies, parseStrategySpec } from '../../../merges/index.ts';
import { writeCheckpointTo } from '../../files/output-files.ts';
import { openCheckpointFile } from '../../files/open-checkpoint.ts';
import { readerWithProgress, workProgress } from '../progress.ts';

export function registerMergeModels(program: Command): void {
  program
    .command('merge-models')
    .description('Merge checkpoint files outside git with a merge strategy, streaming tensor by tensor')
    .argument('<models...>', 'two or more checkpoints (the first sets the tensor order; alpha weighs it)')
    .requiredOption('-o, --output <file>', 'where to write the merged checkpoint (format from its extension, else the first model\'s; for tfjs, the model.json path, shards beside it)')
    .requiredOption('-s, --strategy <spec>', `one of ${listMergeStrategies().filter((s) => s.name !== 'fail').map((s) => s.name).join(', ')}, with parameters as name:key=value,...`)
    .option('--base <checkpoint>', 'the common base (needed by task-arithmetic, ties, dare)')
    .option('--format <id>', 'output format id')
    .action(async (paths: string[], o: { output: string; strategy: string; base?: string; format?: string }) => {
      if (paths.length < 2) throw new ArgumentError('give at least two models to merge');
      const choice = parseStrategySpec(o.strategy);
      const readers = await Promise.all(paths.map((p) => openCheckpointFile(p)));
      const base = o.base ? await openCheckpointFile(o.base) : undefined;
      const ext = extname(o.output).toLowerCase();
      const format = o.format ? getFormat(o.format) : listFormats().find((f) => f.extensions.includes(ext)) ?? getFormat(readers[0].format);
      let n = 0;
      const progress = workProgress('git-theta: merge-models', { unit: 'tensors' });
      try {
        const merged = mergeFiles({
          models: readers.map((reader, i) => ({ reader: readerWithProgress(reader, progress, false), label: paths[i] })),
          base: base ? { reader: readerWithProgress(base, progress, false), label: o.base! } : undefined,
          choice,
          kernels: await getKernels(),
          onTensor: () => { n++; progress.item(); },
        });
        await writeCheckpointTo(o.output, format, merged);
      } finally {
        progress.done();
        for (const r of [...readers, ...(base ? [base] : [])]) await r.close();
      }
      process.stderr.write(`git-theta: wrote ${o.output} (${format.id}, ${n} tensors, ${o.strategy})\n`);
    });
}
