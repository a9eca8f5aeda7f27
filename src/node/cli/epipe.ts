/**
 * A reader that stops early (`git theta inspect x | head`) closes our stdout: like git's own
 * commands, end quietly with status 0 instead of crashing on `write EPIPE`.
 */
export function isEpipe(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'EPIPE';
}

let installed = false;

/** Exit 0 at once when stdout's reader has gone away; other stdout errors still surface. */
export function endQuietlyOnEpipe(stream: NodeJS.WriteStream = process.stdout): void {
  if (installed) return;
  installed = true;
  stream.on('error', (err) => {
    if (isEpipe(err)) process.exit(0);
    throw err;
  });
}
