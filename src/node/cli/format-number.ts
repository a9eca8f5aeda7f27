/**
 * How the CLI prints a statistic (inspect's table, diff, textconv): 4 significant digits, exponent
 * form for very large or small magnitudes; and the list of checkpoints a checkout or switch wrote.
 * A module of its own so textconv's start-up does not load the inspect command (picocolors,
 * progress bars).
 */
export function fmtNum(x: number | null): string {
  if (x === null) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e5 || a < 1e-3 ? x.toExponential(3) : x.toPrecision(4);
}

/** "wrote N checkpoint(s): a, b, c" naming at most `max` of them ("…, and 31 more"), for long lists. */
export function wroteCheckpoints(paths: readonly string[], max = 8): string {
  if (!paths.length) return 'wrote 0 checkpoint(s)';
  const shown = paths.slice(0, max).join(', ');
  return `wrote ${paths.length} checkpoint(s): ${shown}${paths.length > max ? `, and ${paths.length - max} more` : ''}`;
}
