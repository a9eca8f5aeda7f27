/**
 * Test-only fault injection for the fault tests (test/node/faults.test.ts): with
 * `THETA_TEST_KILL=<point>:<n>` in the environment, this process kills itself with SIGKILL the n-th
 * time it reaches `<point>` — no cleanup, no `finally`, exactly what a crash or the OOM killer
 * leaves behind. Points: `object-write` (an object's bytes written to its temp file, not yet
 * renamed), `file-write` (a work-tree file's bytes written to its temp file by `git theta
 * checkout`), `smudge-write` (part of a file sent to git by the filter), `upload` (progress of an
 * LFS upload in the pre-push hook). Without the variable this is one comparison.
 */
const spec = process.env.THETA_TEST_KILL;
const counts = new Map<string, number>();

export function faultPoint(point: string): void {
  if (!spec) return;
  const colon = spec.lastIndexOf(':');
  if (spec.slice(0, colon) !== point) return;
  const n = (counts.get(point) ?? 0) + 1;
  counts.set(point, n);
  if (n === Number(spec.slice(colon + 1))) process.kill(process.pid, 'SIGKILL');
}
