/**
 * Typed errors. Every error the library raises on purpose is a ThetaError with a literal `code`
 * (tests assert on it) and structured `data`. Messages are one line and say what to do next.
 */
export class ThetaError extends Error {
  readonly code: string;
  readonly data: Record<string, unknown>;
  constructor(code: string, message: string, data: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ThetaError';
    this.code = code;
    this.data = data;
  }
}

/** A checkpoint file breaks its format's rules (corrupt, lying header, unsupported variant). */
export class FormatError extends ThetaError {
  constructor(message: string, data: { file?: string; tensor?: string; format?: string; [k: string]: unknown } = {}) {
    const where = [data.file, data.tensor ? `tensor '${data.tensor}'` : undefined].filter(Boolean).join(': ');
    super('E_FORMAT', where ? `${where}: ${message}` : message, data);
    this.name = 'FormatError';
  }
}

/** The input ended before the format said it would. */
export class TruncatedError extends ThetaError {
  constructor(file: string, wanted: number, got: number, at: number) {
    super('E_TRUNCATED', `${file}: file is truncated (needed ${wanted} bytes at offset ${at}, got ${got}); re-copy or re-save the checkpoint`, {
      file, wanted, got, at,
    });
    this.name = 'TruncatedError';
  }
}

/** A caller passed a bad argument (wrong dtype, mismatched lengths, ...). */
export class ArgumentError extends ThetaError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('E_ARGUMENT', message, data);
    this.name = 'ArgumentError';
  }
}

/** No reader recognises the input. */
export class UnknownFormatError extends ThetaError {
  constructor(file: string, detail = '') {
    super('E_UNKNOWN_FORMAT', `${file}: not a recognised checkpoint${detail ? ` (${detail})` : ''}; supported: safetensors`, { file });
    this.name = 'UnknownFormatError';
  }
}

export function isThetaError(e: unknown): e is ThetaError {
  return e instanceof ThetaError;
}
