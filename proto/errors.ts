/**
 * Error codes shared by every process, and the one table that maps them to HTTP statuses and
 * WebSocket close codes. Code never branches on an error's message, only on its `code`.
 */
import type { FieldError } from './validate.js';

/** Every failure a caller can see, as a stable string. The README lists them. */
export type ErrorCode =
  | 'invalid_argument'
  | 'invalid_frame'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_protocol'
  | 'rate_limited'
  | 'handshake_timeout'
  | 'replaced'
  | 'ack_timeout'
  | 'liveness_timeout'
  | 'unavailable'
  | 'stale_epoch'
  | 'shutting_down'
  | 'internal'
  | 'request_timeout'
  | 'headers_too_large'
  | 'limit_exceeded'
  | 'slow_consumer'
  | 'wrong_datacenter';

interface CodeMapping {
  readonly http: number;
  /** WebSocket close code (RFC 6455 §7.4; 4000–4999 are ours). */
  readonly ws: number;
}

/** The single mapping from codes to transport statuses. */
export const ERROR_TABLE: Readonly<Record<ErrorCode, CodeMapping>> = Object.freeze({
  invalid_argument: { http: 400, ws: 4000 },
  invalid_frame: { http: 400, ws: 4000 },
  unauthorized: { http: 401, ws: 4001 },
  forbidden: { http: 403, ws: 4003 },
  not_found: { http: 404, ws: 4000 },
  method_not_allowed: { http: 405, ws: 4000 },
  payload_too_large: { http: 413, ws: 1009 },
  unsupported_protocol: { http: 400, ws: 4002 },
  rate_limited: { http: 429, ws: 4004 },
  handshake_timeout: { http: 408, ws: 4008 },
  replaced: { http: 409, ws: 4009 },
  ack_timeout: { http: 504, ws: 4010 },
  liveness_timeout: { http: 504, ws: 4011 },
  stale_epoch: { http: 409, ws: 4012 },
  unavailable: { http: 503, ws: 1013 },
  shutting_down: { http: 503, ws: 1001 },
  internal: { http: 500, ws: 1011 },
  // HTTP-only: never a WebSocket close reason.
  request_timeout: { http: 408, ws: 4000 },
  headers_too_large: { http: 431, ws: 4000 },
  limit_exceeded: { http: 429, ws: 4013 },
  // An agent that stopped reading: its queued bytes passed the session's bound.
  slow_consumer: { http: 503, ws: 4014 },
  // An agent (or peer) of another data center than the server's (`MESHREG_DATACENTER`).
  wrong_datacenter: { http: 409, ws: 4015 },
});

/** WebSocket close codes after which reconnecting at once would only fail again. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([4001, 4002, 4003, 4015]);

/** The base of every error meshreg raises or returns. */
export class MeshregError extends Error {
  override readonly name = 'MeshregError';
  readonly code: ErrorCode;
  readonly fields: readonly FieldError[];

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; fields?: readonly FieldError[] } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.fields = options.fields ?? [];
  }

  get httpStatus(): number {
    return ERROR_TABLE[this.code].http;
  }

  get closeCode(): number {
    return ERROR_TABLE[this.code].ws;
  }

  /** The JSON body of an HTTP error answer. */
  toJSON(): { error: { code: ErrorCode; message: string; fields?: readonly FieldError[] } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.fields.length > 0 ? { fields: this.fields } : {}),
      },
    };
  }
}

/**
 * Truncates a WebSocket close reason to the 123 bytes RFC 6455 allows (§5.5: control frame
 * payloads are ≤125 bytes, two of which carry the code).
 */
export function closeReason(text: string): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= 123) return text;
  let end = 120;
  // Do not cut a multi-byte character in half: back up to a UTF-8 start byte.
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return `${buf.subarray(0, end).toString('utf8')}...`;
}
