import { createHash, timingSafeEqual } from 'node:crypto';

/** Compares a shared secret in constant time (hashing first makes the lengths equal); empty never matches. */
export function tokensEqual(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b) && expected.length > 0;
}
