/**
 * isomorphic-git calls the global `Buffer` (Node has it, Deno gives it to npm code, browsers do
 * not). Importing this module first installs the `buffer` package's implementation where the
 * global is missing, so the repository functions work in a browser with no set-up by the caller.
 */
import { Buffer as BufferImpl } from 'buffer';

const g = globalThis as { Buffer?: unknown };
if (typeof g.Buffer === 'undefined') g.Buffer = BufferImpl;

export {};
