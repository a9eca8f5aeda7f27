import type { Command } from 'commander';
import { dirname, extname, resolve } from 'node:path';
import { ArgumentError } from '../../../core/errors.ts';
import type { ByteSink } from '../../../core/io.ts';
import { getKernels } from '../../../core/kernels.ts';
import { getFormat, listFormats } from '../../../formats/index.ts';
import { isShardIndexName, SHARDED_FORMAT_ID, type ShardedReader } from '../../../formats/sharded.ts';
import { shardedSafetensors, shardedSkeleton } from '../../../formats/sharded-rebuild.ts';
import { mergeFiles, type NonFloatChoice, type TensorReport } from '../../../merges/merge-files.ts';
import { mergeIntoFirst, skeletonOf } from '../../../merges/merge-into-first.ts';
import { listMergeStrategies, parseStrategySpec } from '../../../merges/index.ts';
import { writeCheckpointTo, writeOutput } from '../../files/output-files.ts';
import { openCheckpointFile } from '../../files/open-checkpoint.ts';
import { readerWithProgress, workProgress } from '../progress.ts';

interface Options { output: string; strategy: string; base?: string; format?: string; keepFloat?: boolean; nonFloat?: string; json?: boolean }

const NON_FLOAT = ['ours', 'theirs', 'base', 'fail'];

export function registerMergeModels(program: Command): void {
  program
    .command('merge-models')
    .description('Merge checkpoint files outside git with a merge strategy, streaming tensor by tensor; the result is the first model with merged tensor values')
    .argument('<models...>', 'two or more checkpoints (the first sets the tensors, their order and every non-tensor byte; alpha weighs it)')
    .requiredOption('-o, --output <file>', 'where to write the merged checkpoint (format from its extension, else the first model\'s; for tfjs, the model.json path, shards beside it; for a sharded safetensors model, an *.safetensors.index.json in another directory, shards beside it under their names)')
    .requiredOption('-s, --strategy <spec>', `one of ${listMergeStrategies().filter((s) => s.name !== 'fail').map((s) => s.name).join(', ')}, with parameters as name:key=value,...`)
    .option('--base <checkpoint>', 'the common base (needed by task-arithmetic, ties, dare)')
    .option('--format <id>', 'output format id (another format than the first model\'s writes a new file from the tensors alone)')
    .option('--keep-float', 'write quantized tensors as float32 (through the format\'s writer; non-tensor fields are not kept)')
    .option('--non-float <side>', 'integer and bool tensors that differ: ours, theirs, base or fail', 'fail')
    .option('--json', 'print {"output", "format", "strategy", "tensors": [{"name", "how", "scheme", "maxError", "rmsError"}]} on stdout')
    .action(async (paths: string[], o: Options) => {
      if (paths.length < 2) throw new ArgumentError('give at least two models to merge');
      if (!NON_FLOAT.includes(o.nonFloat ?? 'fail')) throw new ArgumentError(`--non-float takes ${NON_FLOAT.join(', ')}; got '${o.nonFloat}'`);
      const choice = parseStrategySpec(o.strategy);
      const readers = await Promise.all(paths.map((p) => openCheckpointFile(p)));
      const base = o.base ? await openCheckpointFile(o.base) : undefined;
      const ext = extname(o.output).toLowerCase();
      // a sharded safetensors model (named by its index) merged into an index: the first model's
      // index and shard headers, its shard names, beside the output
      const sharded = readers[0].format === SHARDED_FORMAT_ID && !o.keepFloat && !o.format && isShardIndexName(o.output);
      if (sharded && resolve(dirname(o.output)) === resolve(dirname(paths[0]))) {
        throw new ArgumentError(`${o.output}: a merged sharded model keeps ${paths[0]}'s shard file names, so it goes into another directory than ${paths[0]}`);
      }
      const firstFormat = sharded ? shardedSafetensors : listFormats().find((f) => f.id === readers[0].format);
      const format = sharded ? shardedSafetensors : o.format ? getFormat(o.format) : listFormats().find((f) => f.extensions.includes(ext)) ?? firstFormat ?? getFormat(readers[0].format);
      const intoFirst = !o.keepFloat && firstFormat !== undefined && format.id === firstFormat.id;
      const reports: TensorReport[] = [];
      let n = 0;
      const progress = workProgress('git-theta: merge-models', { unit: 'tensors' });
      const common = {
        models: readers.map((reader, i) => ({ reader: readerWithProgress(reader, progress, false), label: paths[i] })),
        base: base ? { reader: readerWithProgress(base, progress, false), label: o.base! } : undefined,
        choice,
        kernels: await getKernels(),
        nonFloat: (o.nonFloat ?? 'fail') as NonFloatChoice,
        onTensor: () => { n++; progress.item(); },
        onReport: (r: TensorReport) => { if (r.how === 'only-first' || r.how === 'dropped' || r.scheme) reports.push(r); },
      };
      try {
        if (intoFirst) {
          const again = await openCheckpointFile(paths[0]);
          let skeleton: Uint8Array;
          try {
            skeleton = await skeletonOf(again);
            if (sharded) skeleton = shardedSkeleton(skeleton, (again as ShardedReader).shardSkeletons());
          } finally { await again.close(); }
          // a multi-file model (TF.js) writes its entry file (model.json, under the first model's
          // name for it) first: that one goes to --output, the rest beside it
          let entry: string | undefined;
          await writeOutput(o.output, format, (sink) =>
            mergeIntoFirst({ ...common, format, skeleton, sink: typeof sink === 'function' ? (p: string) => sink((entry ??= p) === p ? 'model.json' : p) : (sink as ByteSink) }));
        } else {
          await writeCheckpointTo(o.output, format, mergeFiles(common));
        }
      } finally {
        progress.done();
        for (const r of [...readers, ...(base ? [base] : [])]) await r.close();
      }
      for (const r of reports) {
        if (r.how === 'only-first') process.stderr.write(`git-theta: '${r.name}' is only in ${paths[0]}: kept as it is\n`);
        else if (r.how === 'dropped') process.stderr.write(`git-theta: '${r.name}' is only in ${r.model}: dropped (the first model sets the tensors)\n`);
        else process.stderr.write(`git-theta: '${r.name}' requantized to ${r.scheme}: max error ${r.maxError!.toPrecision(3)}, rms ${r.rmsError!.toPrecision(3)} against the float merge\n`);
      }
      process.stderr.write(`git-theta: wrote ${o.output} (${format.id}, ${n} tensors, ${o.strategy}${intoFirst ? ', everything else as in ' + paths[0] : ''})\n`);
      if (o.json) process.stdout.write(JSON.stringify({ output: o.output, format: format.id, strategy: o.strategy, keptFirst: intoFirst, tensors: reports }) + '\n');
    });
}
