/**
 * A weights-only Python pickle reader (the pickler the PyTorch writer needs is
 * pytorch/pickle-state-dict.ts).
 *
 * Reading executes nothing. The virtual machine understands the opcodes of protocols 0–2 that
 * `torch.save` (protocol 2) and Python's pickler emit for plain values, plus a few protocol 3–4
 * opcodes that are pure data (BINBYTES, SHORT_BINUNICODE, FRAME, MEMOIZE, STACK_GLOBAL). A global
 * (`GLOBAL module name`) is looked up in an allow-list the moment it is read; anything else is a
 * FormatError naming it ("refusing to load global 'os.system'"), so no other callable can even reach
 * the stack. Calls (REDUCE) are interpreted, never executed: `_rebuild_tensor_v2(storage, ...)`
 * becomes a `TensorRef`, `OrderedDict()` a `PyDict`, and so on. Persistent ids (BINPERSID) must be
 * torch's `('storage', <torch.*Storage>, key, location, numel)` tuples and become `StorageRef`s.
 *
 * Everything is bounded (named limits below): the stack, the mark stack, the memo, every
 * container's element count and the total element count, string/bytes lengths, and the walk
 * depth. A hostile pickle fails fast with a FormatError and bounded memory.
 *
 * Values: None → null, bool → boolean, int → number (bigint past 2^53), float → number,
 * str → string, bytes → Uint8Array, list → JS array, tuple → PyTuple, dict/OrderedDict → PyDict
 * (insertion order, any key type), set/frozenset → PySet.
 */
import { isDType, type DType } from '../core/dtypes.ts';
import { FormatError } from '../core/errors.ts';

// ---------------------------------------------------------------------------------------------
// Limits

/**
 * Most values on the VM stack at once. Python's pickler never leaves more than a container's
 * batch (1000 items) plus the nesting on the stack; a million is far above any real pickle and
 * keeps a hostile one from filling memory with loose values.
 */
export const MAX_STACK_ITEMS = 1 << 20;
/** Deepest MARK nesting (and container nesting when naming tensors): Python itself stops near 1000. */
export const MAX_DEPTH = 10_000;
/**
 * Most memo entries. torch.save memoizes each string, tuple and global it writes: about ten per
 * tensor, so four million entries cover state dicts with hundreds of thousands of tensors.
 */
export const MAX_MEMO_ENTRIES = 1 << 22;
/**
 * Most elements in one list/tuple/dict/set, and (next) in all containers together. Optimizer
 * state and state dicts hold at most a few million values; a pickle that tries to build a
 * billion-element list stops here after a fraction of a second.
 */
export const MAX_CONTAINER_ELEMENTS = 1 << 24;
export const MAX_TOTAL_ELEMENTS = 1 << 25;
/** Longest str/bytes value: real checkpoints keep tokenizer blobs of a few MB at most in the pickle. */
export const MAX_STRING_BYTES = 64 << 20;

// ---------------------------------------------------------------------------------------------
// Values

export class PyTuple { constructor(readonly items: PyValue[]) {} }
export class PySet { constructor(readonly items: PyValue[], readonly frozen: boolean) {} }
export class PyGlobal { constructor(readonly module: string, readonly name: string) {} get qualified(): string { return `${this.module}.${this.name}`; } }
/** A harmless allow-listed call kept as data (torch.device('cuda', 0), a torch dtype). */
export class PyCall { constructor(readonly fn: PyGlobal, readonly args: PyValue[]) {} }

export class PyDict {
  readonly entries: [PyValue, PyValue][] = [];
  /** Attributes set by BUILD (e.g. a state dict's `_metadata`). */
  state: PyValue | undefined;
  private index = new Map<unknown, number>();
  constructor(readonly ordered: boolean) {}
  set(k: PyValue, v: PyValue): void {
    // Python semantics for hashable plain keys: a repeated key replaces the value in place.
    const id = typeof k === 'object' && k !== null ? k : `${typeof k}:${String(k)}`;
    const at = this.index.get(id);
    if (at !== undefined) { this.entries[at][1] = v; return; }
    this.index.set(id, this.entries.length);
    this.entries.push([k, v]);
  }
}

/** A storage as torch.save's persistent id describes it; its bytes are the zip entry `data/<key>`. */
export class StorageRef {
  constructor(
    readonly key: string,
    /** e.g. 'FloatStorage' */
    readonly storageType: string,
    readonly dtype: DType,
    readonly location: string,
    /** Elements (of dtype) in the storage. */
    readonly numel: number,
  ) {}
}

