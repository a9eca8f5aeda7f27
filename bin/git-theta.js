#!/usr/bin/env node
// git-theta command-line entry (also reachable as `git theta ...` when this bin is on PATH).
// (the CLI's ES module chunks, built by scripts/build.mjs from src/node/cli/cli.ts: fewer modules to load at start)
import { main } from '../build/js/cli/node/cli/cli.js';

main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`git-theta: ${err?.message ?? err}\n`); process.exitCode = 1; },
);
