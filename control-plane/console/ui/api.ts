/**
 * Calls of the aggregated admin API (`/admin/console/*` and the operator routes) from the page. Every
 * call answers a value: the decoded JSON body, or the failure (HTTP status and the error's code), so
 * pages show an error where the data would be instead of throwing.
 */
import { authHeaders } from './token.js';

/** A failed call: the HTTP status (0 when the network failed) and the admin API's error code. */
export interface ApiFailure {
  readonly ok: false;
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** The answer of a call. */
export type ApiResult<T> = { readonly ok: true; readonly value: T } | ApiFailure;

/** Bound on every call, so a hung member shows as an error instead of a spinner forever. */
const CALL_TIMEOUT_MS = 10_000;

function failure(status: number, body: unknown, fallback: string): ApiFailure {
  const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const err =
    typeof b['error'] === 'object' && b['error'] !== null ? (b['error'] as Record<string, unknown>) : b;
  const code = typeof err['code'] === 'string' ? err['code'] : `http_${status}`;
  const message = typeof err['message'] === 'string' ? err['message'] : fallback;
  return { ok: false, status, code, message };
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      cache: 'no-store',
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    return failure(0, undefined, err instanceof Error ? err.message : 'network error');
  }
  let parsed: unknown;
  try {
    parsed = await res.json();
  } catch {
    parsed = undefined;
  }
  if (!res.ok) return failure(res.status, parsed, res.statusText);
  return { ok: true, value: parsed as T };
}

/** `GET path` (a console read). */
export const get = <T>(path: string): Promise<ApiResult<T>> => call<T>('GET', path);

/** `POST path` with a JSON body (an operation). */
export const post = <T>(path: string, body: unknown): Promise<ApiResult<T>> => call<T>('POST', path, body);

/** `path` with the query parameters that are not empty. */
export function withQuery(
  path: string,
  params: Readonly<Record<string, string | number | undefined>>,
): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}
