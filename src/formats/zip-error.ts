/** The FormatError of the zip layer (zip.ts, fflate-deflate.ts): the entry named in the message and the data. */
import { FormatError } from '../core/errors.ts';

export function zipError(file: string, message: string, entry?: string, extra: Record<string, unknown> = {}): FormatError {
  const e = new FormatError(entry === undefined ? message : `zip entry ${JSON.stringify(entry)}: ${message}`, { file, format: 'zip', ...extra });
  if (entry !== undefined) e.data.entry = entry;
  return e;
}
