/**
 * The result of an operation whose failure is expected (a link down, a slot with no leader yet):
 * the value, or the coded error, returned rather than thrown. Throwing stays for bugs and misuse.
 * (Decoders have their own `Decoded`, which carries every field error instead of one code.)
 */
import { MeshregError, type ErrorCode } from './errors.js';

/** A success carrying its value. */
export interface Ok<T> {
  readonly ok: true;
  readonly value: T;
}

/** An expected failure carrying its coded error. */
export interface Failure {
  readonly ok: false;
  readonly error: MeshregError;
}

export type Result<T> = Ok<T> | Failure;

/** A success. */
export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

/** An expected failure with `code`; `error` may instead be an existing MeshregError. */
export function fail(code: ErrorCode, message: string): Failure;
export function fail(error: MeshregError): Failure;
export function fail(codeOrError: ErrorCode | MeshregError, message = ''): Failure {
  const error = codeOrError instanceof MeshregError ? codeOrError : new MeshregError(codeOrError, message);
  return { ok: false, error };
}

/**
 * Runs `op` and returns its value, or the MeshregError it threw or rejected with as a failure: the
 * bridge from an API that rejects (a link call) to one that returns. Anything else is a bug and is
 * thrown on.
 */
export async function attempt<T>(op: () => Promise<T>): Promise<Result<T>> {
  try {
    return ok(await op());
  } catch (err) {
    if (err instanceof MeshregError) return fail(err);
    throw err;
  }
}

/**
 * The value, or the failure's error thrown: for a caller whose own failure path is still a
 * rejection (it catches and retries as a whole).
 */
export function valueOrThrow<T>(r: Result<T>): T {
  if (r.ok) return r.value;
  throw r.error;
}
