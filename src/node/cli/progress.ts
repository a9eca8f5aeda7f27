/**
 * Progress of long work on stderr — only when stderr is a terminal, never in a pipe or a log —
 * drawn by cli-progress: `Filtering content: 3 files, 412 MB, 180 MB/s` (git-lfs's wording for
 * the filter), `git-theta: checkout 2/41 files, ...`. Nothing is shown until the work passes
 * THETA_PROGRESS_MIN_BYTES (default 100 MB), so small commands stay quiet.
 */
import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';
import type { CheckpointReader, StreamedTensor } from '../../formats/types.ts';

export interface WorkProgress {
  /** Bytes read or written since the last call. */
  bytes(n: number): void;
  /** One more file (or tensor) done. */
  item(): void;
  /** End the line (once; later calls do nothing). */
  done(): void;
}

const QUIET: WorkProgress = { bytes() {}, item() {}, done() {} };

function minBytes(): number {
  const v = Number(process.env.THETA_PROGRESS_MIN_BYTES);
  return Number.isFinite(v) && v >= 0 && process.env.THETA_PROGRESS_MIN_BYTES !== '' ? v : 100e6;
}

function mb(n: number): string {
  return (n / 1e6).toFixed(n < 1e7 ? 1 : 0);
}

/**
 * A progress line for `label`; `items` is the number of files when known (checkout), else the
 * count is shown alone (the filter process: git does not say how many files will come).
 */
export function workProgress(label: string, o: { items?: number; unit?: string; stream?: NodeJS.WriteStream } = {}): WorkProgress {
  const stream = o.stream ?? process.stderr;
  if (!stream.isTTY || process.env.THETA_NO_PROGRESS) return QUIET;
  // required here, on a terminal only: git's filter process and most runs never draw a bar, and
  // they start without loading cli-progress (a CommonJS package, so a synchronous require is enough)
  const lib = createRequire(import.meta.url)('cli-progress') as typeof cliProgress;
  const threshold = minBytes();
  const unit = o.unit ?? 'files';
  const start = Date.now();
  let bytes = 0;
  let items = 0;
  let bar: cliProgress.SingleBar | null = null;
  const payload = () => {
    const secs = Math.max(0.001, (Date.now() - start) / 1000);
    return { label, unit, mb: mb(bytes), rate: mb(bytes / secs), items: o.items ? `${items}/${o.items}` : String(items) };
  };
  const update = () => {
    if (!bar) {
      if (bytes < threshold) return;
      bar = new lib.SingleBar({
        stream,
        format: '{label}: {items} {unit}, {mb} MB, {rate} MB/s',
        hideCursor: false,
        clearOnComplete: false,
        fps: 10,
      });
      bar.start(o.items ?? 0, items, payload());
    }
    bar.update(items, payload());
  };
  let ended = false;
  return {
    bytes(n) { bytes += n; update(); },
    item() { items++; update(); },
    done() {
      if (ended) return;
      ended = true;
      if (bar) { bar.update(items, payload()); bar.stop(); }
    },
  };
}

/**
 * A progress line made by `make` only once `first` settles (another line, e.g. a download's, is
 * drawn until then); what was counted before is carried over.
 */
export function afterward(first: Promise<unknown>, make: () => WorkProgress): WorkProgress {
  let real: WorkProgress | null = null;
  let bytes = 0;
  let items = 0;
  let ended = false;
  void first.then(() => {}, () => {}).then(() => {
    if (ended) return;
    real = make();
    if (bytes) real.bytes(bytes);
    for (let i = 0; i < items; i++) real.item();
  });
  return {
    bytes(n) { if (real) real.bytes(n); else bytes += n; },
    item() { if (real) real.item(); else items++; },
    done() { ended = true; real?.done(); },
  };
}

/**
 * The reader, its `tensors()` patched in place (every other property kept) to count the bytes of
 * every tensor read into `progress`, and one item per tensor when `items` is true. Tensors are
 * patched in place too, so class instances keep working. Nothing changes when `progress` is quiet.
 */
export function readerWithProgress(reader: CheckpointReader, progress: WorkProgress, items = true): CheckpointReader {
  if (progress === QUIET) return reader;
  const tensors = reader.tensors.bind(reader);
  reader.tensors = async function* (): AsyncGenerator<StreamedTensor> {
    for await (const t of tensors()) {
      const chunks = t.chunks.bind(t);
      const bytes = t.bytes.bind(t);
      t.chunks = (n?: number) => ({
        async *[Symbol.asyncIterator]() {
          for await (const c of chunks(n)) { progress.bytes(c.length); yield c; }
        },
      });
      t.bytes = async () => { const b = await bytes(); progress.bytes(b.length); return b; };
      yield t;
      if (items) progress.item();
    }
  };
  return reader;
}
