/** The readable text git shows for a tracked checkpoint (`git diff`, `git log -p` via textconv). */
import { byCodePoint, type ModelMetadata } from './metadata.ts';
import { shownLayout } from './quantized.ts';

/**
 * One line per tensor, so git's line diff reads as a per-tensor report: a changed tensor appears
 * as a -/+ pair, an added or removed one as a single line.
 */
export function metadataSummary(m: ModelMetadata): string {
  const names = Object.keys(m.tensors).sort(byCodePoint);
  const lines = [`git-theta ${m.format} checkpoint, ${names.length} tensors, ${m.size} bytes`];
  for (const n of names) {
    const t = m.tensors[n];
    const depth = t.chain.length > 1 ? ` (chain ${t.chain.length})` : '';
    const shown = shownLayout(t); // a quantized tensor by its type as stored and logical shape
    lines.push(`${n}  ${shown.dtype}[${shown.shape.join(',')}]  ${t.update}${depth}  hash ${t.hash.slice(0, 16)}`);
  }
  return lines.join('\n') + '\n';
}
