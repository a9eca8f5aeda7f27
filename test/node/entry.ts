// Node test entry: the shared suite plus the Node-only suite (CLI, git, files).
import './platform-node.ts';
import '../../build/gen/shared-tests.ts';
import '../../build/gen/node-tests.ts';
