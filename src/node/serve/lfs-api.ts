/**
 * The server side of the git-lfs batch API and basic transfers (docs/api/batch.md,
 * basic-transfers.md of git-lfs) over the served repository's own object store
 * (`<gitdir>/lfs/objects/aa/bb/<oid>`, the layout git-lfs and git-theta use locally).
 *
 *   POST <base>/objects/batch       which objects to send / may be downloaded, with action hrefs
 *   GET  <base>/objects/<oid>       download
 *   PUT  <base>/objects/<oid>       upload: streamed to <lfs>/tmp, checked (SHA-256 and size), renamed into place
 *   POST <base>/verify              {oid, size}: 200 when the object is stored with that size
 *
 * Every oid is checked to be 64 lowercase hex digits before a path is built from it, so no
 * request can name a file outside the store.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { LFS_MEDIA_TYPE } from '../../lfs/client.ts';
import { lfsObjectPath } from '../../store/local.ts';
import { isOid } from '../../store/types.ts';

/** Largest batch request body we read (100 objects are ~10 KB; this leaves room for big batches). */
export const MAX_BATCH_BODY = 8 << 20;
/** Objects per batch request we answer (git-lfs sends at most 100). */
export const MAX_BATCH_OBJECTS = 1000;

/** Fault injection for tests: each counter is decremented as it fires. */
export interface ServeFaults {
  /** Answer this many batch requests with 500. */
  batch500?: number;
  /** Answer this many object downloads with 429 and this Retry-After. */
  download429?: number;
  retryAfter?: string;
  /** Serve downloads of these oids (or all, with `true`) with one bit flipped. */
  corrupt?: boolean | Set<string>;
  /** Require this Authorization header value on batch requests (401 otherwise). */
  authorization?: string;
  /** Ignore Range headers: answer every download 200 with the whole object (as some servers do). */
  ignoreRange?: boolean;
}

export interface ServeStats {
  /** Successful uploads per oid. */
  uploads: Map<string, number>;
  /** Downloads served per oid. */
  downloads: Map<string, number>;
  /** Batch requests: operation and object count. */
  batches: { operation: string; objects: number }[];
  /** Object bytes sent in download bodies (whole or ranged). */
  bytesSent?: number;
  /** Downloads answered 206 (a Range request honoured). */
  rangeRequests?: number;
}

/** A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `size` (null: none or more than one; 'bad': unsatisfiable). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'bad' {
  const m = header && /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (!m[1] && !m[2])) return null;
  let start: number, end: number;
  if (!m[1]) {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  }
  return start > end || start >= size ? 'bad' : { start, end };
}

export interface LfsApiContext {
  lfsDir: string;
  allowPush: boolean;
  faults: ServeFaults;
  stats: ServeStats;
  /** Decides a write (upload batch, PUT): answers the refusal itself and returns false, or sets the write's CORS headers and returns true. */
  authorizeWrite?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

function writeAllowed(ctx: LfsApiContext, req: IncomingMessage, res: ServerResponse): boolean {
  if (ctx.authorizeWrite) return ctx.authorizeWrite(req, res);
  if (!ctx.allowPush) { sendJson(res, 403, { message: READ_ONLY_MESSAGE }); return false; }
  return true;
}

export const READ_ONLY_MESSAGE = "this git-theta server is read-only; restart it with 'git theta serve --allow-push' to accept pushes";

export function sendJson(res: ServerResponse, status: number, body: unknown, type = LFS_MEDIA_TYPE): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw Object.assign(new Error(`request body larger than ${limit} bytes`), { status: 413 });
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

