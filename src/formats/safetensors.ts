/**
 * safetensors: an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}` (possibly
 * padded with trailing spaces), then the byte buffer; offsets are relative to the buffer's start.
 *
 * Reading streams: the header is read and checked in full, then tensors are handed out one at a
 * time in data-offset order (which may differ from the header's JSON order; both are reported), so
 * the reader works over a one-way pipe as well as over a file, and never holds more than one tensor
 * (or one chunk) in memory. Every rule of the format is checked up front where the header allows it,
 * and every violation is a FormatError or TruncatedError naming the file and, where there is one,
 * the tensor.
 *
 * Byte-exact rebuild: the skeleton is the exact 8-byte length plus header bytes (padding included),
 * and the buffer is nothing but the tensors laid end to end in offset order, so skeleton + tensor
 * bytes give back the identical file.
 */
import { streamingTensor } from './read-once.ts';
import { DTYPES, dtypeSize, elementCount, isDType, type DType } from '../core/dtypes.ts';
import { ArgumentError, FormatError, TruncatedError } from '../core/errors.ts';
import type { ByteReader, ByteSink } from '../core/io.ts';
import type { CheckpointFormat, CheckpointReader, OpenOptions, StreamedTensor, TensorToWrite } from './types.ts';

export const SAFETENSORS_FORMAT_ID = 'safetensors';

/**
 * Largest header we accept: 100 MB (10^8 bytes), the same limit the reference `safetensors` library
 * enforces. A real header is a few KB to a few MB even for models with tens of thousands of tensors;
 * the limit stops a corrupt or hostile length field from making us allocate gigabytes before we
 * have seen a single byte of JSON.
 */
export const MAX_HEADER_BYTES = 100_000_000;


const METADATA_KEY = '__metadata__';

/** One tensor as the header describes it. */
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** [begin, end) relative to the start of the byte buffer. */
  dataOffsets: [number, number];
  byteLength: number;
  /** Position of this tensor among the tensors in the header's JSON text (0-based). */
  headerIndex: number;
}

export interface SafetensorsHeader {
  /** N, the JSON length (padding included). */
  headerLength: number;
  /** Tensors in data-offset order (the order their bytes appear in the file). */
  entries: SafetensorsEntry[];
  /** Tensor names in the header's JSON order. */
  headerOrder: string[];
  metadata?: Record<string, string>;
  /** Size of the byte buffer the header describes (the end of the last tensor). */
  dataBytes: number;
}

/** A tensor handed out by the safetensors reader: the common fields plus where it sits. */
export interface SafetensorsTensor extends StreamedTensor {
  dataOffsets: [number, number];
  headerIndex: number;
}

export interface SafetensorsReader extends CheckpointReader {
  readonly header: SafetensorsHeader;
  readonly metadata?: Record<string, string>;
  tensors(): AsyncIterable<SafetensorsTensor>;
}

// ---------------------------------------------------------------------------------------------
// Header parsing and validation (pure; no I/O)

function formatError(file: string, message: string, tensor?: string, extra: Record<string, unknown> = {}): FormatError {
  return new FormatError(message, { file, tensor, format: SAFETENSORS_FORMAT_ID, ...extra });
}

/** Re-raise a TruncatedError from the byte layer under our file name, naming the tensor being read. */
function truncated(file: string, tensor: string | undefined, wanted: number, got: number, at: number): TruncatedError {
  const e = new TruncatedError(file, wanted, got, at);
  if (tensor !== undefined) {
    e.data.tensor = tensor;
    e.message = e.message.replace(`${file}: `, `${file}: tensor '${tensor}': `);
  }
  return e;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * JSON.parse keeps the last of duplicate keys silently. This scans already-valid JSON text and
 * returns the first key that repeats within one object, with the keys of the objects around it.
 */
export function findDuplicateKey(text: string): { key: string; path: string[] } | undefined {
  const stack: { keys?: Set<string>; last?: string }[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (;;) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) { j += 2; escaped = true; continue; }
        if (d === 0x22 || Number.isNaN(d)) break;
        j++;
      }
      if (expectKey) {
        const key: string = escaped ? JSON.parse(text.slice(i, j + 1)) : text.slice(i + 1, j);
        const top = stack[stack.length - 1];
        const path = stack.slice(0, -1).map((f) => f.last ?? '');
        if (top.keys!.has(key)) return { key, path };
        top.keys!.add(key);
        top.last = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push({ keys: new Set() });
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push({});
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = stack.length > 0 && stack[stack.length - 1].keys !== undefined;
    }
  }
  return undefined;
}

