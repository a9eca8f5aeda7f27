/**
 * Which quantization each side of a three-way tensor merge is read with, and which one the merged
 * values are written in.
 *
 * - GGUF: the type of each tensor comes from the file's skeleton and its scales live inside the
 *   blocks, so every side is read and written with the same scheme.
 * - TF.js affine codes (uint8/uint16, value = code·scale + min): scale and min live in model.json,
 *   which git merges as its own file, line by line. Each side's codes are read with the scale and
 *   min its own metadata entry recorded; the merged values are written with the parameters that a
 *   merge of those lines keeps: theirs when ours left them as the base had them, else ours (when
 *   both changed them, model.json conflicts too and ours is the side kept until it is resolved).
 */
import type { TensorQuantization } from '../formats/types.ts';
import { sameQuant, type QuantInfo } from '../formats/dequantize.ts';
import { tfjsAffineOfInfo } from '../formats/tfjs-quant.ts';
import { quantInfoOf } from '../theta/quantized.ts';
import type { TensorEntry } from '../theta/metadata.ts';

export interface SideQuantizations {
  /** For ours and theirs, in that order. */
  models: [TensorQuantization, TensorQuantization];
  base: TensorQuantization | undefined;
  /** The scheme (and parameters) the merged values are written in, and what its entry records. */
  out: TensorQuantization;
  outInfo: QuantInfo | undefined;
}

export function sideQuantizations(
  fromFile: TensorQuantization | undefined, base: TensorEntry | undefined, ours: TensorEntry, theirs: TensorEntry,
): SideQuantizations | undefined {
  const qa = tfjsAffineOfInfo(ours.quant);
  if (qa) {
    const qt = tfjsAffineOfInfo(theirs.quant);
    if (!qt || qt.scheme !== qa.scheme) return undefined;
    const qb = base ? tfjsAffineOfInfo(base.quant) : undefined;
    const keepTheirs = !!base && sameQuant(base.quant, ours.quant);
    return { models: [qa, qt], base: qb, out: keepTheirs ? qt : qa, outInfo: keepTheirs ? theirs.quant : ours.quant };
  }
  if (!fromFile) return undefined;
  return { models: [fromFile, fromFile], base: fromFile, out: fromFile, outInfo: ours.quant ?? quantInfoOf(fromFile) };
}
