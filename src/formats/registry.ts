/**
 * The format registry: callers find a format by its id (recorded in committed metadata) or by
 * sniffing a file's first bytes. It imports no format; formats/index.ts registers the built-in
 * ones, so look formats up through formats/index.ts.
 */
import { ArgumentError, UnknownFormatError } from '../core/errors.ts';
import type { CheckpointFormat } from './types.ts';

const table = new Map<string, CheckpointFormat>();

/** How many bytes `sniffFormat` wants to see (fewer is fine for small files). */
export const SNIFF_BYTES = 4096;

/** Register a format. Registering the same object again is a no-op; another format with the same id is an error. */
export function registerFormat(format: CheckpointFormat): void {
  if (!format || typeof format.id !== 'string' || !format.id) throw new ArgumentError('registerFormat: a format needs a non-empty string id');
  for (const fn of ['sniff', 'open', 'rebuild', 'write'] as const) {
    if (typeof format[fn] !== 'function') throw new ArgumentError(`registerFormat: format '${format.id}' has no ${fn}()`, { format: format.id });
  }
  const existing = table.get(format.id);
  if (existing === format) return;
  if (existing) throw new ArgumentError(`registerFormat: a different format is already registered as '${format.id}'`, { format: format.id });
  table.set(format.id, format);
}

/** Remove a format (tests, plugins). Returns whether it was registered. */
export function unregisterFormat(id: string): boolean {
  return table.delete(id);
}

/** The format with this id, or UnknownFormatError (e.g. metadata written by a newer version). */
export function getFormat(id: string): CheckpointFormat {
  const f = table.get(id);
  if (!f) throw new UnknownFormatError(`format '${id}'`, `no format with this id is registered; registered: ${[...table.keys()].join(', ') || 'none'}`);
  return f;
}

/** Every registered format, in registration order. */
export function listFormats(): CheckpointFormat[] {
  return [...table.values()];
}

function extensionOf(fileName: string | undefined): string | undefined {
  if (!fileName) return undefined;
  const base = fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1).toLowerCase();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot) : undefined;
}

/**
 * The format whose `sniff` accepts these first bytes (up to SNIFF_BYTES). Content decides; the file
 * name only breaks ties between formats that both accept the bytes. Throws UnknownFormatError.
 */
export function sniffFormat(head: Uint8Array, fileName?: string): CheckpointFormat {
  const ext = extensionOf(fileName);
  const byExtension = (f: CheckpointFormat) => ext !== undefined && f.extensions.includes(ext);
  const hits = listFormats().filter((f) => f.sniff(head, fileName));
  if (hits.length) return hits.find(byExtension) ?? hits[0];
  const named = listFormats().find(byExtension);
  throw new UnknownFormatError(
    fileName ?? '<input>',
    named ? `named like ${named.id} but its first bytes are not ${named.id}` : head.length === 0 ? 'the input is empty' : 'no registered format recognises its first bytes',
    listFormats().map((f) => f.id),
  );
}
