/**
 * The server side of git's long-running filter process protocol, version 2 (gitattributes(5),
 * "Long Running Filter Process"; handshake in technical/long-running-process-protocol).
 * git starts one process per git command (`filter.<driver>.process`) and sends it every file.
 *
 *   handshake   git> git-filter-client, version=2, flush    git< git-filter-server, version=2, flush
 *               git> capability=clean, capability=smudge, capability=delay, flush
 *               git< the capabilities we support among those, flush
 *   request     git> command=clean|smudge, pathname=..., (other key=value), flush, content packets, flush
 *   response    git< status=success, flush, content packets, flush, (empty list = status unchanged) flush
 *      or       git< status=error|abort, flush                                 (failed before any output)
 *      or       git< status=success, flush, partial content, flush, status=error|abort, flush
 *
 * Rules kept here: stdout is the protocol channel, so everything else goes to stderr; nothing is
 * answered before the request's final flush; content streams both ways in packets of at most
 * 65516 bytes, honouring backpressure on the output; a handler that throws answers status=error
 * (status=abort for FilterAbortError) for that file and the process goes on; end of input
 * between requests is a normal exit.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { FilterAbortError, FilterProtocolError, PktLineError } from '../../core/errors.ts';
import { readerFromChunks } from '../../core/io.ts';
import { encodeTextList, FLUSH_PKT, PKT_MAX_LENGTH, PKT_MAX_PAYLOAD, PktLineReader } from '../../core/pktline.ts';

export interface FilterRequest {
  /** `clean` or `smudge`. */
  command: string;
  /** Path of the file relative to the repository root. */
  pathname: string;
  /** Every key=value pair git sent, command and pathname included (e.g. ref, treeish, blob). */
  headers: Record<string, string>;
}

export interface FilterOutput {
  /**
   * Send bytes of the filtered content (any length; split into packets here). Resolves when the
   * output has room again. Write only after reading all of `content`: bytes written earlier are
   * held in memory until git has finished sending, because git does not read before then.
   */
  write(bytes: Uint8Array): Promise<void>;
}

export type FilterHandler = (req: FilterRequest, content: AsyncIterable<Uint8Array>, out: FilterOutput) => Promise<void>;

/** Where packets go: a Node Writable (process.stdout) or anything with a promise-returning write. */
export type FilterOutputStream = Pick<Writable, 'write' | 'once' | 'removeListener'> | { write(bytes: Uint8Array): Promise<void> };

export interface FilterProcessOptions {
  clean?: FilterHandler;
  smudge?: FilterHandler;
  /** Capabilities to offer (default: those with a handler). Only ones git also offers are announced. */
  capabilities?: string[];
  /** git's side of the pipe (default process.stdin). */
  input?: AsyncIterable<Uint8Array>;
  /** Our side of the pipe (default process.stdout). */
  output?: FilterOutputStream;
  /** Diagnostics (default: one line on stderr). Never stdout. */
  log?: (message: string) => void;
}

export interface FilterProcessSummary {
  requests: number;
  failed: number;
}

function isNodeWritable(o: FilterOutputStream): o is Pick<Writable, 'write' | 'once' | 'removeListener'> {
  return typeof (o as Writable).once === 'function';
}

/** A promise-returning, order-preserving writer with backpressure over either kind of output. */
function makeWriter(o: FilterOutputStream): (bytes: Uint8Array) => Promise<void> {
  if (!isNodeWritable(o)) return (b) => (o as { write(bytes: Uint8Array): Promise<void> }).write(b);
  const w = o as Writable;
  return async (b) => {
    if (!w.write(b)) await once(w, 'drain'); // rejects if the stream errors (git went away)
  };
}

/** Packets handed to git's pipe in one write (16 x 65516 bytes, about 1 MiB). */
const PACKETS_PER_WRITE = 16;

/**
 * How many packets go out per write: PACKETS_PER_WRITE on our own stdout (on Linux a pipe there is
 * written synchronously, Node's docs on process I/O, so nothing is held beyond the write); on any
 * other stream as many as fit under its high-water mark (at least one), so backpressure still
 * bounds what it buffers.
 */
