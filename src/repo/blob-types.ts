/** What a model path's blob is (model-blob.ts classifies; python-blob.ts reads the Python tool's), kept apart so both import it. */
import type { ModelMetadata } from '../theta/metadata.ts';

export interface LfsPointer {
  oid: string;
  size: number;
}

export type ModelBlob =
  | { kind: 'theta'; blobOid: string; metadata: ModelMetadata }
  | { kind: 'lfs'; blobOid: string; pointer: LfsPointer };
