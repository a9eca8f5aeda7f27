/**
 * Commander hands a command its operands with `--` removed; git-style commands need to know which
 * operands came after it (paths) and which before (revisions). `main` records the raw argv here.
 */
let raw: string[] = process.argv;

export function setRawArgv(argv: string[]): void {
  raw = argv;
}

/** Split a command's operands into revisions (before `--`) and paths (after it). */
export function revisionsAndPaths(operands: string[]): { revs: string[]; paths: string[] } {
  const dash = raw.indexOf('--');
  const paths = dash >= 0 ? raw.slice(dash + 1) : [];
  return { revs: operands.filter((a) => !paths.includes(a)), paths };
}
