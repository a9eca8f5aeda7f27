import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import { reportLine } from '../shared/platform.ts';

// build/js/test/node/ -> repository root is four levels up; the sources are three levels up.
const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = here.includes('/build/js/') ? join(here, '../../../..') : join(here, '../..');
export const fixturesDir = process.env.THETA_FIXTURES ?? join(repoRoot, 'test/fixtures');

globalThis.__thetaTestPlatform = {
  runtime: 'node',
  async readFixture(name) {
    return new Uint8Array(await readFile(join(fixturesDir, name)));
  },
  report(key, value) {
    console.log('\n' + reportLine(key, value));
  },
};
