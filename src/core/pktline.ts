/**
 * pkt-line framing (git's protocol-common): every packet starts with four hex digits giving the
 * packet's total length, header included. Three lengths are special: 0000 (flush: end of a
 * list or of content), 0001 (delim: section separator, protocol v2) and 0002 (response-end).
 * Lengths 0003 and anything above 65520 are invalid.
 *
 * Pure encode/decode plus a streaming decoder over a ByteReader; no I/O of its own, so it works
 * in every runtime. The long-running filter process (src/node/git/filter-process.ts) is built on it.
 */
import { ArgumentError, PktLineError, TruncatedError } from './errors.ts';
import type { ByteReader } from './io.ts';

/** Longest packet git accepts, header included (LARGE_PACKET_MAX in git's pkt-line.h). */
export const PKT_MAX_LENGTH = 65520;
/** Longest payload: PKT_MAX_LENGTH minus the 4-byte length header (LARGE_PACKET_DATA_MAX). */
export const PKT_MAX_PAYLOAD = PKT_MAX_LENGTH - 4;

export type Packet =
  | { type: 'data'; payload: Uint8Array }
  | { type: 'flush' }
  | { type: 'delim' }
  | { type: 'response-end' };

const HEX = '0123456789abcdef';
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

function header(len: number, out: Uint8Array, at = 0): void {
  out[at] = HEX.charCodeAt((len >>> 12) & 15);
  out[at + 1] = HEX.charCodeAt((len >>> 8) & 15);
  out[at + 2] = HEX.charCodeAt((len >>> 4) & 15);
  out[at + 3] = HEX.charCodeAt(len & 15);
}

/** `0000`: ends a list of packets or a stream of content. */
export const FLUSH_PKT: Uint8Array = enc.encode('0000');
/** `0001`: separates sections (protocol v2). */
export const DELIM_PKT: Uint8Array = enc.encode('0001');
/** `0002`: ends a response (protocol v2 stateless). */
export const RESPONSE_END_PKT: Uint8Array = enc.encode('0002');

/** One data packet. Payload must be 1..PKT_MAX_PAYLOAD bytes (git never sends the empty `0004`). */
export function encodeData(payload: Uint8Array): Uint8Array {
  if (payload.length === 0) throw new ArgumentError('pkt-line: a data packet needs at least one byte (an empty one means nothing; send a flush instead)');
  if (payload.length > PKT_MAX_PAYLOAD) {
    throw new ArgumentError(`pkt-line: payload of ${payload.length} bytes exceeds the ${PKT_MAX_PAYLOAD}-byte limit; split it with encodeDataPackets`, { length: payload.length });
  }
  const out = new Uint8Array(payload.length + 4);
  header(payload.length + 4, out);
  out.set(payload, 4);
  return out;
}

/** A text packet: the line plus a trailing LF (added if missing), as git writes them. */
export function encodeText(line: string): Uint8Array {
  return encodeData(enc.encode(line.endsWith('\n') ? line : line + '\n'));
}

/** Text packets followed by a flush, as one buffer (one write on the wire). */
export function encodeTextList(lines: readonly string[]): Uint8Array {
  const parts = lines.map(encodeText);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + 4);
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  out.set(FLUSH_PKT, off);
  return out;
}

/**
 * Any number of bytes as data packets of at most PKT_MAX_PAYLOAD payload each (zero packets for
 * zero bytes). Each element is one complete packet; the payloads are copied.
 */
export function encodeDataPackets(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < bytes.length; off += PKT_MAX_PAYLOAD) {
    out.push(encodeData(bytes.subarray(off, Math.min(bytes.length, off + PKT_MAX_PAYLOAD))));
  }
  return out;
}

/** Parse a 4-byte length header. Throws PktLineError on anything but four hex digits. */
export function parseLength(h: Uint8Array, at = 0, channel?: string): number {
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const c = h[i]!;
    let v: number;
    if (c >= 48 && c <= 57) v = c - 48; // 0-9
    else if (c >= 97 && c <= 102) v = c - 87; // a-f
    else if (c >= 65 && c <= 70) v = c - 55; // A-F (git's hex parser accepts both cases)
    else {
      throw new PktLineError(`malformed length header ${JSON.stringify(dec.decode(h.subarray(0, 4)))} at byte ${at}: expected four hex digits`, { channel, at });
    }
    n = (n << 4) | v;
  }
  if (n === 3) throw new PktLineError(`invalid packet length 0003 at byte ${at}`, { channel, at });
  if (n > PKT_MAX_LENGTH) throw new PktLineError(`packet length ${n} at byte ${at} exceeds the ${PKT_MAX_LENGTH}-byte maximum`, { channel, at, length: n });
  return n;
}