function isOffset(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parse and check a header's JSON bytes (without the 8-byte length). `bufferSize`, when known, is
 * the number of bytes after the header; the tensors must then cover it exactly.
 */
export function parseSafetensorsHeader(json: Uint8Array, opts: { fileName?: string; bufferSize?: number } = {}): SafetensorsHeader {
  const file = opts.fileName ?? '<safetensors>';
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json);
  } catch {
    throw formatError(file, 'header is not valid UTF-8');
  }
  if (text.charCodeAt(0) !== 0x7b) throw formatError(file, `header must start with '{' (a JSON object), found ${JSON.stringify(text.slice(0, 1))}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw formatError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw formatError(file, 'header must be a JSON object');
  const dup = findDuplicateKey(text);
  if (dup) {
    if (dup.path.length === 0) throw formatError(file, `appears twice in the header`, dup.key, { duplicate: dup.key });
    throw formatError(file, `key '${dup.key}' appears twice in ${dup.path.length > 1 ? dup.path.slice(1).join('.') : 'its entry'}`, dup.path[0], { duplicate: dup.key });
  }

  let metadata: Record<string, string> | undefined;
  const entries: SafetensorsEntry[] = [];
  const headerOrder: string[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(value)) throw formatError(file, `${METADATA_KEY} must be an object of string values`);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw formatError(file, `${METADATA_KEY} value of '${k}' must be a string, found ${JSON.stringify(v)}`, undefined, { key: k });
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const fail = (msg: string, extra: Record<string, unknown> = {}) => formatError(file, msg, name, extra);
    if (!isPlainObject(value)) throw fail('entry must be an object {dtype, shape, data_offsets}');
    const { dtype, shape, data_offsets: offsets } = value;
    if (dtype === undefined) throw fail('entry has no dtype');
    if (!isDType(dtype)) throw fail(`unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPES).join(', ')})`, { dtype });
    if (!Array.isArray(shape) || !shape.every(isOffset)) throw fail(`shape must be an array of non-negative integers, found ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isOffset)) {
      throw fail(`data_offsets must be [begin, end] with non-negative integers, found ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw fail(`data_offsets [${begin}, ${end}]: begin is after end`);
    const count = elementCount(shape);
    const byteLength = count * dtypeSize(dtype);
    if (!Number.isSafeInteger(byteLength)) throw fail(`shape ${JSON.stringify(shape)} is too large (more than 2^53 bytes)`);
    if (end - begin !== byteLength) {
      throw fail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${byteLength}`);
    }
    entries.push({ name, dtype, shape: shape.slice(), dataOffsets: [begin, end], byteLength, headerIndex: headerOrder.length });
    headerOrder.push(name);
  }

  // Stable sort on (begin, end): zero-length tensors may share an offset; ties keep header order.
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1] || a.headerIndex - b.headerIndex);
  let cursor = 0;
  let previous: string | undefined;
  for (const e of entries) {
    const [begin, end] = e.dataOffsets;
    if (begin > cursor) {
      throw formatError(file, `data_offsets [${begin}, ${end}] leave a gap: ${previous === undefined ? 'the buffer starts at 0' : `'${previous}' ends at ${cursor}`}`, e.name);
    }
    if (begin < cursor) {
      throw formatError(file, `data_offsets [${begin}, ${end}] overlap tensor '${previous}' (which ends at ${cursor})`, e.name, { other: previous });
    }
    cursor = end;
    previous = e.name;
  }
  if (opts.bufferSize !== undefined) {
    if (cursor < opts.bufferSize) {
      throw formatError(file, `${opts.bufferSize - cursor} bytes after the last tensor are not covered by any tensor (the header describes ${cursor} bytes, the buffer has ${opts.bufferSize})`);
    }
    if (cursor > opts.bufferSize) {
      const cut = entries.find((e) => e.dataOffsets[1] > opts.bufferSize!)!;
      const got = Math.max(0, opts.bufferSize - cut.dataOffsets[0]);
      throw truncated(file, cut.name, cut.byteLength, got, json.length + 8 + cut.dataOffsets[0]);
    }
  }
  return { headerLength: json.length, entries, headerOrder, metadata, dataBytes: cursor };
}

/** N from the 8-byte prefix, checked against the limit. */
function headerLengthOf(prefix: Uint8Array, file: string): number {
  const dv = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER_BYTES) {
    throw formatError(file, `header length ${n} is larger than the ${MAX_HEADER_BYTES}-byte limit (corrupt length, or not a safetensors file)`, undefined, { headerLength: n });
  }
  if (n === 0) throw formatError(file, 'header length is 0; a header is at least "{}"');
  return n;
}

