#!/usr/bin/env bash
# Checks that a plain clone of this repository (nothing beside it: no ../shared) installs and passes the
# Node suite. Clones the committed HEAD into an empty temporary directory, runs `npm ci` there (which builds)
# and `node scripts/test.mjs node` as a contributor would (CI unset, so suites that need tools from outside
# the repository print what they skipped instead of failing). Exit status and the closing
# `N passed, N failed` line are the suite's. Usage: scripts/plain-clone-test.sh [KEEP_DIR]
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$(mktemp -d)}
clone="$dir/git-theta"
trap '[ -z "${1:-}" ] && rm -rf "$dir"' EXIT
echo "plain-clone: cloning $src into $clone"
git clone -q --no-local "$src" "$clone" || { echo "plain-clone: git clone failed"; echo "0 passed, 1 failed"; exit 1; }
cd "$clone"
if [ -e "$dir/shared" ] || [ -e "$clone/../shared" ]; then echo "plain-clone: $dir is not empty"; exit 1; fi
env -u CI -u THETA_FIXTURES -u THETA_LFS_TEST_SERVER npm ci --no-audit --no-fund >npm-ci.log 2>&1 || {
  tail -20 npm-ci.log; echo "plain-clone: npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
env -u CI -u THETA_FIXTURES -u THETA_LFS_TEST_SERVER node scripts/test.mjs node
