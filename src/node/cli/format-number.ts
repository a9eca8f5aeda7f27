/**
 * How the CLI prints a statistic (inspect's table, diff, textconv): 4 significant digits, exponent
 * form for very large or small magnitudes. A module of its own so textconv's start-up does not load
 * the inspect command (picocolors, progress bars).
 */
export function fmtNum(x: number | null): string {
  if (x === null) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e5 || a < 1e-3 ? x.toExponential(3) : x.toPrecision(4);
}
