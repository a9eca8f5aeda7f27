#!/usr/bin/env node
// git-theta command-line entry (also reachable as `git theta ...` when this bin is on PATH).
import { main } from '../build/js/src/node/cli/cli.js';

main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`git-theta: ${err?.message ?? err}\n`); process.exitCode = 1; },
);
