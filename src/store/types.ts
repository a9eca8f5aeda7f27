/**
 * Object stores: content-addressed blobs named by the SHA-256 of their bytes (git-lfs oids).
 * `ObjectStore` is what the rest of the library uses; `StoreFs` is the file-system capability a
 * local store is given (node:fs at the Node edge, an in-memory one for tests and browsers), in
 * the way isomorphic-git is handed `fs`.
 */
import { InvalidOidError } from '../core/errors.ts';

/** A SHA-256 as 64 lowercase hex digits. */
export type Oid = string;

const OID_RE = /^[0-9a-f]{64}$/;

export function isOid(x: unknown): x is Oid {
  return typeof x === 'string' && OID_RE.test(x);
}

/** Throws InvalidOidError unless `x` is 64 lowercase hex digits. Every path is built after this check. */
export function assertOid(x: unknown): asserts x is Oid {
  if (!isOid(x)) throw new InvalidOidError(x);
}

export interface PutResult {
  oid: Oid;
  size: number;
}

export interface ObjectStore {
  /** Whether an object with this id is present (not verified). */
  has(oid: Oid): Promise<boolean>;
  /**
   * Store bytes; the id is their SHA-256, computed while streaming. The object appears atomically
   * (all of it or nothing); if it already exists it is not rewritten. With `expect` (bytes that
   * should have a known id, e.g. a download), bytes that hash to another id are not kept and
   * ObjectCorruptError is thrown; a store that ignores `expect` keeps them under their own id, so a
   * caller compares the returned id either way.
   */
  put(data: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array, expect?: Oid): Promise<PutResult>;
  /** All of an object's bytes, verified against its id (ObjectCorruptError / ObjectMissingError). */
  get(oid: Oid): Promise<Uint8Array>;
  /**
   * An object's bytes in chunks of at most `chunkBytes`, hashed as they go. A mismatch can only be
   * known at the end, so the final step throws ObjectCorruptError and a consumer must then discard
   * what it received (write to a temp file and rename only after the iteration completes).
   */
  getChunks(oid: Oid, chunkBytes?: number): AsyncIterable<Uint8Array>;
  /** Size in bytes (ObjectMissingError if absent). */
  size(oid: Oid): Promise<number>;
  /**
   * Optional: a few byte ranges of an object, read without verifying the object (its id cannot be
   * checked from a part). For heuristics only, never for data that is stored or returned.
   */
  readRanges?(oid: Oid, ranges: { offset: number; length: number }[]): Promise<Uint8Array[]>;
  /** Remove an object; resolves to whether it existed. */
  delete(oid: Oid): Promise<boolean>;
  /** Every stored id (order unspecified). */
  list(): AsyncIterable<Oid>;
}

/**
 * Optional on a store: a put that returns once the bytes are hashed, their file written in the
 * background (from a copy: the caller may reuse its array). Reads of such an object wait for its
 * write; `flush` waits for every one and throws the first failure. Whoever puts this way calls
 * `flush` before it hands out an id (a clean before it returns metadata).
 */
export interface DeferredPuts {
  putDeferred(bytes: Uint8Array): Promise<PutResult>;
  flush(): Promise<void>;
}

/** A file opened for reading at offsets. */
export interface StoreReadHandle {
  readonly size: number;
  /** Up to `length` bytes at `offset`; fewer only at the end of the file. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A new file opened for appending. */
export interface StoreWriteHandle {
  /** Append all of `bytes` (resolves once the file holds them, so the caller may reuse the buffer). */
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface StoreStat {
  size: number;
  isFile: boolean;
  isDirectory: boolean;
}

/**
 * The file system a local store needs. Paths are absolute (or store-relative) strings joined with
 * '/'. Missing paths are not errors where noted, so implementations need not agree on error codes.
 */
export interface StoreFs {
  readFile(path: string): Promise<Uint8Array>;
  openRead(path: string): Promise<StoreReadHandle>;
  /** Create a new file for writing; fails if it exists. */
  createWrite(path: string): Promise<StoreWriteHandle>;
  /** mkdir -p. */
  mkdirp(path: string): Promise<void>;
  /** Atomic rename; replaces `to` if it exists (POSIX rename semantics). */
  rename(from: string, to: string): Promise<void>;
  /** null if the path does not exist. */
  stat(path: string): Promise<StoreStat | null>;
  /** Resolves to false if the path did not exist. */
  unlink(path: string): Promise<boolean>;
  /** Entry names; [] if the directory does not exist. */
  readdir(path: string): Promise<string[]>;
  /**
   * Optional: write `bytes` to the new file `tmp` (failing if it exists), then rename it to `path`,
   * making `path`'s directory if missing; off the caller's thread, so that the file system's waits
   * (a create can wait hundreds of µs for the journal while much data is being written) overlap
   * the caller's work. On failure the temp file is removed. Stores use it for deferred puts.
   */
  writeNew?(tmp: string, path: string, bytes: Uint8Array): Promise<void>;
}
