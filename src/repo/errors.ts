/**
 * Typed errors of the repository functions. Each has a literal `code` and structured `data`
 * (tests assert on the code), like the rest of the library's ThetaErrors.
 */
import { ThetaError } from '../core/errors.ts';

/** A required option was not given (checked before any work). */
export class MissingParameterError extends ThetaError {
  constructor(caller: string, parameter: string) {
    super('E_MISSING_PARAMETER', `${caller}: the option '${parameter}' is required`, { caller, parameter });
    this.name = 'MissingParameterError';
  }
}

/** A revision (branch, tag, commit id, `HEAD~1`, ...) names no commit in the repository. */
export class RevisionNotFoundError extends ThetaError {
  constructor(ref: string, detail = '') {
    super('E_REVISION_NOT_FOUND', `revision '${ref}' not found${detail ? ` (${detail})` : ''}`, { ref });
    this.name = 'RevisionNotFoundError';
  }
}

/** The path does not exist (as a file) at that revision. */
export class PathNotFoundError extends ThetaError {
  constructor(filepath: string, ref: string) {
    super('E_PATH_NOT_FOUND', `'${filepath}' does not exist at revision '${ref}'`, { filepath, ref });
    this.name = 'PathNotFoundError';
  }
}

/** The path exists but its blob is neither git-theta metadata nor a git-lfs pointer to a checkpoint. */
export class NotAModelError extends ThetaError {
  constructor(filepath: string, ref: string, expected = 'git-theta metadata or a git-lfs pointer') {
    super('E_NOT_A_MODEL', `'${filepath}' at revision '${ref}' is not a tracked model (expected ${expected}); is it tracked with 'git theta track'?`, {
      filepath, ref,
    });
    this.name = 'NotAModelError';
  }
}

/** .gitattributes binds the path to another filter (e.g. filter=lfs), so git-theta must not commit it. */
export class TrackedByOtherFilterError extends ThetaError {
  constructor(filepath: string, filter: string) {
    super('E_TRACKED_BY_OTHER_FILTER', `'${filepath}' is bound to filter=${filter} in .gitattributes; untrack it there before saving it with git-theta`, {
      filepath, filter,
    });
    this.name = 'TrackedByOtherFilterError';
  }
}
