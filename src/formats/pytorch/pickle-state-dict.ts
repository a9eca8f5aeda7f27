/**
 * The small pickler the PyTorch writer needs: the state-dict pickle `torch.save` writes (the
 * reader is pickle.ts).
 */

export interface PickledTensor {
  name: string;
  storageType: string;
  storageKey: string;
  numel: number;
  shape: number[];
}

/**
 * The protocol-2 pickle `torch.save` (PyTorch 1.13, Python 3) writes for a flat state dict of
 * contiguous tensors, one storage each: the same opcodes and the same memo numbering, so a state
 * dict written here is byte-identical to torch's for the same names, dtypes and shapes.
 */
export function pickleStateDict(tensors: readonly PickledTensor[], container: 'dict' | 'OrderedDict'): Uint8Array {
  const out: number[] = [];
  const enc = new TextEncoder();
  let memoNext = 0;
  const memo = new Map<string, number>();
  const u32 = (v: number) => { out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff); };
  const put = (key?: string) => {
    const i = memoNext++;
    if (key !== undefined) memo.set(key, i);
    if (i < 256) out.push(0x71, i); else { out.push(0x72); u32(i); }
  };
  const get = (i: number) => { if (i < 256) out.push(0x68, i); else { out.push(0x6a); u32(i); } };
  const str = (s: string, key?: string) => {
    if (key !== undefined && memo.has(key)) { get(memo.get(key)!); return; }
    const b = enc.encode(s);
    out.push(0x58); u32(b.length); for (const x of b) out.push(x);
    put(key);
  };
  const glob = (module: string, name: string) => {
    const key = `g:${module}.${name}`;
    if (memo.has(key)) { get(memo.get(key)!); return; }
    for (const x of enc.encode(`c${module}\n${name}\n`)) out.push(x);
    put(key);
  };
  const int = (v: number) => {
    if (v >= 0 && v <= 0xff) out.push(0x4b, v);
    else if (v >= 0 && v <= 0xffff) out.push(0x4d, v & 0xff, v >> 8);
    else if (v >= -0x80000000 && v <= 0x7fffffff) { out.push(0x4a); u32(v >>> 0); }
    else {
      let b = BigInt(v);
      const bytes: number[] = [];
      while (true) {
        const byte = Number(b & 0xffn);
        bytes.push(byte);
        b >>= 8n;
        if ((b === 0n && !(byte & 0x80)) || (b === -1n && byte & 0x80)) break;
      }
      out.push(0x8a, bytes.length, ...bytes);
    }
  };
  const intTuple = (items: number[]) => {
    if (items.length === 0) { out.push(0x29); return; }
    if (items.length > 3) out.push(0x28);
    for (const v of items) int(v);
    out.push(items.length === 1 ? 0x85 : items.length === 2 ? 0x86 : items.length === 3 ? 0x87 : 0x74);
    put();
  };
  const contiguous = (shape: number[]) => {
    const s = new Array<number>(shape.length);
    let acc = 1;
    for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
    return s;
  };

  out.push(0x80, 0x02);
  if (container === 'OrderedDict') { glob('collections', 'OrderedDict'); out.push(0x29, 0x52); put(); } else { out.push(0x7d); put(); }
  const item = (t: PickledTensor) => {
    str(t.name);
    glob('torch._utils', '_rebuild_tensor_v2');
    out.push(0x28, 0x28); // MARK (args), MARK (persistent id)
    str('storage', 's:storage');
    glob('torch', t.storageType);
    str(t.storageKey);
    str('cpu', 's:cpu');
    int(t.numel);
    out.push(0x74); put(); // TUPLE
    out.push(0x51); // BINPERSID
    int(0);
    intTuple(t.shape);
    intTuple(contiguous(t.shape));
    out.push(0x89); // requires_grad False
    glob('collections', 'OrderedDict'); out.push(0x29, 0x52); put(); // backward hooks
    out.push(0x74); put(); // args TUPLE
    out.push(0x52); put(); // REDUCE
  };
  // Python batches dict items 1000 at a time: MARK ... SETITEMS, or a lone SETITEM for one item.
  for (let i = 0; i < tensors.length; i += 1000) {
    const batch = tensors.slice(i, i + 1000);
    if (batch.length > 1) { out.push(0x28); for (const t of batch) item(t); out.push(0x75); } else { item(batch[0]); out.push(0x73); }
  }
  out.push(0x2e);
  return Uint8Array.from(out);
}