// ---------------------------------------------------------------------------------------------
// Reading

async function open(reader: ByteReader, opts: OpenOptions = {}): Promise<SafetensorsReader> {
  const file = opts.fileName ?? reader.name;
  const start = reader.position;
  const size = reader.size === undefined ? undefined : reader.size - start;

  async function readExactly(n: number, tensor?: string): Promise<Uint8Array> {
    try {
      return await reader.readExactly(n);
    } catch (e) {
      if (e instanceof TruncatedError) throw truncated(file, tensor, n, e.data.got as number, reader.position - start);
      throw e;
    }
  }

  const prefix = (await readExactly(8)).slice();
  const n = headerLengthOf(prefix, file);
  if (size !== undefined && 8 + n > size) {
    throw formatError(file, `header length ${n} is larger than the file (${size} bytes); the file is truncated or not safetensors`, undefined, { headerLength: n, size });
  }
  const json = (await readExactly(n)).slice();
  const header = parseSafetensorsHeader(json, { fileName: file, bufferSize: size === undefined ? undefined : size - 8 - n });
  const skeletonBytes = new Uint8Array(8 + n);
  skeletonBytes.set(prefix);
  skeletonBytes.set(json, 8);

  let iterated = false;

  async function* tensors(): AsyncGenerator<SafetensorsTensor> {
    if (iterated) throw new ArgumentError(`${file}: tensors() can be iterated only once (the input is read sequentially)`);
    iterated = true;
    const dataStart = 8 + n;
    for (const e of header.entries) {
      const streamed = streamingTensor(file, {
        name: e.name,
        dtype: e.dtype,
        shape: e.shape.slice(),
        byteLength: e.byteLength,
        dataOffsets: [e.dataOffsets[0], e.dataOffsets[1]] as [number, number],
        headerIndex: e.headerIndex,
      }, {
        readUpTo: (max) => reader.readUpTo(max),
        truncated: (done) => truncated(file, e.name, e.byteLength - done, 0, dataStart + e.dataOffsets[0] + done),
      });
      yield streamed.tensor;
      streamed.retire();
      const consumed = streamed.consumed();
      if (consumed < e.byteLength) {
        const left = e.byteLength - consumed;
        try {
          await reader.skip(left);
        } catch (err) {
          if (err instanceof TruncatedError) throw truncated(file, e.name, left, err.data.got as number, dataStart + e.dataOffsets[0] + consumed);
          throw err;
        }
      }
    }
    // With a known size the header check already proved the buffer is covered exactly; on a pipe,
    // make sure nothing follows the last tensor (a concatenated or corrupt stream).
    if (size === undefined) {
      const extra = await reader.readUpTo(1);
      if (extra.length) throw formatError(file, `bytes follow the last tensor (offset ${dataStart + header.dataBytes}); the header does not describe them`);
    }
  }

  return {
    format: SAFETENSORS_FORMAT_ID,
    header,
    metadata: header.metadata,
    tensors,
    skeleton: () => skeletonBytes.slice(),
    close: () => reader.close(),
  };
}

/** Open a safetensors file from a ByteReader (random-access or one-way). */
export function openSafetensors(reader: ByteReader, opts?: OpenOptions): Promise<SafetensorsReader> {
  return open(reader, opts);
}

// ---------------------------------------------------------------------------------------------
// Writing and rebuilding

/** Compare by Unicode code point, which is UTF-8 byte order (the order Rust's String sort gives). */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(j)!;
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  const restA = a.length - i;
  const restB = b.length - j;
  return restA === restB ? 0 : restA < restB ? -1 : 1;
}

export interface TensorLayout {
  name: string;
  dtype: DType;
  shape: number[];
}

/**
 * The skeleton (8-byte length + header JSON padded with spaces to a multiple of 8) of a new file
 * holding these tensors: sorted by name, laid out in that order, `__metadata__` first if given (with
 * its keys sorted). Deterministic: the same tensors give the same bytes. Passing it to `rebuild`
 * with each tensor's bytes writes the file without holding it in memory.
 */
