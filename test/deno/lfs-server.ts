// deno-lint-ignore-file
// The library rows of LFS conformance (redirects, `_links`, Range, expiry, `authenticated`, 429) in Deno,
// against the lfstest-gitserver that scripts/test.mjs starts (found as test/node/lfs-test-server.ts finds
// it) and names in THETA_LFS_TEST_URL / THETA_LFS_TEST_STATE.
import { suite } from 'uvu';
import { registerLfsServerRows } from '../shared/lfs-server-rows.ts';
declare const Deno: any;

const TITLE = 'lfs conformance with lfstest-gitserver (deno)';
const url: string | undefined = Deno.env.get('THETA_LFS_TEST_URL');
const state: string | undefined = Deno.env.get('THETA_LFS_TEST_STATE');
const error: string | undefined = Deno.env.get('THETA_LFS_TEST_ERROR');
const skip: string = Deno.env.get('THETA_LFS_TEST_SKIP') ?? 'THETA_LFS_TEST_URL is not set (scripts/test.mjs starts the server)';

if (url && state) {
  const t = suite(TITLE);
  registerLfsServerRows(t, () => ({ url, prefix: 'deno', log: () => Deno.readTextFile(`${state}/server.log`) }));
  t.run();
} else if (error || Deno.env.get('CI')) {
  const t = suite(TITLE);
  t('lfs-test-server runs', () => {
    throw new Error(error ?? `${skip}; CI must provide shared/lfs-test-server beside the clone`);
  });
  t.run();
} else {
  console.log(`${TITLE}: skipped (${skip})`);
}
