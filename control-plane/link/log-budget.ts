/**
 * A per-connection budget of log lines, so that one peer repeating itself (a flood of bad frames, a
 * socket that keeps erroring) cannot flood the log: the first `burst` lines of a window are written,
 * the rest are counted, and the next line after the window says how many were suppressed.
 */
import type { LogFields, Logger } from '../../proto/runtime/log.js';

export interface LogBudgetOptions {
  /** Lines written per window before suppression starts. */
  readonly burst: number;
  /** Length of a window. */
  readonly windowMs: number;
  /** Injected clock (ms); `performance.now` by default. */
  readonly now?: () => number;
}

/** The defaults for one connection: 5 lines, then at most one summary line per 10 s. */
export const CONNECTION_LOG_BUDGET: LogBudgetOptions = Object.freeze({ burst: 5, windowMs: 10_000 });

type Level = 'debug' | 'info' | 'warn' | 'error';

export class LogBudget {
  readonly #log: Logger;
  readonly #burst: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart: number;
  #written = 0;
  #suppressed = 0;

  constructor(log: Logger, opts: LogBudgetOptions = CONNECTION_LOG_BUDGET) {
    this.#log = log;
    this.#burst = opts.burst;
    this.#windowMs = opts.windowMs;
    this.#now = opts.now ?? (() => performance.now());
    this.#windowStart = this.#now();
  }

  /** Lines not written so far in this window. */
  get suppressed(): number {
    return this.#suppressed;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#write('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.#write('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.#write('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.#write('error', msg, fields);
  }

  /** Writes the pending "suppressed K" line, if any (call when the connection ends). */
  flush(): void {
    if (this.#suppressed === 0) return;
    this.#log.warn('log lines suppressed for this connection', { suppressed: this.#suppressed });
    this.#suppressed = 0;
  }

  #write(level: Level, msg: string, fields?: LogFields): void {
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.flush();
      this.#windowStart = now;
      this.#written = 0;
    }
    if (this.#written >= this.#burst) {
      this.#suppressed++;
      return;
    }
    this.#written++;
    this.#log[level](msg, fields);
  }
}
