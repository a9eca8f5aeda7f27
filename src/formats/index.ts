/**
 * The built-in checkpoint formats, registered on import (as updates/ and merges/ do), and the
 * registry's API. Import format lookups (getFormat, sniffFormat, listFormats) from here: the
 * registry itself (registry.ts) starts empty and imports no format.
 *
 * Adding a format: one new file under src/formats/ that exports a CheckpointFormat, plus one entry
 * in the list below. The order is the sniffing order when two formats accept the same bytes.
 */
import { registerFormat } from './registry.ts';
import { safetensors } from './safetensors.ts';
import { pytorch } from './pytorch.ts';
import { npy, npz } from './numpy.ts';
import { gguf } from './gguf.ts';
import { tfjs } from './tfjs.ts';
import { tfjsShard } from './tfjs-shard.ts';

for (const f of [safetensors, pytorch, npy, npz, gguf, tfjs, tfjsShard]) registerFormat(f);

export { registerFormat, unregisterFormat, getFormat, listFormats, sniffFormat, SNIFF_BYTES } from './registry.ts';
