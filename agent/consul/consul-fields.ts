/**
 * Consul accepts its JSON keys in PascalCase, camelCase or snake_case. We match keys ignoring case
 * and underscores, one object level at a time, so user data such as `Meta` keeps its own keys.
 */
import { isRecord } from '../../proto/validate.js';

/** An object's keys folded for lookup: `DeregisterCriticalServiceAfter` = `deregister_critical_service_after`. */
export function foldKeys(o: Record<string, unknown>): ReadonlyMap<string, unknown> {
  const m = new Map<string, unknown>();
  for (const [k, v] of Object.entries(o)) m.set(fold(k), v);
  return m;
}

export function fold(key: string): string {
  return key.replace(/_/g, '').toLowerCase();
}

/** `foldKeys` for an unknown value; `undefined` when it is not an object. */
export function foldIfRecord(raw: unknown): ReadonlyMap<string, unknown> | undefined {
  return isRecord(raw) ? foldKeys(raw) : undefined;
}

/**
 * IDs that a later request can name in a URL path: no `/`, and not `.` or `..`, which clients and
 * proxies resolve away as dot-segments (RFC 3986 §5.2.4) before the request arrives.
 */
export const ADDRESSABLE_ID = /^(?!\.\.?$)[^/]+$/;
export const ADDRESSABLE_ID_HINT = 'must not contain "/" and must not be "." or ".."';
