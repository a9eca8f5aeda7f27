/** Errors raised while reading what the Python Git-Theta wrote. */
import { ThetaError } from '../../core/errors.ts';

/** An LFS object, blosc frame, LZ4 block, zarr store or metadata entry breaks the format (corrupt or lying). */
export class PyThetaFormatError extends ThetaError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('E_PY_THETA_FORMAT', message, data);
    this.name = 'PyThetaFormatError';
  }
}

/** An update chain (`last_commit`) cannot be followed: a commit is missing (shallow clone) or the chain loops. */
export class PyThetaHistoryError extends ThetaError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('E_PY_THETA_HISTORY', message, data);
    this.name = 'PyThetaHistoryError';
  }
}
