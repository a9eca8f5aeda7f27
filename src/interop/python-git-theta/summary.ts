/** The readable text of a Python-written metadata blob (textconv), from the blob alone. */
import { byCodePoint } from '../../theta/metadata.ts';
import { parsePyMetadata } from './metadata.ts';

export function pySummary(bytes: Uint8Array, path = ''): string {
  const entries = parsePyMetadata(bytes, path || 'metadata').sort((a, b) => byCodePoint(a.name, b.name));
  const lines = [`Python Git-Theta metadata, ${entries.length} parameters`];
  for (const e of entries) {
    const last = e.lastCommit ? ` on ${e.lastCommit.slice(0, 10)}` : '';
    lines.push(`${e.name}  ${e.dtype}[${e.shape.join(',')}]  ${e.updateType}${last}  object ${e.oid.slice(0, 16)}`);
  }
  return lines.join('\n') + '\n';
}
