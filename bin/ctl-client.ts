/**
 * How `meshreg ctl` talks to the admin API: the command's context, the https client under
 * MESHREG_TLS_*, and one request decoded into a value or a failure line (with the server's status
 * and error code when it explained itself).
 */
import { Agent as HttpsAgent, request, type Dispatcher } from 'undici';
import { decodeAdminError } from '../proto/admin-api.js';
import type { ErrorCode } from '../proto/errors.js';
import { describe, type Decoded } from '../proto/validate.js';
import { plaintextRefusal, readTlsConfig } from '../proto/runtime/tls-config.js';
import { TlsSource } from '../proto/runtime/tls.js';

/** What every command is given: where meta is, the token, the output and how to reach https. */
export interface Ctx {
  readonly meta: string;
  readonly token: string;
  readonly json: boolean;
  /** `--reason`: sent with every write, for the audit log. */
  readonly reason: string | undefined;
  readonly out: (s: string) => void;
  /** https with the process's CA and certificate (MESHREG_TLS_*); none: the default client. */
  readonly dispatcher?: Dispatcher | undefined;
}

/** A command that failed: the line for stderr and the exit code (1 failed, 2 usage). */
export class CtlError extends Error {
  readonly exitCode: 1 | 2;

  constructor(message: string, exitCode: 1 | 2 = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The https client and default meta address under MESHREG_TLS_*, or why the files cannot be used. */
export function ctlTls(env: NodeJS.ProcessEnv): { dispatcher?: Dispatcher; defaultMeta: string } | string {
  try {
    const config = readTlsConfig(env, { server: false });
    const tls = TlsSource.load(config);
    if (!tls.ok) return tls.error.message;
    if (tls.value === undefined) return { defaultMeta: 'http://127.0.0.1:9610' };
    const meta = env['MESHREG_CTL_META'] ?? '';
    const refused = plaintextRefusal(config, meta, 'MESHREG_CTL_META');
    if (refused !== undefined) return refused;
    return {
      dispatcher: new HttpsAgent({ connect: tls.value.clientOptions() }),
      defaultMeta: 'https://127.0.0.1:9610',
    };
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * What an admin request came to: the decoded answer, or a failure to print. A failure the server
 * explained carries its HTTP status and error `code`, the only things a caller may branch on.
 */
export type Answer<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly message: string; readonly status?: number; readonly code?: ErrorCode };

/** How much of an answer that could not be decoded goes into an error line. */
const EXCERPT_CHARS = 300;
const MAX_ERRORS_SHOWN = 5;

/** Sends one admin request and decodes its answer with `decode`; never throws. */
export async function ask<T>(
  ctx: Ctx,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  decode: (raw: unknown) => Decoded<T>,
  body?: unknown,
): Promise<Answer<T>> {
  const where = `${method} ${url}`;
  let status: number;
  let text: string;
  try {
    const res = await request(url, {
      method,
      headers: { authorization: `Bearer ${ctx.token}`, 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
      ...(ctx.dispatcher === undefined ? {} : { dispatcher: ctx.dispatcher }),
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    return { ok: false, message: `${where}: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (status >= 400) return refused(where, status, text);
  const parsed = parseJson(text);
  if (!parsed.ok) return { ok: false, status, message: `${where}: ${status}: not JSON: ${excerpt(text)}` };
  const d = decode(parsed.value);
  if (d.ok) return d;
  const shown = describe(d.errors.slice(0, MAX_ERRORS_SHOWN));
  const more = d.errors.length > MAX_ERRORS_SHOWN ? ` (and ${d.errors.length - MAX_ERRORS_SHOWN} more)` : '';
  return { ok: false, status, message: `${where}: unexpected answer: ${shown}${more}` };
}

/** An error answer: its code and message when it is one of ours, else its status and text. */
function refused(where: string, status: number, text: string): Answer<never> {
  const parsed = parseJson(text);
  const e = parsed.ok ? decodeAdminError(parsed.value) : undefined;
  if (e?.ok !== true) return { ok: false, status, message: `${where}: ${status}: ${excerpt(text)}` };
  const { code, message } = e.value.error;
  return { ok: false, status, code, message: `${where}: ${status} ${code}: ${message}` };
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  if (text === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

function excerpt(text: string): string {
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}...` : text;
}

/** {@link ask}, for commands that stop at the first failure. */
export async function call<T>(
  ctx: Ctx,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  decode: (raw: unknown) => Decoded<T>,
  body?: unknown,
): Promise<T> {
  const a = await ask(ctx, method, url, decode, body);
  if (!a.ok) throw new CtlError(a.message);
  return a.value;
}
