/** One-line notes `git add` prints about how a file was stored (stderr; stdout is git's channel). */

/**
 * An `.npz` whose deflated members no deflate we have reproduces: their compressed bytes are kept
 * in the skeleton, so every commit of the file stores them again.
 */
export function noteKeptDeflate(path: string, metadata: Record<string, unknown> | undefined): void {
  const kept = metadata?.deflatedKeptCompressed;
  if (typeof kept !== 'number' || kept <= 0) return;
  process.stderr.write(`git-theta: ${path}: ${kept} compressed member${kept === 1 ? '' : 's'} could not be reproduced by zlib's or fflate's deflate; kept as compressed bytes in the file's skeleton (exact, but stored again on each commit of the file)\n`);
}
