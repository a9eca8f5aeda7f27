/**
 * Tensor element types, spelled as safetensors spells them. Every dtype is carried as bytes;
 * the numeric kernels work on F32 directly and on F16/BF16/F64 (and integers) through conversion.
 */
export const DTYPES = {
  BOOL: { size: 1, float: false },
  U8: { size: 1, float: false },
  I8: { size: 1, float: false },
  F8_E4M3: { size: 1, float: true },
  F8_E5M2: { size: 1, float: true },
  U16: { size: 2, float: false },
  I16: { size: 2, float: false },
  F16: { size: 2, float: true },
  BF16: { size: 2, float: true },
  U32: { size: 4, float: false },
  I32: { size: 4, float: false },
  F32: { size: 4, float: true },
  U64: { size: 8, float: false },
  I64: { size: 8, float: false },
  F64: { size: 8, float: true },
} as const;

export type DType = keyof typeof DTYPES;

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

export function dtypeSize(d: DType): number {
  return DTYPES[d].size;
}

/** Dtypes the kernels compute on (after conversion to F32 where needed). */
export const NUMERIC_DTYPES: readonly DType[] = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL'];

export function isNumeric(d: DType): boolean {
  return NUMERIC_DTYPES.includes(d);
}

/** Number of elements of a shape; 0-d tensors have one element. Returns NaN past 2^53. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return Number.isSafeInteger(n) ? n : NaN;
}
