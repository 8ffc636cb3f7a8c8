/**
 * Consul blocking-query parameters: `?index=N&wait=D`. A blocking read returns as soon as the index
 * passes N, or after the wait (default 5 min, at most 10 min) plus up to wait/16 of random jitter,
 * which spreads the herd of clients that all started together.
 */
import { MeshregError } from '../../proto/errors.js';
import { parseDurationMs } from '../consul/duration.js';

export { parseDurationMs };

export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 10 * 60_000;

export interface BlockingParams {
  /** The index the client already has; `undefined` or 0 for a plain read. */
  readonly index: number | undefined;
  /** How long to hold the request, jitter included. */
  readonly waitMs: number;
}

export function parseBlocking(query: URLSearchParams, random: () => number = Math.random): BlockingParams {
  const rawIndex = query.get('index');
  let index: number | undefined;
  if (rawIndex !== null && rawIndex !== '') {
    // Decimal digits only, as Consul parses it: `Number()` would also take `0x10`, `+5` or ` 5`.
    index = /^\d{1,16}$/.test(rawIndex) ? Number(rawIndex) : Number.NaN;
    if (!Number.isSafeInteger(index) || index < 0) {
      throw new MeshregError('invalid_argument', 'Invalid index', {
        fields: [{ path: 'index', message: 'must be a non-negative integer' }],
      });
    }
  }
  const rawWait = query.get('wait');
  let waitMs = DEFAULT_WAIT_MS;
  if (rawWait !== null && rawWait !== '') {
    const parsed = parseDurationMs(rawWait);
    if (parsed === undefined) {
      throw new MeshregError('invalid_argument', 'Invalid wait time', {
        fields: [{ path: 'wait', message: 'must be a duration like 10s or 5m' }],
      });
    }
    waitMs = Math.min(parsed, MAX_WAIT_MS);
  }
  return { index, waitMs: waitMs + random() * (waitMs / 16) };
}

/** Consul's boolean query flags: present with no value means true (`?passing`). */
export function parseFlag(query: URLSearchParams, name: string): boolean {
  const v = query.get(name);
  if (v === null) return false;
  if (v === '') return true;
  const t = v.toLowerCase();
  if (['1', 't', 'true'].includes(t)) return true;
  if (['0', 'f', 'false'].includes(t)) return false;
  throw new MeshregError('invalid_argument', `Invalid value for ?${name}`, {
    fields: [{ path: name, message: 'must be true or false' }],
  });
}