export function encodeSafetensorsHeader(tensors: readonly TensorLayout[], metadata?: Record<string, string>): Uint8Array {
  const sorted = tensors.slice().sort((a, b) => compareCodePoints(a.name, b.name));
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new ArgumentError('metadata must be an object of strings');
    const keys = Object.keys(metadata).sort(compareCodePoints);
    for (const k of keys) {
      if (typeof metadata[k] !== 'string') throw new ArgumentError(`metadata value of '${k}' must be a string`, { key: k });
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    if (i > 0 && sorted[i - 1].name === t.name) throw new ArgumentError(`tensor '${t.name}' is given twice`, { tensor: t.name });
    if (t.name === METADATA_KEY) throw new ArgumentError(`'${METADATA_KEY}' is reserved and cannot name a tensor`);
    if (!isDType(t.dtype)) throw new ArgumentError(`tensor '${t.name}': unknown dtype ${JSON.stringify(t.dtype)}`, { tensor: t.name });
    if (!Array.isArray(t.shape) || !t.shape.every(isOffset)) throw new ArgumentError(`tensor '${t.name}': shape must be non-negative integers`, { tensor: t.name });
    const bytes = elementCount(t.shape) * dtypeSize(t.dtype);
    if (!Number.isSafeInteger(bytes) || !Number.isSafeInteger(offset + bytes)) throw new ArgumentError(`tensor '${t.name}': too large`, { tensor: t.name });
    parts.push(`${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = json.length + ((8 - (json.length % 8)) % 8);
  if (n > MAX_HEADER_BYTES) throw new ArgumentError(`header would be ${n} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  const out = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, n % 2 ** 32, true);
  dv.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(json, 8);
  return out;
}

/**
 * Write the file a skeleton describes: the skeleton, then each tensor's bytes in offset order,
 * asked for by name, with each tensor's byte count checked. The caller closes (or aborts) the sink.
 */
async function rebuild(skeleton: Uint8Array, tensor: (name: string) => AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void> {
  const file = '<skeleton>';
  if (skeleton.length < 8) throw formatError(file, `skeleton is ${skeleton.length} bytes, shorter than the 8-byte length`);
  const n = headerLengthOf(skeleton, file);
  if (skeleton.length !== 8 + n) throw formatError(file, `skeleton is ${skeleton.length} bytes but its length field says ${8 + n}`);
  const header = parseSafetensorsHeader(skeleton.subarray(8), { fileName: file });
  await sink.write(skeleton);
  for (const e of header.entries) {
    let got = 0;
    for await (const part of tensor(e.name)) {
      if (got + part.length > e.byteLength) {
        throw formatError(file, `got more than the ${e.byteLength} bytes its ${e.dtype} ${JSON.stringify(e.shape)} header needs`, e.name, { expected: e.byteLength });
      }
      if (part.length) await sink.write(part);
      got += part.length;
    }
    if (got !== e.byteLength) {
      throw formatError(file, `got ${got} bytes but its ${e.dtype} ${JSON.stringify(e.shape)} header needs ${e.byteLength}`, e.name, { expected: e.byteLength, got });
    }
  }
}

async function write(
  tensors: AsyncIterable<TensorToWrite> | Iterable<TensorToWrite>,
  sink: ByteSink,
  opts: { metadata?: Record<string, string> } = {},
): Promise<void> {
  const byName = new Map<string, TensorToWrite>();
  for await (const t of tensors) {
    if (byName.has(t.name)) throw new ArgumentError(`tensor '${t.name}' is given twice`, { tensor: t.name });
    byName.set(t.name, t);
  }
  const skeleton = encodeSafetensorsHeader([...byName.values()], opts.metadata);
  await rebuild(skeleton, (name) => {
    const t = byName.get(name)!;
    const want = elementCount(t.shape) * dtypeSize(t.dtype);
    if (!(t.data instanceof Uint8Array) || t.data.length !== want) {
      throw new ArgumentError(`tensor '${name}': data has ${t.data?.length} bytes but ${t.dtype} ${JSON.stringify(t.shape)} needs ${want}`, { tensor: name });
    }
    return (async function* () { yield t.data; })();
  }, sink);
}

function sniff(head: Uint8Array): boolean {
  if (head.length < 9) return false;
  const dv = new DataView(head.buffer, head.byteOffset, head.length);
  const hi = dv.getUint32(4, true);
  const n = dv.getUint32(0, true);
  if (hi !== 0 || n < 2 || n > MAX_HEADER_BYTES) return false;
  if (head[8] !== 0x7b) return false;
  if (head.length < 10) return true;
  const c = head[9];
  return c === 0x22 /* " */ || c === 0x7d /* } */ || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export interface SafetensorsFormat extends CheckpointFormat {
  open(reader: ByteReader, opts?: OpenOptions): Promise<SafetensorsReader>;
}

export const safetensors: SafetensorsFormat = {
  id: SAFETENSORS_FORMAT_ID,
  extensions: ['.safetensors'],
  sniff,
  open,
  rebuild,
  write,
  // tensors are read through `open`'s reader as asked for and written by `rebuild` piece by piece
  verbatimTensors: true,
};

