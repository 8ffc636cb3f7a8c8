/**
 * Request bodies of meshreg's JSON HTTP APIs: read within a size limit and a time limit, then parsed.
 * A body that is too large, too slow or not JSON is an answer (413, 408, 400 naming `(body)`),
 * returned as a value; only a failing stream (the client went away) rejects.
 */
import type http from 'node:http';
import { MeshregError } from '../errors.js';

/** A body read: the parsed JSON (`undefined` when empty), or the error to answer with. */
export type BodyRead =
  { readonly ok: true; readonly body: unknown } | { readonly ok: false; readonly error: MeshregError };

/** The bounds of one body. */
export interface BodyLimits {
  readonly maxBytes: number;
  /** The whole body must arrive within this (a slow sender cannot hold a request forever). */
  readonly timeoutMs: number;
}

/** Parses a complete body of at most `maxBytes`: empty is `undefined`, anything else must be JSON. */
export function parseJsonBody(bytes: Uint8Array, maxBytes: number): BodyRead {
  if (bytes.length > maxBytes)
    return { ok: false, error: tooLarge(`body is over the limit of ${maxBytes} bytes`) };
  if (bytes.length === 0) return { ok: true, body: undefined };
  try {
    return { ok: true, body: JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown };
  } catch (err) {
    const error = new MeshregError('invalid_argument', `body is not valid JSON: ${(err as Error).message}`, {
      fields: [{ path: '(body)', message: 'must be valid JSON' }],
    });
    return { ok: false, error };
  }
}

/**
 * Reads and parses `req`'s body within `limits`. A declared length over the limit is refused before
 * anything is read; the rest of a refused body is drained, not buffered.
 */
export async function readJsonBody(req: http.IncomingMessage, limits: BodyLimits): Promise<BodyRead> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limits.maxBytes) {
    req.resume();
    return { ok: false, error: tooLarge(`body is ${declared} bytes; the limit is ${limits.maxBytes}`) };
  }
  const raw = await collect(req, limits);
  return raw instanceof MeshregError ? { ok: false, error: raw } : parseJsonBody(raw, limits.maxBytes);
}

function tooLarge(message: string): MeshregError {
  return new MeshregError('payload_too_large', message);
}

/** The body's bytes, `payload_too_large` past the limit, `request_timeout` past the time; rejects on a stream error. */
function collect(req: http.IncomingMessage, limits: BodyLimits): Promise<Buffer | MeshregError> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError);
    };
    const fail = (err: MeshregError): void => {
      done();
      req.resume();
      resolve(err);
    };
    const timer = setTimeout(() => {
      fail(new MeshregError('request_timeout', `the body was not received within ${limits.timeoutMs} ms`));
    }, limits.timeoutMs);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limits.maxBytes) fail(tooLarge(`body is over the limit of ${limits.maxBytes} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}