function packetsPerWrite(o: FilterOutputStream): number {
  if (o === (process.stdout as unknown)) return PACKETS_PER_WRITE;
  const hwm = (o as Partial<Writable>).writableHighWaterMark ?? 0;
  return Math.max(1, Math.min(PACKETS_PER_WRITE, Math.floor(hwm / PKT_MAX_LENGTH)));
}

/** `payload[off, off + len)` as data packets of at most PKT_MAX_PAYLOAD bytes: header, payload slice, header, ... */
function packetParts(payload: Uint8Array, off: number, len: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  const hex = '0123456789abcdef';
  for (let done = 0; done < len; done += PKT_MAX_PAYLOAD) {
    const m = Math.min(PKT_MAX_PAYLOAD, len - done);
    const n = m + 4;
    const h = new Uint8Array(4);
    h[0] = hex.charCodeAt((n >>> 12) & 15);
    h[1] = hex.charCodeAt((n >>> 8) & 15);
    h[2] = hex.charCodeAt((n >>> 4) & 15);
    h[3] = hex.charCodeAt(n & 15);
    parts.push(h, payload.subarray(off + done, off + done + m));
  }
  return parts;
}

/**
 * Write `parts` in order and resolve once the output has taken them all (so the caller may reuse
 * the bytes): on a Node stream corked into one gathered write (no copy), its callback awaited;
 * elsewhere concatenated into one write.
 */
function makePartsWriter(o: FilterOutputStream, writeRaw: (bytes: Uint8Array) => Promise<void>): (parts: Uint8Array[]) => Promise<void> {
  if (!isNodeWritable(o) || typeof (o as Writable).cork !== 'function') {
    return (parts) => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) { out.set(p, at); at += p.length; }
      return writeRaw(out);
    };
  }
  const w = o as Writable;
  return (parts) => new Promise<void>((resolve, reject) => {
    w.cork();
    for (let i = 0; i < parts.length - 1; i++) w.write(parts[i]);
    w.write(parts[parts.length - 1], (err) => (err ? reject(err) : resolve()));
    w.uncork();
  });
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Serve git until it closes our input. Resolves at end of input between requests; rejects with
 * FilterProtocolError / PktLineError if git's side breaks the protocol or hangs up mid-request
 * (the caller should then exit non-zero).
 */