function special(n: number): Packet | undefined {
  if (n === 0) return { type: 'flush' };
  if (n === 1) return { type: 'delim' };
  if (n === 2) return { type: 'response-end' };
  return undefined;
}

/** Decode a whole buffer of packets (tests, small messages). Throws PktLineError if it ends mid-packet. */
export function decodePackets(bytes: Uint8Array, channel?: string): Packet[] {
  const out: Packet[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (bytes.length - off < 4) throw new PktLineError(`truncated length header at byte ${off} (${bytes.length - off} of 4 bytes)`, { channel, at: off });
    const n = parseLength(bytes.subarray(off, off + 4), off, channel);
    const s = special(n);
    if (s) { out.push(s); off += 4; continue; }
    if (off + n > bytes.length) {
      throw new PktLineError(`truncated packet at byte ${off}: header says ${n} bytes, ${bytes.length - off} remain`, { channel, at: off, length: n });
    }
    out.push({ type: 'data', payload: bytes.slice(off + 4, off + n) });
    off += n;
  }
  return out;
}

/** A text packet's payload as a string, without its trailing LF. */
export function packetText(payload: Uint8Array): string {
  const s = dec.decode(payload);
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

/**
 * Streaming decoder: reads one packet at a time from a ByteReader (git's pipe). Data payloads
 * are fresh copies the caller may keep. End of input exactly between packets is reported as
 * `null`; anywhere else it is a PktLineError.
 */
export class PktLineReader {
  private readonly channel: string;
  private readonly copy: boolean;
  /**
   * `copy: false` hands out payloads that may be views into the reader's chunks: only for a source
   * whose chunks are never reused (a pipe's reads are fresh buffers), to spare a copy of every packet.
   */
  constructor(readonly reader: ByteReader, channel?: string, o: { copy?: boolean } = {}) {
    this.channel = channel ?? reader.name;
    this.copy = o.copy ?? true;
  }

  /** The next packet, or null at a clean end of input. */
  async read(): Promise<Packet | null> {
    const at = this.reader.position;
    const first = await this.reader.readUpTo(4);
    if (first.length === 0) return null;
    let h = first;
    if (first.length < 4) {
      h = new Uint8Array(4);
      h.set(first);
      let got = first.length;
      while (got < 4) {
        const more = await this.reader.readUpTo(4 - got);
        if (!more.length) throw new PktLineError(`input ended inside a length header at byte ${at} (${got} of 4 bytes)`, { channel: this.channel, at });
        h.set(more, got);
        got += more.length;
      }
    }
    const n = parseLength(h, at, this.channel);
    const s = special(n);
    if (s) return s;
    if (n === 4) return { type: 'data', payload: new Uint8Array(0) };
    let body: Uint8Array;
    try {
      body = await this.reader.readExactly(n - 4);
    } catch (e) {
      if (e instanceof TruncatedError) {
        throw new PktLineError(`input ended inside a packet at byte ${at}: header says ${n} bytes, got ${4 + (e.data.got as number)}`, { channel: this.channel, at, length: n });
      }
      throw e;
    }
    return { type: 'data', payload: this.copy ? body.slice() : body };
  }

  /** The next packet, which must be a data packet, as text without its LF; null for a flush; throws at end of input. */
  async readTextOrFlush(): Promise<string | null> {
    const p = await this.read();
    if (p === null) throw new PktLineError('input ended where a text packet or flush was expected', { channel: this.channel, at: this.reader.position });
    if (p.type === 'flush') return null;
    if (p.type !== 'data') throw new PktLineError(`unexpected ${p.type} packet where a text packet was expected`, { channel: this.channel, at: this.reader.position });
    return packetText(p.payload);
  }

  /**
   * Text packets up to the next flush. Returns null if the input ends cleanly before the first
   * packet (the peer hung up between messages); ending anywhere else is a PktLineError.
   */
  async readTextList(): Promise<string[] | null> {
    const first = await this.read();
    if (first === null) return null;
    const lines: string[] = [];
    let p: Packet = first;
    for (;;) {
      if (p.type === 'flush') return lines;
      if (p.type !== 'data') throw new PktLineError(`unexpected ${p.type} packet in a list of text packets`, { channel: this.channel, at: this.reader.position });
      lines.push(packetText(p.payload));
      const next = await this.read();
      if (next === null) throw new PktLineError('input ended inside a list of text packets (no flush)', { channel: this.channel, at: this.reader.position });
      p = next;
    }
  }
}
