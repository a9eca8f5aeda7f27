import type { Command } from 'commander';
import pc from 'picocolors';
import { stat } from 'node:fs/promises';
import { inspectCheckpoint, type InspectReport, type InspectTensor } from '../../../inspect.ts';
import { tfjsModelsIn } from '../../files/open-checkpoint.ts';
import { useNodeSha256 } from '../../files/sha256-node.ts';
import { readerWithProgress, workProgress } from '../progress.ts';
import { fmtNum } from '../format-number.ts';

export { fmtNum };

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('Show each tensor of a checkpoint (dtype, shape, bytes, mean, std, min, max, L2 norm, NaN/Inf count), streaming')
    .argument('<file>', 'checkpoint file (or a directory of TF.js models), or <rev>:<path> (a file at a revision, also one git-lfs stores): safetensors (or a sharded model.safetensors.index.json), PyTorch .pt/.bin, NumPy .npy/.npz, GGUF, TF.js model.json')
    .option('--json', 'print one JSON object: {"format", "tensors": [{"name", "dtype", "storage_dtype" (quantized tensors), "shape", "bytes", "stats": {...}}]} ({"models": [{"path", ...}]} for a directory of several TF.js models)')
    .option('--format <id>', 'read as this format instead of detecting it')
    .option('--sha256', 'also give each tensor\'s SHA-256 (of its contiguous little-endian bytes)')
    .action(async (file: string, opts: { json?: boolean; format?: string; sha256?: boolean }) => {
      // a directory of several TF.js models: each model in turn
      const st = await stat(file).catch(() => null);
      const models = st?.isDirectory() && !opts.format ? await tfjsModelsIn(file) : [];
      if (models.length > 1) {
        const reports: (InspectReport & { path: string })[] = [];
        for (const m of models) {
          if (!opts.json) process.stdout.write(pc.bold(`${m}:`) + '\n');
          reports.push({ path: m, ...(await inspectOne(m, opts)) });
        }
        if (opts.json) process.stdout.write(JSON.stringify({ models: reports }) + '\n');
        return;
      }
      const report = await inspectOne(file, opts);
      if (opts.json) process.stdout.write(JSON.stringify(report) + '\n');
    });
}

async function inspectOne(file: string, opts: { json?: boolean; format?: string; sha256?: boolean }): Promise<InspectReport> {
  // a file, or <rev>:<path> (a file at a revision, also one git-lfs stores)
  const { openInspectTarget } = await import('../../repo/lfs-models.ts'); // heavy (git, LFS); textconv imports this module
  const progress = workProgress('git-theta: inspect', { unit: 'tensors' });
  const reader = readerWithProgress(await openInspectTarget(file, opts.format, (m) => process.stderr.write(`git-theta: ${m}\n`)), progress);
  try {
    const tty = !opts.json && process.stdout.isTTY;
    const sha = !!opts.sha256;
    if (!opts.json) process.stdout.write(pc.bold(header(sha)) + '\n');
    if (opts.sha256) useNodeSha256();
    const report = await inspectCheckpoint(reader, {
      sha256: opts.sha256,
      onTensor: opts.json ? undefined : (t) => process.stdout.write(row(t, sha) + '\n'),
    });
    if (!opts.json) process.stdout.write((tty ? pc.dim : String)(summary(report.format, report.tensors)) + '\n');
    return report;
  } finally {
    progress.done();
    await reader.close();
  }
}

const COLS: [string, number][] = [
  ['name', 40], ['dtype', 6], ['shape', 16], ['bytes', 11], ['mean', 11], ['std', 10], ['min', 11], ['max', 11], ['l2', 10], ['nan/inf', 7],
];

function cell(s: string, width: number, left = false): string {
  return left ? s.padEnd(width) : s.padStart(width);
}

function header(sha = false): string {
  return COLS.map(([n, w], i) => cell(n, w, i < 1)).join(' ') + (sha ? ' sha256' : '');
}

function row(t: InspectTensor, sha = false): string {
  const vals = [
    t.name, t.dtype, `[${t.shape.join(',')}]`, String(t.bytes), fmtNum(t.stats.mean), fmtNum(t.stats.std), fmtNum(t.stats.min),
    fmtNum(t.stats.max), fmtNum(t.stats.l2), String(t.stats.nonfinite),
  ];
  return vals.map((v, i) => cell(v, COLS[i][1], i < 1)).join(' ') + (sha ? ` ${t.sha256 ?? '-'}` : '');
}

export function summary(format: string, tensors: InspectTensor[]): string {
  const params = tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const bytes = tensors.reduce((a, t) => a + t.bytes, 0);
  const nonfinite = tensors.reduce((a, t) => a + t.stats.nonfinite, 0);
  return `${tensors.length} tensors, ${params} parameters, ${bytes} bytes of tensor data (${format})` +
    (nonfinite ? `, ${nonfinite} NaN/Inf values` : ', no NaN/Inf');
}
