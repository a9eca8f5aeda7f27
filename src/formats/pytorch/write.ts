/** PyTorch checkpoints: writing a new torch.save file laid out as PyTorch 1.13 writes it. */
import { dtypeSize, type DType } from '../../core/dtypes.ts';
import { ArgumentError } from '../../core/errors.ts';
import type { ByteSink } from '../../core/io.ts';
import type { TensorToWrite } from '../types.ts';
import { STORAGE_DTYPES } from '../pickle.ts';
import { pickleStateDict } from './pickle-state-dict.ts';
import { crc32, descriptor, torchCentralDirectory, torchLocalHeader, unsafeEntryName, type WrittenEntry } from '../pytorch-zip.ts';
import { U32_MAX } from './common.ts';
import { viewNumel } from './views.ts';

const DTYPE_STORAGE: Partial<Record<DType, string>> = {};
for (const [storage, dtype] of Object.entries(STORAGE_DTYPES)) if (storage !== 'UntypedStorage') DTYPE_STORAGE[dtype] ??= storage;

export interface PytorchWriteOptions {
  /** The archive's top-level folder; torch uses the file's base name. Default 'archive'. */
  archiveName?: string;
  /** Pickle the state dict as an OrderedDict (what `module.state_dict()` gives; default) or a plain dict. */
  container?: 'OrderedDict' | 'dict';
}

/**
 * Write a torch.save zip checkpoint holding a flat state dict of these tensors (in the order given),
 * laid out exactly as PyTorch 1.13 lays it out: data.pkl, data/<key> (keys in string order, 64-byte
 * aligned, stored), version "3", central directory with zip64 end records.
 */
export async function writePytorch(tensors: AsyncIterable<TensorToWrite> | Iterable<TensorToWrite>, sink: ByteSink, opts: PytorchWriteOptions = {}): Promise<void> {
  const archive = opts.archiveName ?? 'archive';
  if (!archive || unsafeEntryName(archive) || archive.includes('/')) throw new ArgumentError(`archiveName ${JSON.stringify(archive)} must be a plain folder name`);
  const list: TensorToWrite[] = [];
  const names = new Set<string>();
  for await (const t of tensors) {
    if (names.has(t.name)) throw new ArgumentError(`tensor '${t.name}' is given twice`, { tensor: t.name });
    names.add(t.name);
    const storageType = DTYPE_STORAGE[t.dtype];
    if (!storageType) throw new ArgumentError(`tensor '${t.name}': dtype ${t.dtype} has no torch storage type`, { tensor: t.name });
    if (!Array.isArray(t.shape) || !t.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) throw new ArgumentError(`tensor '${t.name}': shape must be non-negative integers`, { tensor: t.name });
    const want = viewNumel(t.shape) * dtypeSize(t.dtype);
    if (!(t.data instanceof Uint8Array) || t.data.length !== want) {
      throw new ArgumentError(`tensor '${t.name}': data has ${t.data?.length} bytes but ${t.dtype} ${JSON.stringify(t.shape)} needs ${want}`, { tensor: t.name });
    }
    list.push(t);
  }
  const pickle = pickleStateDict(
    list.map((t, i) => ({ name: t.name, storageType: DTYPE_STORAGE[t.dtype]!, storageKey: String(i), numel: viewNumel(t.shape), shape: t.shape })),
    opts.container ?? 'OrderedDict',
  );
  const enc = new TextEncoder();
  const written: WrittenEntry[] = [];
  let offset = 0;
  const entry = async (name: string, data: Uint8Array) => {
    const nameBytes = enc.encode(`${archive}/${name}`);
    const header = torchLocalHeader(nameBytes, offset, data.length);
    const crc = crc32(data);
    const zip64 = data.length >= U32_MAX || offset >= U32_MAX;
    written.push({ nameBytes, offset, size: data.length, crc });
    await sink.write(header);
    if (data.length) await sink.write(data);
    const d = descriptor(crc, data.length, zip64);
    await sink.write(d);
    offset += header.length + data.length + d.length;
  };
  await entry('data.pkl', pickle);
  const keys = list.map((_, i) => String(i)).sort();
  for (const k of keys) await entry(`data/${k}`, list[+k].data);
  await entry('version', enc.encode('3\n'));
  await sink.write(torchCentralDirectory(written, offset));
}

export async function write(tensors: AsyncIterable<TensorToWrite> | Iterable<TensorToWrite>, sink: ByteSink): Promise<void> {
  // torch.save has no place for string metadata; safetensors-style metadata is not carried over.
  await writePytorch(tensors, sink);
}