export async function runFilterProcess(options: FilterProcessOptions): Promise<FilterProcessSummary> {
  const handlers: Record<string, FilterHandler | undefined> = { clean: options.clean, smudge: options.smudge };
  const offered = options.capabilities ?? Object.keys(handlers).filter((k) => handlers[k]);
  const log = options.log ?? ((m: string) => { process.stderr.write(`git-theta filter: ${m}\n`); });
  const input = options.input ?? process.stdin;
  const writeRaw = makeWriter(options.output ?? process.stdout);
  const writeParts = makePartsWriter(options.output ?? process.stdout, writeRaw);
  const gather = packetsPerWrite(options.output ?? process.stdout);
  // process.stdin's reads are fresh buffers, so packets can be views into them (166 MB of copies
  // less for a 166 MB add); an input given by a caller may reuse its buffers and is copied
  const pkt = new PktLineReader(readerFromChunks(input, '<git filter pipe>'), 'git filter pipe', { copy: options.input !== undefined });
  const summary: FilterProcessSummary = { requests: 0, failed: 0 };

  // --- handshake ---
  const welcome = await pkt.readTextList();
  if (welcome === null) return summary; // git hung up before saying anything
  if (welcome[0] !== 'git-filter-client') {
    throw new FilterProtocolError(`expected welcome 'git-filter-client', got ${JSON.stringify(welcome[0] ?? '(empty list)')}`, { welcome });
  }
  const versions = welcome.slice(1).filter((l) => l.startsWith('version=')).map((l) => l.slice(8));
  if (!versions.includes('2')) {
    throw new FilterProtocolError(`git offers filter protocol version(s) ${versions.join(', ') || '(none)'}; only version 2 is supported`, { versions });
  }
  await writeRaw(encodeTextList(['git-filter-server', 'version=2']));
  const caps = await pkt.readTextList();
  if (caps === null) throw new FilterProtocolError('input ended during capability negotiation');
  const gitCaps = caps.filter((l) => l.startsWith('capability=')).map((l) => l.slice(11));
  const agreed = offered.filter((c) => gitCaps.includes(c));
  await writeRaw(encodeTextList(agreed.map((c) => `capability=${c}`)));

  // --- requests ---
  for (;;) {
    const lines = await pkt.readTextList();
    if (lines === null) return summary; // git closed the pipe: done
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new FilterProtocolError(`malformed request line ${JSON.stringify(l)} (expected key=value)`, { lines });
      headers[l.slice(0, eq)] = l.slice(eq + 1); // the value may itself contain '='
    }
    const req: FilterRequest = { command: headers.command ?? '', pathname: headers.pathname ?? '', headers };
    summary.requests++;

    // The request's content, read lazily by the handler and drained by us afterwards.
    let contentDone = false;
    const nextContent = async (): Promise<Uint8Array | null> => {
      if (contentDone) return null;
      const p = await pkt.read();
      if (p === null) throw new FilterProtocolError(`input ended inside the content of '${req.pathname}'`, { pathname: req.pathname });
      if (p.type === 'flush') { contentDone = true; return null; }
      if (p.type !== 'data') throw new PktLineError(`unexpected ${p.type} packet in the content of '${req.pathname}'`, { channel: 'git filter pipe' });
      return p.payload;
    };
    let readError: unknown;
    let reading: Promise<unknown> = Promise.resolve();
    const content: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]() {
        return {
          next: async () => {
            // serialise reads even if a handler calls next() concurrently
            const r = reading.then(nextContent);
            reading = r.catch(() => {});
            try {
              const v = await r;
              return v === null ? { done: true, value: undefined } : { done: false, value: v };
            } catch (e) {
              readError ??= e;
              throw e;
            }
          },
          return: async () => ({ done: true, value: undefined }),
        };
      },
    };
    const drain = async () => {
      await reading;
      if (readError) throw readError;
      while ((await nextContent()) !== null) { /* discard what the handler did not read */ }
    };

    // The response, started lazily: status=success goes out with the first content bytes.
    let headerSent = false;
    const held: Uint8Array[] = [];
    let chain: Promise<void> = Promise.resolve();
    const sendContent = async (bytes: Uint8Array) => {
      if (!headerSent) { headerSent = true; await writeRaw(encodeTextList(['status=success'])); }
      // `gather` packets per write, headers and payload slices gathered without copying
      for (let off = 0; off < bytes.length; off += PKT_MAX_PAYLOAD * gather) {
        await writeParts(packetParts(bytes, off, Math.min(PKT_MAX_PAYLOAD * gather, bytes.length - off)));
      }
    };
    const flushHeld = async () => {
      while (held.length) await sendContent(held.shift()!);
    };
    const out: FilterOutput = {
      write(bytes) {
        if (!bytes.length) return chain;
        if (!contentDone) { held.push(bytes.slice()); return chain; } // git is still sending; it is not reading yet
        chain = chain.then(async () => { await flushHeld(); await sendContent(bytes); });
        return chain;
      },
    };

    const handler = Object.hasOwn(handlers, req.command) && offered.includes(req.command) ? handlers[req.command] : undefined;
    let failure: unknown;
    if (!handler) {
      failure = new FilterProtocolError(`unsupported command ${JSON.stringify(req.command)} for '${req.pathname}'`);
    } else {
      try {
        await handler(req, content, out);
        await chain;
      } catch (e) {
        failure = e;
      }
    }
    // Never answer before git's final flush: read whatever content is left first. If that fails,
    // git's side is broken and the process cannot go on.
    if (readError && failure === readError) throw readError;
    await drain();
    if (failure === undefined) {
      try {
        await chain;
        await flushHeld();
      } catch (e) {
        failure = e;
      }
    }

    if (failure === undefined) {
      if (!headerSent) await writeRaw(encodeTextList(['status=success'])); // empty content
      await writeRaw(concat2(FLUSH_PKT, FLUSH_PKT)); // end of content, then an empty list: status unchanged
      continue;
    }
    summary.failed++;
    const status = failure instanceof FilterAbortError ? 'abort' : 'error';
    log(`${req.command || '(no command)'} '${req.pathname}' failed (status=${status}): ${errMessage(failure)}`);
    if (!headerSent) {
      await writeRaw(encodeTextList([`status=${status}`]));
    } else {
      await writeRaw(concat2(FLUSH_PKT, encodeTextList([`status=${status}`])));
    }
  }
}

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
