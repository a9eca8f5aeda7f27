// Chromium test entry: bundled by esbuild into build/web/tests.js and loaded by scripts/test.mjs.
import './platform-browser.ts';
import '../../build/gen/shared-tests.ts';
