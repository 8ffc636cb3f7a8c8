/**
 * The admin token the operator typed into the page. It lives in `sessionStorage` only (gone when the
 * tab closes), is sent as `Authorization: Bearer` and never put in a URL or written to the console log.
 */
const KEY = 'meshreg.adminToken';

/** The stored token, or '' when none (the console is then read-only). */
export function readToken(): string {
  try {
    return sessionStorage.getItem(KEY) ?? '';
  } catch {
    // Storage can be disabled by the browser's privacy settings: stay read-only.
    return '';
  }
}

/** Stores `token` for this tab; '' forgets it. */
export function storeToken(token: string): void {
  try {
    if (token === '') sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, token);
  } catch {
    // Without storage the token cannot be kept; the caller reads it back and shows read-only.
  }
}

/** The request headers that carry the token, if any. */
export function authHeaders(): Record<string, string> {
  const t = readToken();
  return t === '' ? {} : { authorization: `Bearer ${t}` };
}
