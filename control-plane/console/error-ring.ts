/**
 * The last error-level events of one role, for the console's overview: a logger wrapper that keeps a
 * copy of each `error` line (time, message, code) in a small ring, and passes everything on unchanged.
 */
import type { ConsoleError } from '../../proto/console.js';
import { MeshregError } from '../../proto/errors.js';
import type { LogFields, Logger } from '../../proto/runtime/log.js';

/** Events kept per role. */
export const ERROR_RING_SIZE = 50;

/** A bounded ring of a role's recent errors. */
export class ErrorRing {
  readonly #role: ConsoleError['role'];
  readonly #member: () => string;
  readonly #items: ConsoleError[] = [];
  #next = 0;

  constructor(role: ConsoleError['role'], member: () => string) {
    this.#role = role;
    this.#member = member;
  }

  /** `log`, with every `error` line (its children's too) also recorded here. */
  wrap(log: Logger): Logger {
    return {
      debug: (m, f) => {
        log.debug(m, f);
      },
      info: (m, f) => {
        log.info(m, f);
      },
      warn: (m, f) => {
        log.warn(m, f);
      },
      error: (m, f) => {
        this.record(m, f);
        log.error(m, f);
      },
      child: (fields) => this.wrap(log.child(fields)),
    };
  }

  /** Keeps one event, dropping the oldest when full. */
  record(message: string, fields?: LogFields): void {
    const e: ConsoleError = {
      at: Date.now(),
      role: this.#role,
      member: this.#member(),
      message: message.slice(0, 512),
      code: codeOf(fields),
    };
    if (this.#items.length < ERROR_RING_SIZE) this.#items.push(e);
    else this.#items[this.#next] = e;
    this.#next = (this.#next + 1) % ERROR_RING_SIZE;
  }

  /** Newest first. */
  recent(): ConsoleError[] {
    const n = this.#items.length;
    const out: ConsoleError[] = [];
    for (let i = 1; i <= n; i++) {
      const e = this.#items[(this.#next - i + n) % n];
      if (e !== undefined) out.push(e);
    }
    return out;
  }
}

function codeOf(fields: LogFields | undefined): string {
  const err = fields?.['err'];
  if (err instanceof MeshregError) return err.code;
  const code = fields?.['code'];
  return typeof code === 'string' ? code.slice(0, 64) : '';
}
