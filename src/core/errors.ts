/** Longest name (tensor, zip entry, pickle global, GGUF key) shown in a message, in UTF-16 units. */
export const MAX_NAME_IN_MESSAGE = 120;
/** Longest error message; longer ones are cut (names from files are the usual cause). */
export const MAX_MESSAGE = 2000;

// C0 controls, DEL, C1 controls, and the two line/paragraph separators that JavaScript treats as newlines
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Control characters shown as JSON-style escapes (`\n`, `\u0000`), so a message stays one visible line. */
export function escapeControls(s: string): string {
  return s.replace(CONTROL, (c) => {
    const j = JSON.stringify(c);
    return j.length === 4 ? j.slice(1, -1) : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/**
 * A name read from a file, for an error message: in single quotes, control characters escaped, cut
 * to MAX_NAME_IN_MESSAGE characters (an ellipsis and the full length say it was cut).
 */
export function quoteName(name: unknown, max = MAX_NAME_IN_MESSAGE): string {
  const s = typeof name === 'string' ? name : String(name);
  const cut = s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
  return `'${escapeControls(cut)}'`;
}

/** A message as one bounded line: control characters escaped, at most MAX_MESSAGE characters. */
export function oneLine(message: string): string {
  const s = escapeControls(message);
  return s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE)}… (message cut at ${MAX_MESSAGE} characters)` : s;
}

/**
 * Typed errors. Every error the library raises on purpose is a ThetaError with a literal `code`
 * (tests assert on it) and structured `data`. Messages are one line and say what to do next.
 */
export class ThetaError extends Error {
  readonly code: string;
  readonly data: Record<string, unknown>;
  constructor(code: string, message: string, data: Record<string, unknown> = {}) {
    super(oneLine(message));
    // messages often carry names read from files: keep them one visible, bounded line even when
    // a caller rewrites `message` later
    let text = this.message;
    Object.defineProperty(this, 'message', {
      get: () => text,
      set: (v: unknown) => { text = oneLine(String(v)); },
      enumerable: false,
      configurable: true,
    });
    this.name = 'ThetaError';
    this.code = code;
    this.data = data;
  }
}

/** A checkpoint file breaks its format's rules (corrupt, lying header, unsupported variant). */
export class FormatError extends ThetaError {
  constructor(message: string, data: { file?: string; tensor?: string; format?: string; [k: string]: unknown } = {}) {
    const where = [data.file, data.tensor ? `tensor ${quoteName(data.tensor)}` : undefined].filter(Boolean).join(': ');
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

/** A TruncatedError that names the tensor being read (`file: tensor 'x': file is truncated ...`) when `tensor` is given. */
export function truncatedTensor(file: string, wanted: number, got: number, at: number, tensor: string | undefined): TruncatedError {
  const t = new TruncatedError(file, wanted, got, at);
  if (tensor) { t.data.tensor = tensor; t.message = t.message.replace(`${file}: `, `${file}: tensor '${tensor}': `); }
  return t;
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
  constructor(file: string, detail = '', supported: readonly string[] = []) {
    super('E_UNKNOWN_FORMAT', `${file}: not a recognised checkpoint${detail ? ` (${detail})` : ''}${supported.length ? `; supported: ${supported.join(', ')}` : ''}`, { file });
    this.name = 'UnknownFormatError';
  }
}

export function isThetaError(e: unknown): e is ThetaError {
  return e instanceof ThetaError;
}

/** Bytes on a pkt-line channel (git's filter, merge or transfer protocols) break the framing rules. */
export class PktLineError extends ThetaError {
  constructor(message: string, data: { channel?: string; at?: number; [k: string]: unknown } = {}) {
    super('E_PKTLINE', `${data.channel ?? 'pkt-line'}: ${message}`, data);
    this.name = 'PktLineError';
  }
}

/** git spoke the long-running filter protocol in a way we do not understand (bad handshake, bad request). */
export class FilterProtocolError extends ThetaError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('E_FILTER_PROTOCOL', `filter protocol: ${message}`, data);
    this.name = 'FilterProtocolError';
  }
}

/** Thrown by a filter handler to answer `status=abort`: git stops sending this filter anything for the rest of its run. */
export class FilterAbortError extends ThetaError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('E_FILTER_ABORT', message, data);
    this.name = 'FilterAbortError';
  }
}

/** An object id is not 64 lowercase hex digits (we never build a path from one that is not). */
export class InvalidOidError extends ThetaError {
  constructor(oid: unknown) {
    const shown = typeof oid === 'string' ? JSON.stringify(oid.length > 80 ? oid.slice(0, 80) + '…' : oid) : String(oid);
    super('E_INVALID_OID', `invalid object id ${shown}: expected 64 lowercase hex digits (a SHA-256)`, { oid });
    this.name = 'InvalidOidError';
  }
}

/** The object store has no object with this id. */
export class ObjectMissingError extends ThetaError {
  constructor(oid: string, where = '') {
    super('E_OBJECT_MISSING', `object ${oid} is not in the local store${where ? ` (${where})` : ''}; fetch it (git lfs fetch / git theta pull) or re-add the file that produced it`, { oid, where });
    this.name = 'ObjectMissingError';
  }
}

/** An object's bytes do not hash to its id (disk corruption, a partial copy, tampering). */
export class ObjectCorruptError extends ThetaError {
  constructor(oid: string, actual: string, where = '') {
    super('E_OBJECT_CORRUPT', `object ${oid} is corrupt: its bytes hash to ${actual}${where ? ` (${where})` : ''}; delete it and fetch it again`, { oid, actual, where });
    this.name = 'ObjectCorruptError';
  }
}
