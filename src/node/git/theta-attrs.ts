/** The attributes that bind a path to git-theta's filter, diff and merge drivers. */
export const THETA_ATTRS = 'filter=theta diff=theta merge=theta';
