// Per-tensor diff of the models in a git repository, from Deno, with no git binary:
//
//   deno run --allow-net --allow-env=IGNORE_TEST_WIN32 examples/deno/diff.ts <repo-url> <rev-a> <rev-b> [--approx] [--all] [--lfs-url URL] [--header 'Name: value']... [--tensor NAME]...
//
// (run from the repository root after `npm install`; isomorphic-git's `ignore` dependency reads
// that one environment variable when it loads, so Deno must be allowed to.)
//
// Clones <repo-url> over HTTP with isomorphic-git into memory, finds the models that differ
// between the two revisions (git-theta metadata, and plain git-lfs *.safetensors files) and prints
// the same JSON as `git theta diff <rev-a> <rev-b> --json`. Tensor objects come from the
// repository's LFS server (derived from the URL as git-lfs does, or --lfs-url), downloaded in
// batches and only for tensors that changed; --approx downloads none (LSH estimates only); --all
// also lists unchanged tensors.
// --tensor NAME (a name or a glob, repeatable) compares only those tensors: a git-lfs checkpoint is
// then read by HTTP Range requests (its header and those tensors); stderr says what was fetched.
// --header adds an HTTP header to git and LFS requests (e.g. 'Authorization: Bearer <token>').
import { parseArgs } from 'node:util';
// (From the installed package it is `import { openRemote, diffRevisions } from 'npm:git-theta'`.)
import { diffRevisions, openRemote, type RemoteRepo } from '../../src/repo/index.ts';

const USAGE = 'usage: deno run --allow-net --allow-env=IGNORE_TEST_WIN32 examples/deno/diff.ts <repo-url> <rev-a> <rev-b> [--approx] [--all] [--lfs-url URL] [--header "Name: value"]... [--tensor NAME]...';

function fail(message: string): never {
  console.error(`git-theta: ${message}`);
  // deno-lint-ignore no-explicit-any
  (globalThis as any).Deno?.exit(1);
  throw new Error(message);
}

const { values, positionals } = parseArgs({
  // deno-lint-ignore no-explicit-any
  args: (globalThis as any).Deno?.args ?? [],
  allowPositionals: true,
  options: {
    approx: { type: 'boolean', default: false },
    all: { type: 'boolean', default: false },
    'lfs-url': { type: 'string' },
    header: { type: 'string', multiple: true, default: [] },
    tensor: { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
} else {
  if (positionals.length !== 3) fail(USAGE);
  const [url, from, to] = positionals as [string, string, string];
  const headers: Record<string, string> = {};
  for (const h of values.header as string[]) {
    const colon = h.indexOf(':');
    if (colon <= 0) fail(`--header '${h}': expected 'Name: value'`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }

  let repo: RemoteRepo;
  try {
    // clones into memory: the whole history, no working tree (models are read from blobs)
    repo = await openRemote({ url, headers, lfsUrl: values['lfs-url'] });
  } catch (e) {
    fail((e as Error).message);
  }
  try {
    const tensors = values.tensor as string[];
    const result = await diffRevisions({ ...repo, from, to, approx: values.approx as boolean, all: values.all as boolean, ...(tensors.length ? { tensors } : {}) });
    console.log(JSON.stringify(result));
    // what came from the LFS server (whole objects, or Range requests with --tensor), on stderr
    const f = repo.store.fetched;
    console.error(`fetched ${JSON.stringify({ bytes: f.bytes, range_requests: f.rangeRequests, whole_objects: f.wholeObjects, verified_by_ranges: f.verified })}`);
  } catch (e) {
    fail((e as Error).message);
  }
}
