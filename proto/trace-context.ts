/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/#traceparent-header) as it travels in our
 * frames: an optional `traceparent` field, validated like every other field.
 */
import { readString, type Issues } from './validate.js';

/** `version-traceid-parentid-flags`, lowercase hex; all-zero IDs are invalid (§3.2.2.3, §3.2.2.4). */
const TRACEPARENT = /^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Reads an optional `traceparent`; a malformed one is an error naming the field. */
export function readTraceparent(issues: Issues, raw: unknown, path: string): string | undefined {
  return readString(issues, raw, path, {
    minLength: 55,
    maxLength: 55,
    pattern: TRACEPARENT,
    patternHint: 'must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)',
  });
}

/** `{ traceparent }` when there is one, `{}` otherwise (for spreading into optional fields). */
export function withTraceparent(traceparent: string | undefined): { traceparent?: string } {
  return traceparent === undefined ? {} : { traceparent };
}