/** A tensor view of a storage, from `_rebuild_tensor_v2` (optionally wrapped as a Parameter). */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
    readonly parameter: boolean,
  ) {}
}

export type PyValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PyValue[] | PyTuple | PyDict | PySet | PyGlobal | PyCall | StorageRef | TensorRef;

/** torch storage class name → dtype (torch.UntypedStorage is raw bytes). */
export const STORAGE_DTYPES: Record<string, DType> = {
  DoubleStorage: 'F64', FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
  UInt16Storage: 'U16', UInt32Storage: 'U32', UInt64Storage: 'U64',
  Float8_e4m3fnStorage: 'F8_E4M3', Float8_e5m2Storage: 'F8_E5M2', UntypedStorage: 'U8',
};

const TORCH_DTYPE_NAMES = new Set([
  'float32', 'float', 'float64', 'double', 'float16', 'half', 'bfloat16', 'int64', 'long', 'int32', 'int', 'int16', 'short',
  'int8', 'uint8', 'bool', 'complex64', 'complex128', 'uint16', 'uint32', 'uint64', 'float8_e4m3fn', 'float8_e5m2',
]);

/** The allow-list: `module.name` of every global a weights-only pickle may name. */
export function isAllowedGlobal(module: string, name: string): boolean {
  switch (module) {
    case 'collections': return name === 'OrderedDict';
    case 'torch._utils': return name === '_rebuild_tensor_v2' || name === '_rebuild_parameter' || name === '_rebuild_parameter_with_state';
    case 'torch':
      return Object.prototype.hasOwnProperty.call(STORAGE_DTYPES, name) || name === 'Size' || name === 'device' || TORCH_DTYPE_NAMES.has(name);
    case 'torch.storage': return name === 'UntypedStorage';
    case '__builtin__': case 'builtins': return name === 'set' || name === 'frozenset' || name === 'bytes' || name === 'bytearray';
    case '_codecs': return name === 'encode';
    default: return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Unpickling

export interface UnpickleOptions {
  /** For error messages. */
  file?: string;
  /** Zip entry (or other) name of the pickle, for error messages. */
  entry?: string;
}

export interface Unpickled {
  value: PyValue;
  /** Every storage the pickle references, by key, in order of first reference. */
  storages: Map<string, StorageRef>;
  /** Bytes consumed (up to and including STOP). */
  length: number;
}

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

function isInt(v: unknown): v is number { return typeof v === 'number' && Number.isSafeInteger(v); }

/** Run a weights-only pickle program. Throws FormatError on anything outside the allow-list. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): Unpickled {
  const file = opts.file ?? '<pickle>';
  const where = opts.entry ? `${opts.entry}: ` : '';
  const fail = (msg: string, at: number, extra: Record<string, unknown> = {}) =>
    new FormatError(`${where}${msg} (pickle offset ${at})`, { file, format: 'pytorch', at, ...extra });
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const storages = new Map<string, StorageRef>();
  let total = 0;
  let pos = 0;
  let op = 0;
  let opAt = 0;

  const need = (n: number) => {
    if (n < 0 || pos + n > data.length) throw fail(`opcode 0x${op.toString(16)} needs ${n} bytes but the pickle ends at ${data.length}`, opAt);
  };
  const u8 = () => { need(1); return data[pos++]; };
  const u16 = () => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const bytesOf = (n: number) => {
    if (n > MAX_STRING_BYTES) throw fail(`a ${n}-byte string is longer than the ${MAX_STRING_BYTES}-byte limit`, opAt);
    need(n);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 4096) throw fail('unterminated text argument', opAt);
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const text = (b: Uint8Array) => {
    try { return utf8.decode(b); } catch { throw fail('string is not valid UTF-8', opAt); }
  };
  const push = (v: PyValue) => {
    if (stack.length >= MAX_STACK_ITEMS) throw fail(`more than ${MAX_STACK_ITEMS} values on the stack`, opAt);
    stack.push(v);
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK || (marks.length && stack.length < marks[marks.length - 1])) throw fail('stack underflow', opAt);
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK || (marks.length && stack.length <= marks[marks.length - 1])) throw fail('stack underflow', opAt);
    return v;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw fail('no MARK on the stack', opAt);
    const items = stack.splice(m) as PyValue[];
    stack.pop(); // the MARK itself
    return items;
  };
  const grow = (container: { length: number }, n: number) => {
    if (container.length + n > MAX_CONTAINER_ELEMENTS) throw fail(`a container grows past ${MAX_CONTAINER_ELEMENTS} elements`, opAt);
    total += n;
    if (total > MAX_TOTAL_ELEMENTS) throw fail(`the pickle builds more than ${MAX_TOTAL_ELEMENTS} container elements in all`, opAt);
  };
  const memoPut = (i: number, v: PyValue) => {
    if (!memo.has(i) && memo.size >= MAX_MEMO_ENTRIES) throw fail(`more than ${MAX_MEMO_ENTRIES} memo entries`, opAt);
    memo.set(i, v);
  };
  const memoGet = (i: number) => {
    const v = memo.get(i);
    if (v === undefined) throw fail(`memo entry ${i} was never stored`, opAt);
    return v;
  };
  const global = (module: string, name: string) => {
    if (!isAllowedGlobal(module, name)) throw fail(`refusing to load global '${module}.${name}' (only tensors, storages and plain Python values are allowed)`, opAt, { global: `${module}.${name}` });
    return new PyGlobal(module, name);
  };
  const tuple = (items: PyValue[]) => { grow(items, 0); total += items.length; return new PyTuple(items); };
  const ints = (v: PyValue, what: string): number[] => {
    const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : undefined;
    if (!items || !items.every((x) => isInt(x) && x >= 0)) throw fail(`${what} must be a tuple of non-negative integers`, opAt);
    return items as number[];
  };

  const persistent = (pid: PyValue): StorageRef => {
    const items = pid instanceof PyTuple ? pid.items : undefined;
    if (!items || items.length !== 5 || items[0] !== 'storage') {
      throw fail(`persistent id must be ('storage', type, key, location, numel), found ${describe(pid)}`, opAt);
    }
    const [, type, key, location, numel] = items;
    if (!(type instanceof PyGlobal) || !(STORAGE_DTYPES[type.name] && (type.module === 'torch' || type.module === 'torch.storage'))) {
      throw fail(`persistent id names ${describe(type)}, not a torch storage type`, opAt);
    }
    if (typeof key !== 'string' || !/^[0-9A-Za-z_.-]{1,64}$/.test(key)) throw fail(`storage key ${describe(key)} is not a plain name`, opAt);
    if (typeof location !== 'string') throw fail(`storage '${key}' location must be a string`, opAt);
    if (!isInt(numel) || numel < 0) throw fail(`storage '${key}' element count ${describe(numel)} is not a non-negative integer`, opAt);
    const dtype = STORAGE_DTYPES[type.name];
    const prev = storages.get(key);
    if (prev) {
      if (prev.storageType !== type.name || prev.numel !== numel) {
        throw fail(`storage '${key}' is declared twice, as ${prev.storageType}(${prev.numel}) and ${type.name}(${numel})`, opAt);
      }
      return prev;
    }
    const s = new StorageRef(key, type.name, dtype, location, numel);
    storages.set(key, s);
    return s;
  };

  const call = (fn: PyValue, argsV: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) throw fail(`REDUCE on ${describe(fn)}, which is not an allowed callable`, opAt);
    if (!(argsV instanceof PyTuple)) throw fail(`arguments of ${fn.qualified} must be a tuple`, opAt);
    const args = argsV.items;
    switch (fn.qualified) {
      case 'collections.OrderedDict': {
        const d = new PyDict(true);
        if (args.length === 0) return d;
        throw fail('OrderedDict(...) with arguments is not supported', opAt);
      }
      case 'torch._utils._rebuild_tensor_v2': {
        if (args.length < 6 || args.length > 7) throw fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`, opAt);
        const [storage, offset, size, stride, requiresGrad] = args;
        if (!(storage instanceof StorageRef)) throw fail('_rebuild_tensor_v2: first argument is not a storage', opAt);
        if (!isInt(offset) || offset < 0) throw fail('_rebuild_tensor_v2: storage offset is not a non-negative integer', opAt);
        const shape = ints(size, 'tensor size');
        const strides = ints(stride, 'tensor stride');
        if (shape.length !== strides.length) throw fail(`tensor size has ${shape.length} dimensions but stride has ${strides.length}`, opAt);
        return new TensorRef(storage, offset, shape.slice(), strides.slice(), requiresGrad === true, false);
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state': {
        const t = args[0];
        if (!(t instanceof TensorRef)) throw fail(`${fn.name}: first argument is not a tensor`, opAt);
        return new TensorRef(t.storage, t.offset, t.shape, t.stride, args[1] === true, true);
      }
      case 'torch.Size': {
        if (args.length !== 1) throw fail('torch.Size takes one argument', opAt);
        return new PyTuple(ints(args[0], 'torch.Size').slice());
      }
      case 'torch.device': {
        if (!args.every((a) => typeof a === 'string' || isInt(a))) throw fail('torch.device arguments must be a string and an index', opAt);
        return new PyCall(fn, args);
      }
      case '__builtin__.set': case 'builtins.set': case '__builtin__.frozenset': case 'builtins.frozenset': {
        const items = args.length === 0 ? [] : Array.isArray(args[0]) ? args[0] : undefined;
        if (!items || args.length > 1) throw fail(`${fn.name}() takes one list`, opAt);
        return new PySet(items.slice(), fn.name === 'frozenset');
      }
      case '__builtin__.bytes': case 'builtins.bytes': case '__builtin__.bytearray': case 'builtins.bytearray': {
        if (args.length === 0) return new Uint8Array(0);
        if (args.length === 2 && typeof args[0] === 'string' && args[1] === 'latin1') return latin1Bytes(args[0]);
        throw fail(`${fn.name}() with these arguments is not supported`, opAt);
      }
      case '_codecs.encode': {
        if (args.length === 2 && typeof args[0] === 'string' && (args[1] === 'latin1' || args[1] === 'latin-1')) {
          return latin1Bytes(args[0]);
        }
        throw fail("_codecs.encode is allowed only as encode(str, 'latin1') (how protocol 2 writes bytes)", opAt);
      }
      default:
        throw fail(`refusing to call '${fn.qualified}'`, opAt, { global: fn.qualified });
    }
  };
  const latin1Bytes = (s: string) => {
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 255) throw fail('latin1-encoded bytes contain a character above U+00FF', opAt);
      out[i] = c;
    }
    return out;
  };
  const setItems = (d: PyValue, items: PyValue[]) => {
    if (!(d instanceof PyDict)) throw fail(`SETITEM(S) on ${describe(d)}, not a dict`, opAt);
    if (items.length % 2) throw fail('SETITEMS with an odd number of items', opAt);
    grow(d.entries, items.length / 2);
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  };

  for (;;) {
    if (pos >= data.length) throw fail('the pickle ends without STOP', pos);
    opAt = pos;
    op = data[pos++];
    switch (op) {
      case 0x80: { const p = u8(); if (p > 5) throw fail(`unsupported pickle protocol ${p}`, opAt); break; } // PROTO
      case 0x95: pos += 0; need(8); pos += 8; break; // FRAME (length ignored; data is in memory)
      case 0x2e: { // STOP
        const v = pop();
        if (stack.length || marks.length) throw fail('values left on the stack at STOP', opAt);
        return { value: v, storages, length: pos };
      }
      case 0x28: // MARK
        if (marks.length >= MAX_DEPTH) throw fail(`MARKs nested deeper than ${MAX_DEPTH}`, opAt);
        marks.push(stack.length + 1);
        if (stack.length >= MAX_STACK_ITEMS) throw fail(`more than ${MAX_STACK_ITEMS} values on the stack`, opAt);
        stack.push(MARK);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x4a: push(i32()); break; // BININT
      case 0x8a: case 0x8b: { // LONG1, LONG4
        const n = op === 0x8a ? u8() : u32();
        if (n > 64) throw fail(`a ${n}-byte integer is too large`, opAt);
        push(decodeLong(bytesOf(n)));
        break;
      }
      case 0x49: { // INT (text)
        const s = line();
        if (s === '00') push(false); else if (s === '01') push(true);
        else if (/^-?\d{1,30}$/.test(s)) push(toNumber(BigInt(s)));
        else throw fail(`bad INT argument ${JSON.stringify(s)}`, opAt);
        break;
      }
      case 0x4c: { // LONG (text)
        const s = line().replace(/L$/, '');
        if (!/^-?\d{1,40}$/.test(s)) throw fail(`bad LONG argument ${JSON.stringify(s)}`, opAt);
        push(toNumber(BigInt(s)));
        break;
      }
      case 0x47: need(8); push(dv.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x46: { const s = line(); const f = Number(s); if (Number.isNaN(f) && !/nan/i.test(s)) throw fail(`bad FLOAT ${JSON.stringify(s)}`, opAt); push(f); break; }
      case 0x58: push(text(bytesOf(u32()))); break; // BINUNICODE
      case 0x8c: push(text(bytesOf(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: { // BINUNICODE8
        need(8);
        const hi = dv.getUint32(pos + 4, true);
        const n = hi ? Infinity : dv.getUint32(pos, true);
        pos += 8;
        if (n === Infinity) throw fail('an 8-byte string length is past every limit', opAt);
        push(text(bytesOf(n)));
        break;
      }
      case 0x54: push(latin1.decode(bytesOf(i32()))); break; // BINSTRING (py2 str)
      case 0x55: push(latin1.decode(bytesOf(u8()))); break; // SHORT_BINSTRING
      case 0x42: push(bytesOf(u32()).slice()); break; // BINBYTES
      case 0x43: push(bytesOf(u8()).slice()); break; // SHORT_BINBYTES
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x7d: push(new PyDict(false)); break; // EMPTY_DICT
      case 0x29: push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x8f: push(new PySet([], false)); break; // EMPTY_SET
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x74: { const items = popMark(); if (items.length > MAX_CONTAINER_ELEMENTS) throw fail('tuple too long', opAt); push(tuple(items)); break; } // TUPLE
      case 0x6c: { const items = popMark(); grow([], items.length); push(items); break; } // LIST
      case 0x64: { const items = popMark(); const d = new PyDict(false); setItems(d, items); push(d); break; } // DICT
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) throw fail(`APPEND to ${describe(l)}, not a list`, opAt); grow(l, 1); l.push(v); break; }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) throw fail(`APPENDS to ${describe(l)}, not a list`, opAt);
        grow(l, items.length);
        for (const v of items) l.push(v);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet)) throw fail('ADDITEMS to a non-set', opAt);
        grow(s.items, items.length);
        s.items.push(...items);
        break;
      }
      case 0x91: { const items = popMark(); grow([], items.length); push(new PySet(items, true)); break; } // FROZENSET
      case 0x71: memoPut(u8(), top()); break; // BINPUT
      case 0x72: memoPut(u32(), top()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size, top()); break; // MEMOIZE
      case 0x70: { const s = line(); if (!/^\d{1,10}$/.test(s)) throw fail('bad PUT', opAt); memoPut(+s, top()); break; }
      case 0x68: push(memoGet(u8())); break; // BINGET
      case 0x6a: push(memoGet(u32())); break; // LONG_BINGET
      case 0x67: { const s = line(); if (!/^\d{1,10}$/.test(s)) throw fail('bad GET', opAt); push(memoGet(+s)); break; }
      case 0x63: { const module = line(); const name = line(); push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL needs two strings', opAt);
        push(global(module, name));
        break;
      }
      case 0x51: push(persistent(pop())); break; // BINPERSID
      case 0x52: { const args = pop(); const fn = pop(); push(call(fn, args)); break; } // REDUCE
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyDict && obj.ordered) { obj.state = state; break; }
        if (obj instanceof TensorRef) break; // _rebuild_parameter_with_state may be followed by BUILD of plain attributes
        throw fail(`BUILD on ${describe(obj)} is not allowed`, opAt);
      }
      case 0x50: throw fail('text persistent ids (PERSID) are not used by torch.save', opAt);
      case 0x69: case 0x6f: case 0x81: case 0x92: throw fail(`refusing to instantiate objects (opcode 0x${op.toString(16)})`, opAt);
      case 0x82: case 0x83: case 0x84: throw fail('refusing to use the copyreg extension registry (EXT opcodes)', opAt);
      default: throw fail(`unknown or unsupported pickle opcode 0x${op.toString(16)}`, opAt);
    }
  }
}

function toNumber(b: bigint): number | bigint {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** Python's two's-complement little-endian long encoding. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return toNumber(v);
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyGlobal) return `global '${v.qualified}'`;
  if (v instanceof PyTuple) return `a ${v.items.length}-tuple`;
  if (v instanceof PyDict) return 'a dict';
  if (v instanceof TensorRef) return 'a tensor';
  if (v instanceof StorageRef) return 'a storage';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  return String(v);
}