async function statFile(path: string): Promise<number | null> {
  try {
    const s = await fsp.stat(path);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

/**
 * Handle `rest` (the path after `<repo>/info/lfs`), or return false when it is not an LFS route.
 * `base` is the absolute URL of `<repo>/info/lfs` as the client addressed it (for action hrefs).
 */
export async function handleLfs(ctx: LfsApiContext, req: IncomingMessage, res: ServerResponse, rest: string, base: string): Promise<boolean> {
  const method = req.method ?? 'GET';
  if (rest === '/objects/batch') {
    if (method !== 'POST') return sendJson(res, 405, { message: 'use POST for the batch API' }), true;
    await batch(ctx, req, res, base);
    return true;
  }
  const m = /^\/objects\/([^/]+)$/.exec(rest);
  if (m) {
    const oid = m[1]!;
    if (!isOid(oid)) return sendJson(res, 422, { message: `invalid object id '${String(oid).slice(0, 80)}': expected 64 lowercase hex digits` }), true;
    if (method === 'GET' || method === 'HEAD') await download(ctx, req, res, oid);
    else if (method === 'PUT') await upload(ctx, req, res, oid);
    else sendJson(res, 405, { message: 'use GET or PUT for objects' });
    return true;
  }
  if (rest === '/verify' && method === 'POST') {
    let doc: { oid?: unknown; size?: unknown };
    try {
      doc = JSON.parse((await readBody(req, 64 << 10)).toString('utf8'));
    } catch {
      return sendJson(res, 422, { message: 'verify: the body is not JSON' }), true;
    }
    if (!isOid(doc.oid) || !Number.isSafeInteger(doc.size)) return sendJson(res, 422, { message: 'verify: expected {"oid": <sha256>, "size": <bytes>}' }), true;
    const size = await statFile(lfsObjectPath(ctx.lfsDir, doc.oid));
    if (size === null) return sendJson(res, 404, { message: `object ${doc.oid} is not stored` }), true;
    if (size !== doc.size) return sendJson(res, 422, { message: `object ${doc.oid} has ${size} bytes, not ${doc.size}` }), true;
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
    return true;
  }
  if (rest.startsWith('/locks')) return sendJson(res, 404, { message: 'file locking is not supported by git theta serve' }), true;
  return false;
}

async function batch(ctx: LfsApiContext, req: IncomingMessage, res: ServerResponse, base: string): Promise<void> {
  let doc: { operation?: unknown; objects?: unknown; transfers?: unknown; hash_algo?: unknown };
  try {
    doc = JSON.parse((await readBody(req, MAX_BATCH_BODY)).toString('utf8'));
  } catch (e) {
    return sendJson(res, (e as { status?: number }).status ?? 422, { message: `batch: the request is not valid JSON (${(e as Error).message})` });
  }
  const operation = doc?.operation;
  if (operation !== 'download' && operation !== 'upload') return sendJson(res, 422, { message: `batch: operation must be 'download' or 'upload'` });
  if (!Array.isArray(doc.objects)) return sendJson(res, 422, { message: 'batch: "objects" must be a list' });
  if (doc.objects.length > MAX_BATCH_OBJECTS) return sendJson(res, 413, { message: `batch: at most ${MAX_BATCH_OBJECTS} objects per request` });
  if (doc.hash_algo !== undefined && doc.hash_algo !== 'sha256') return sendJson(res, 409, { message: `batch: unsupported hash algorithm '${String(doc.hash_algo)}'; this server uses sha256` });
  if (Array.isArray(doc.transfers) && doc.transfers.length && !doc.transfers.includes('basic')) {
    return sendJson(res, 422, { message: `batch: only the 'basic' transfer is supported` });
  }
  if (ctx.faults.authorization && req.headers.authorization !== ctx.faults.authorization) {
    res.setHeader('LFS-Authenticate', 'Basic realm="git-theta"');
    return sendJson(res, 401, { message: 'credentials needed' });
  }
  if (operation === 'upload' && !writeAllowed(ctx, req, res)) return;
  ctx.stats.batches.push({ operation, objects: doc.objects.length });
  if (ctx.faults.batch500 && ctx.faults.batch500 > 0) {
    ctx.faults.batch500--;
    return sendJson(res, 500, { message: 'injected fault: batch 500' });
  }
  const objects = [];
  for (const o of doc.objects as { oid?: unknown; size?: unknown }[]) {
    const oid = o?.oid;
    const size = o?.size;
    if (!isOid(oid)) {
      objects.push({ oid: String(oid).slice(0, 80), size, error: { code: 422, message: 'invalid object id: expected 64 lowercase hex digits' } });
      continue;
    }
    if (!Number.isSafeInteger(size) || (size as number) < 0) {
      objects.push({ oid, size, error: { code: 422, message: 'invalid size: expected a whole number >= 0' } });
      continue;
    }
    const have = await statFile(lfsObjectPath(ctx.lfsDir, oid));
    const href = `${base}/objects/${oid}`;
    if (operation === 'download') {
      if (have === null) objects.push({ oid, size, error: { code: 404, message: 'Object does not exist' } });
      else objects.push({ oid, size: have, authenticated: true, actions: { download: { href, expires_in: 3600 } } });
    } else if (have !== null && have === size) {
      objects.push({ oid, size }); // already stored: nothing to send
    } else {
      objects.push({ oid, size, authenticated: true, actions: { upload: { href, expires_in: 3600 }, verify: { href: `${base}/verify`, expires_in: 3600 } } });
    }
  }
  sendJson(res, 200, { transfer: 'basic', objects, hash_algo: 'sha256' });
}

async function download(ctx: LfsApiContext, req: IncomingMessage, res: ServerResponse, oid: string): Promise<void> {
  const path = lfsObjectPath(ctx.lfsDir, oid);
  const size = await statFile(path);
  if (size === null) return sendJson(res, 404, { message: `object ${oid} does not exist` });
  if (ctx.faults.download429 && ctx.faults.download429 > 0) {
    ctx.faults.download429--;
    res.writeHead(429, { 'Retry-After': ctx.faults.retryAfter ?? '1', 'Content-Type': LFS_MEDIA_TYPE });
    res.end(JSON.stringify({ message: 'injected fault: slow down' }));
    return;
  }
  ctx.stats.downloads.set(oid, (ctx.stats.downloads.get(oid) ?? 0) + 1);
  // one byte range (what resumed downloads and partial reads ask for); several ranges get the whole object
  const range = ctx.faults.ignoreRange ? null : parseRange(req.headers.range, size);
  if (range === 'bad') {
    res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Type': LFS_MEDIA_TYPE });
    return void res.end(JSON.stringify({ message: `range ${req.headers.range} is outside the object's ${size} bytes` }));
  }
  if (range) {
    ctx.stats.rangeRequests = (ctx.stats.rangeRequests ?? 0) + 1;
    res.writeHead(206, { 'Content-Type': 'application/octet-stream', 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${size}`, 'Accept-Ranges': 'bytes' });
  } else {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size, ...(ctx.faults.ignoreRange ? {} : { 'Accept-Ranges': 'bytes' }) });
  }
  if (req.method === 'HEAD') return void res.end();
  const corrupt = ctx.faults.corrupt === true || (ctx.faults.corrupt instanceof Set && ctx.faults.corrupt.has(oid));
  let first = true;
  const flip = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (corrupt && first && chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[0] ^= 1;
      }
      first = false;
      ctx.stats.bytesSent = (ctx.stats.bytesSent ?? 0) + chunk.length;
      cb(null, chunk);
    },
  });
  await pipeline(createReadStream(path, range ? { start: range.start, end: range.end } : {}), flip, res).catch(() => res.destroy());
}

async function upload(ctx: LfsApiContext, req: IncomingMessage, res: ServerResponse, oid: string): Promise<void> {
  if (!writeAllowed(ctx, req, res)) return;
  const tmpDir = join(ctx.lfsDir, 'tmp');
  await fsp.mkdir(tmpDir, { recursive: true });
  const tmp = join(tmpDir, `serve-${randomBytes(12).toString('hex')}.tmp`);
  const hash = createHash('sha256');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    await pipeline(req, count, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    const actual = hash.digest('hex');
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) !== size) {
      await fsp.unlink(tmp).catch(() => {});
      return sendJson(res, 400, { message: `upload of ${oid}: received ${size} bytes, Content-Length said ${declared}` });
    }
    if (actual !== oid) {
      await fsp.unlink(tmp).catch(() => {});
      return sendJson(res, 422, { message: `upload of ${oid}: the bytes hash to ${actual}; nothing was stored` });
    }
    const path = lfsObjectPath(ctx.lfsDir, oid);
    await fsp.mkdir(dirname(path), { recursive: true });
    await fsp.rename(tmp, path);
    ctx.stats.uploads.set(oid, (ctx.stats.uploads.get(oid) ?? 0) + 1);
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
  } catch (e) {
    await fsp.unlink(tmp).catch(() => {});
    if (!res.headersSent) sendJson(res, 500, { message: `upload of ${oid} failed: ${(e as Error).message}` });
    else res.destroy();
  }
}
