// Deno test entry: the shared suite, imported straight from the TypeScript sources.
import './platform-deno.ts';
import '../../build/gen/shared-tests.ts';
import './lfs-server.ts';
