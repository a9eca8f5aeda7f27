import type { Command } from 'commander';
import { extname } from 'node:path';
import { ArgumentError } from '../../../core/errors.ts';
import { convertCheckpoint } from '../../../formats/convert.ts';
import { getFormat, listFormats } from '../../../formats/index.ts';
import { writeOutput } from '../../files/output-files.ts';
import { openCheckpointFile } from '../../files/open-checkpoint.ts';
import { readerWithProgress, workProgress } from '../progress.ts';

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('Convert a checkpoint between formats (safetensors, pytorch, npy/npz, gguf, tfjs), streaming tensor by tensor')
    .argument('<input>', 'checkpoint to read (format detected from its content)')
    .argument('<output>', 'file to write (format from its extension unless --to is given); for tfjs, the model.json path')
    .option('--to <id>', `output format: ${listFormats().map((f) => f.id).join(', ')}`)
    .option('--from <id>', 'read the input as this format instead of detecting it')
    .option('--quantized <mode>', "quantized tensors: 'dequantize' to float32 (default), 'raw' bytes, or 'error'", 'dequantize')
    .action(async (input: string, output: string, o: { to?: string; from?: string; quantized: 'dequantize' | 'raw' | 'error' }) => {
      const ext = extname(output).toLowerCase();
      const target = o.to ? getFormat(o.to) : listFormats().find((f) => f.extensions.includes(ext));
      if (!target) throw new ArgumentError(`cannot tell the output format from '${output}'; give --to <id> (${listFormats().map((f) => f.id).join(', ')})`);
      if (!['dequantize', 'raw', 'error'].includes(o.quantized)) throw new ArgumentError(`--quantized must be dequantize, raw or error`);
      const progress = workProgress('git-theta: convert', { unit: 'tensors' });
      const reader = readerWithProgress(await openCheckpointFile(input, { format: o.from }), progress);
      try {
        await writeOutput(output, target, (sink) => convertCheckpoint(reader, target, sink, { quantized: o.quantized }));
      } finally {
        progress.done();
        await reader.close();
      }
      process.stderr.write(`git-theta: wrote ${output} (${target.id})\n`);
    });
}
