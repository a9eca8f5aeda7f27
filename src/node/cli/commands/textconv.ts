import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { getKernels } from '../../../core/kernels.ts';
import { UnknownFormatError } from '../../../core/errors.ts';
import { isNumeric } from '../../../core/dtypes.ts';
import { looksLikeMetadata, parseMetadata } from '../../../theta/metadata.ts';
import { metadataSummary } from '../../../theta/summary.ts';
import { openCheckpointFile } from '../../files/open-checkpoint.ts';
import { fileChunks } from '../../files/fs-source.ts';
import { looksLikePyMetadata } from '../../../interop/python-git-theta/metadata.ts';
import { fmtNum } from '../format-number.ts';
import { inspectStats } from '../../../inspect.ts';
import type { CheckpointReader } from '../../../formats/types.ts';
import type { MaybeQuantized } from '../../../formats/convert.ts';
import { quantLabel } from '../../../formats/dequantize.ts';

/**
 * git hands textconv the working-tree form of the blob (it runs the smudge filter first), so this
 * usually reads a checkpoint: one line per tensor with dtype, shape, a few statistics and the
 * content hash, so that git's line diff reads as a per-tensor report.
 */
export async function checkpointSummary(file: string, opened?: CheckpointReader): Promise<string> {
  // (first: the shared kernels also give the zip formats their fast CRC-32; cli.ts leaves that to here)
  const kernels = await getKernels();
  let reader;
  try {
    // a TF.js shard is summarised by its bytes on both sides (git names only the work-tree side where its manifest is)
    reader = opened ?? (await openCheckpointFile(file, { shardModel: false }));
  } catch (e) {
    if (!(e instanceof UnknownFormatError)) throw e;
    // raw bytes with no format of their own, such as a TF.js weight shard (whose weights are
    // named by its model.json): say what can be said, so git's diff still shows whether it changed
    const h = kernels.contentHasher();
    let n = 0;
    for await (const c of fileChunks(file)) {
      h.update(c);
      n += c.length;
    }
    return `${n} bytes with no checkpoint format of their own (a TF.js weight shard's weights are shown by 'git theta diff')\nhash ${h.digest()}\n`;
  }
  const rows: [string, string][] = [];
  let total = 0;
  try {
    for await (const t of reader.tensors()) {
      const hasher = kernels.contentHasher();
      // a quantized tensor's statistics are of its dequantized values, as `inspect` and `diff` show them
      const q = (t as MaybeQuantized).quantization;
      const deq = q?.dequantizer?.();
      const stats = q ? (deq ? kernels.statsAccumulator('F32') : null) : isNumeric(t.dtype) ? kernels.statsAccumulator(t.dtype) : null;
      const values = (v: Float32Array) => v.length && stats!.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      for await (const c of t.chunks()) {
        hasher.update(c);
        if (deq) values(deq.push(c));
        else stats?.update(c);
        total += c.length;
      }
      if (deq) values(deq.finish());
      let numbers = '';
      if (stats) {
        const s = inspectStats(stats.result());
        numbers = `  mean ${fmtNum(s.mean)}  std ${fmtNum(s.std)}  l2 ${fmtNum(s.l2)}` + (s.nonfinite ? `  nan/inf ${s.nonfinite}` : '');
      }
      const layout = q ? `${quantLabel(q.scheme)}[${q.shape.join(',')}]` : `${t.dtype}[${t.shape.join(',')}]`;
      rows.push([t.name, `${t.name}  ${layout}${numbers}  hash ${hasher.digest().slice(0, 16)}`]);
    }
  } finally {
    await reader.close();
  }
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${reader.format} checkpoint, ${rows.length} tensors, ${total} bytes of tensor data\n` + rows.map((r) => r[1]).join('\n') + '\n';
}

/** `git-theta textconv <file>` (cli/direct.ts runs it without commander: git runs it once per file). */
export async function textconvCommand(file: string): Promise<void> {
  const head = (await readFile(file)).subarray(0, 4096);
  // (the Python tool's reader is imported only for its metadata: most files are checkpoints or ours)
  if (looksLikePyMetadata(head)) process.stdout.write((await import('../../../interop/python-git-theta/summary.ts')).pySummary(await readFile(file), file));
  else if (looksLikeMetadata(head)) process.stdout.write(metadataSummary(parseMetadata(await readFile(file), file)));
  else {
    // a git-lfs pointer (git-lfs did not smudge it): the checkpoint is its object, local or on the LFS server
    // (imported here: git runs textconv once per file, and most files need none of this)
    // (a pointer starts with "version "; anything else skips loading isomorphic-git, ~170 ms of start-up)
    const maybePointer = new TextDecoder().decode(head.subarray(0, 8)) === 'version ';
    const pointer = maybePointer ? await (await import('../../repo/lfs-models.ts')).worktreePointer(file) : null;
    let opened: CheckpointReader | undefined;
    if (pointer) {
      const [{ openLfsObject }, { ThetaRepo }] = await Promise.all([import('../../../repo/lfs-pointer-model.ts'), import('../../repo/theta-repo.ts')]);
      opened = await openLfsObject((await ThetaRepo.open()).store, pointer, file);
    }
    process.stdout.write(await checkpointSummary(file, opened));
  }
}

export function registerTextconv(program: Command): void {
  program
    .command('textconv', { hidden: true })
    .description('(used by git diff and git log -p) print a per-tensor summary of a checkpoint or of git-theta metadata')
    .argument('<file>', 'file holding the content')
    .action(textconvCommand);
}
