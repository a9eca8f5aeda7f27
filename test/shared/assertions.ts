/** Assertions and reference computations shared by the test files (every runtime). */
import * as assert from 'uvu/assert';

/** SHA-256 hex of bytes, through WebCrypto (an implementation independent of ours). */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes.slice()));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** An IEEE half-precision bit pattern as a number (the reference for F16 conversions). */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * `p` must reject with a typed error of this `code` (and `data.reason`, and a message matching
 * `re`, when given) whose message is one line; returns the error.
 */
export async function expectCode(p: Promise<unknown>, code: string, reason?: string, re?: RegExp) {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: string; data?: Record<string, unknown>; message: string };
    assert.is(err.code, code, `code of: ${err.message}`);
    if (reason !== undefined) assert.is(err.data?.reason, reason, `reason of: ${err.message}`);
    if (re) assert.match(err.message, re);
    assert.not.match(err.message, /\n/);
    return err;
  }
  assert.unreachable(`expected ${code}`);
}
