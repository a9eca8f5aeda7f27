/**
 * Reading parts of an LFS object over HTTP: a RandomAccessSource whose reads are `Range` requests
 * on the object's download href, so a checkpoint's header and only the tensors a caller reads are
 * downloaded (the formats skip the bytes of tensors nobody reads).
 *
 * - A read smaller than READ_AHEAD_BYTES fetches READ_AHEAD_BYTES (a header parsed field by field
 *   costs one request, not hundreds); larger reads (tensor chunks) fetch exactly what is asked.
 * - A server that ignores Range answers 200 with the whole object: that body is stored as the
 *   object through the caller's `whole(body)` (hashed as it streams; stored only if its SHA-256 and
 *   size match), then read locally. (git-lfs's lfstest-gitserver does this for every object but
 *   its magic retry-range ones.)
 * - What a ranged read can be checked against: its length and Content-Range. Its bytes cannot be
 *   checked against the object's SHA-256 unless every byte of the object is read; when reads do
 *   cover the object from byte 0 in order, the SHA-256 is checked at the end (a mismatch throws
 *   LfsCorruptDownloadError), and `count.verified` says how many objects were.
 *
 * Runtime-neutral (fetch Responses only).
 */
import { ThetaError } from '../core/errors.ts';
import type { RandomAccessSource } from '../core/io.ts';
import { createSha256 } from '../core/sha256.ts';
import { LfsCorruptDownloadError } from './client.ts';

/** Small reads fetch this much: a safetensors/npy header usually fits, GGUF's metadata often does. */
export const READ_AHEAD_BYTES = 64 << 10;

/** What was downloaded for reads (one per store, summed over objects). */
export interface FetchCount {
  /** Body bytes received: ranged reads plus whole objects. */
  bytes: number;
  /** Range requests answered with 206. */
  rangeRequests: number;
  /** Objects downloaded whole (not in the local store and read whole, or the server ignored Range). */
  wholeObjects: number;
  /** Objects read by ranges whose every byte was read in order, so their SHA-256 was checked. */
  verified: number;
}

export function newFetchCount(): FetchCount {
  return { bytes: 0, rangeRequests: 0, wholeObjects: 0, verified: 0 };
}

/** The server answered a Range request with bytes other than those asked for. */
export class RangeMismatchError extends ThetaError {
  constructor(oid: string, asked: string, got: string) {
    super('E_LFS_RANGE', `object ${oid}: asked for ${asked}, the server answered ${got}; report this to the LFS server's operator (reading whole objects works: run 'git theta fetch' first)`, { oid, asked, got });
    this.name = 'RangeMismatchError';
  }
}

export interface RangedObjectOptions {
  oid: string;
  size: number;
  name: string;
  /** A GET on the download href, with this Range header (LfsClient.rangeGetter). */
  get(range: string | null): Promise<Response>;
  /** Store this whole-object body (verifiedBody) and read the object locally: the fallback when Range is ignored. */
  whole(body: AsyncIterable<Uint8Array>): Promise<RandomAccessSource>;
  count: FetchCount;
  readAhead?: number;
}

async function bodyBytes(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * A whole-object body as chunks, counted, hashed as they pass; the last step throws
 * LfsCorruptDownloadError when the bytes are not `oid` of `size` bytes (a store's put then keeps nothing).
 */
export async function* verifiedBody(res: Response, oid: string, size: number, count: FetchCount): AsyncGenerator<Uint8Array> {
  const h = createSha256();
  let n = 0;
  const take = (c: Uint8Array) => {
    n += c.length;
    count.bytes += c.length;
    if (n > size) throw new LfsCorruptDownloadError(oid, `more than the ${size} bytes announced`);
    h.update(c);
  };
  if (!res.body) {
    const b = await bodyBytes(res);
    take(b);
    yield b;
  } else {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!value?.length) continue;
      take(value);
      yield value;
    }
  }
  if (n !== size) throw new LfsCorruptDownloadError(oid, `${n} bytes, expected ${size}`);
  const actual = h.digestHex();
  if (actual !== oid) throw new LfsCorruptDownloadError(oid, `its bytes hash to ${actual}`);
  count.wholeObjects++;
}

export function rangedObjectSource(o: RangedObjectOptions): RandomAccessSource & { readonly ranged: boolean } {
  const readAhead = o.readAhead ?? READ_AHEAD_BYTES;
  let whole: RandomAccessSource | null = null;
  let buf: { offset: number; bytes: Uint8Array } | null = null;
  // SHA-256 over the bytes fetched so far when they run from 0 without a gap
  const sha = createSha256();
  let hashedTo = 0;
  let hashOk = true;

  const hashForward = (offset: number, bytes: Uint8Array) => {
    if (!hashOk) return;
    const end = offset + bytes.length;
    if (offset > hashedTo) return void (hashOk = false); // a gap: the object's hash cannot be checked
    if (end <= hashedTo) return;
    sha.update(bytes.subarray(hashedTo - offset));
    hashedTo = end;
    if (hashedTo === o.size) {
      hashOk = false; // done
      const actual = sha.digestHex();
      if (actual !== o.oid) throw new LfsCorruptDownloadError(o.oid, `its bytes, read by ranges, hash to ${actual}`);
      o.count.verified++;
    }
  };

  const src = {
    name: o.name,
    size: o.size,
    get ranged() { return whole === null; },
    async read(offset: number, length: number): Promise<Uint8Array> {
      const end = Math.min(o.size, offset + length);
      if (end <= offset) return new Uint8Array(0);
      if (whole) return whole.read(offset, end - offset);
      if (buf && offset >= buf.offset && end <= buf.offset + buf.bytes.length) return buf.bytes.subarray(offset - buf.offset, end - buf.offset);
      // the part already fetched is not asked for again
      const head = buf && offset >= buf.offset && offset < buf.offset + buf.bytes.length ? buf.bytes.subarray(offset - buf.offset) : null;
      const from = offset + (head?.length ?? 0);
      const fetchEnd = Math.min(o.size, Math.max(end, from + readAhead));
      const asked = `bytes=${from}-${fetchEnd - 1}`;
      const res = await o.get(asked);
      if (res.status !== 206) {
        // the server sends the whole object: store it (verified) and read it locally
        whole = await o.whole(verifiedBody(res, o.oid, o.size, o.count));
        buf = null;
        return whole.read(offset, end - offset);
      }
      const cr = res.headers.get('content-range') ?? '';
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/i.exec(cr.trim());
      if (!m || Number(m[1]) !== from || Number(m[2]) !== fetchEnd - 1 || (m[3] !== '*' && Number(m[3]) !== o.size)) {
        throw new RangeMismatchError(o.oid, asked, cr ? `Content-Range: ${cr}` : 'no Content-Range');
      }
      const bytes = await bodyBytes(res);
      o.count.bytes += bytes.length;
      o.count.rangeRequests++;
      if (bytes.length !== fetchEnd - from) throw new RangeMismatchError(o.oid, asked, `${bytes.length} bytes`);
      hashForward(from, bytes);
      if (!head) {
        buf = { offset, bytes };
        return bytes.subarray(0, end - offset);
      }
      const joined = new Uint8Array(head.length + bytes.length);
      joined.set(head);
      joined.set(bytes, head.length);
      buf = { offset, bytes: joined };
      return joined.subarray(0, end - offset);
    },
    async close() {
      buf = null;
      await whole?.close?.();
    },
  };
  return src;
}
