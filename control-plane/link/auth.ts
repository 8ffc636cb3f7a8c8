import { createHash, timingSafeEqual } from 'node:crypto';

/** Compares a shared secret in constant time (hashing first makes the lengths equal); empty never matches. */
export function tokensEqual(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b) && expected.length > 0;
}

/** The SHA-256 of a secret: what a token table keeps to compare presented secrets against. */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Compares two {@link secretDigest}s in constant time (they always have the same length). */
export function digestsEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
