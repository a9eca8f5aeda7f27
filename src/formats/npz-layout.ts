/**
 * What an `.npz` skeleton says about how its members are compressed, for writing a new file that
 * is stored the same way (a merge whose values changed cannot reuse the old zip's CRC-32s and
 * compressed sizes, so it writes the file again).
 */
import { ZIP_LOCAL_SIGNATURE } from './zip.ts';

/** Our writer's default deflate level (what `writeNpz` uses for `compress: true`). */
const DEFAULT_LEVEL = 6;

/**
 * The deflate level to write an npz like this skeleton's file with, or undefined when its first
 * member is stored (or the skeleton is not an npz skeleton we can read). A reproduced deflated
 * member names its level; a member kept compressed (another deflater) gets our default.
 */
export function npzDeflateLevel(skeleton: Uint8Array): number | undefined {
  if (skeleton.length < 4) return undefined;
  const n = new DataView(skeleton.buffer, skeleton.byteOffset, skeleton.length).getUint32(0, true);
  if (4 + n + 10 > skeleton.length) return undefined;
  const blob = skeleton.subarray(4 + n);
  const sig = (blob[0] | (blob[1] << 8) | (blob[2] << 16) | (blob[3] << 24)) >>> 0;
  if (sig !== ZIP_LOCAL_SIGNATURE || (blob[8] | (blob[9] << 8)) !== 8) return undefined;
  try {
    const doc = JSON.parse(new TextDecoder().decode(skeleton.subarray(4, 4 + n))) as { parts?: { deflate?: { level?: unknown } }[] };
    const level = doc.parts?.find((p) => p && typeof p === 'object' && 'deflate' in p)?.deflate?.level;
    return typeof level === 'number' ? level : DEFAULT_LEVEL;
  } catch {
    return DEFAULT_LEVEL;
  }
}
