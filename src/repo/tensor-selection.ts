/**
 * Choosing tensors by name (`--tensor`, the library's `tensors` option): exact names or globs, and
 * filters over a checkpoint or any stream of named things. Kept apart from the git-lfs readers so
 * that code which only filters (the filter process's repository) does not load them.
 */
import { ThetaError } from '../core/errors.ts';
import type { CheckpointReader, StreamedTensor } from '../formats/types.ts';

/** Which tensors to read: a predicate over tensor names (null = all). */
export type TensorSelection = ((name: string) => boolean) | null;

function globRe(pattern: string): RegExp {
  const esc = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

/** Tensor names matching any of these patterns (`*` any run of characters, `?` one; else exact). null for none given. */
export function tensorSelection(patterns: string[] | undefined): TensorSelection {
  if (!patterns?.length) return null;
  for (const p of patterns) {
    if (typeof p !== 'string' || !p) throw new ThetaError('E_ARGUMENT', `a tensor pattern must be a non-empty string (got ${JSON.stringify(p)}); give a name or a glob such as 'layers.0.*'`, { pattern: p });
  }
  const res = patterns.map(globRe);
  return (name) => res.some((r) => r.test(name));
}

/** Only these tensors of a checkpoint; the others are never read (the format skips their bytes). */
export function selectTensors(reader: CheckpointReader, select: TensorSelection): CheckpointReader {
  if (!select) return reader;
  return {
    format: reader.format,
    get metadata() { return reader.metadata; },
    async *tensors(): AsyncGenerator<StreamedTensor> {
      for await (const t of reader.tensors()) if (select(t.name)) yield t;
    },
    skeleton: () => reader.skeleton(),
    close: () => reader.close(),
  };
}

/** Filter any list or stream of named things. */
export async function* selectNamed<T extends { name: string }>(items: AsyncIterable<T> | Iterable<T>, select: TensorSelection): AsyncGenerator<T> {
  for await (const t of items) if (!select || select(t.name)) yield t;
}
