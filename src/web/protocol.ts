/**
 * Messages between the page (main.ts) and its worker (worker.ts). The worker owns the in-memory
 * clone, the object store and the Wasm kernels; the page only renders. Every request carries an
 * `id` answered by exactly one `result` or `error` message; `progress` messages may come between.
 */
import type { ListedModel, RevisionsDiff } from '../repo/index.ts';

export interface CommitInfo {
  oid: string;
  /** First line of the message. */
  subject: string;
  author: string;
  /** Seconds since the epoch. */
  time: number;
}

export interface OpenResult {
  url: string;
  lfsUrl: string | null;
  /** The branch HEAD points at after the clone (null when detached). */
  head: string | null;
  branches: { name: string; oid: string }[];
  tags: string[];
  /** Where the clone came from: see RemoteRepo['source']; `persistent` is false when IndexedDB could not be used. */
  cache: { persistent: boolean; source: 'cloned' | 'fetched' | 'current' | 'offline'; offlineReason?: string };
}

export interface DownloadStats {
  /** LFS objects downloaded and their bytes, over the worker's life. */
  objects: number;
  bytes: number;
}

export interface DiffResult {
  diff: RevisionsDiff;
  downloads: DownloadStats;
  /** Milliseconds the worker spent on the diff (including downloads). */
  ms: number;
}

export type Request =
  | { id: number; type: 'open'; url: string; lfsUrl?: string | null; headers?: Record<string, string> }
  | { id: number; type: 'log'; ref: string; depth: number }
  | { id: number; type: 'models'; ref: string }
  | { id: number; type: 'diff'; from: string; to: string; paths?: string[] }
  | { id: number; type: 'clear' };

export type ResultOf<T extends Request['type']> = T extends 'open'
  ? OpenResult
  : T extends 'log'
    ? CommitInfo[]
    : T extends 'models'
      ? ListedModel[]
      : T extends 'clear'
        ? boolean
        : DiffResult;

export interface ProgressMessage {
  type: 'progress';
  id: number;
  /** 'clone': git objects (isomorphic-git's phases); 'download': LFS objects, in bytes. */
  phase: 'clone' | 'download';
  label: string;
  loaded: number;
  /** 0 when unknown. */
  total: number;
}

export type Response =
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; message: string; code?: string }
  | ProgressMessage;
