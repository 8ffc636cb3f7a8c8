/**
 * Exponential backoff with full jitter, capped, reset after a good handshake. The random source is
 * injected so tests are deterministic.
 */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /** 0..1: the share of each delay that is randomised (1 = full jitter). */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({
  initialMs: 100,
  maxMs: 5000,
  multiplier: 2,
  jitter: 0.5,
});

export class Backoff {
  #attempt = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt; each call counts one attempt. */
  next(): number {
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * this.opts.multiplier ** this.#attempt);
    this.#attempt++;
    const spread = base * this.opts.jitter;
    return Math.round(base - spread + this.random() * spread);
  }

  /** The longest delay, for failures that retrying soon will not fix (a wrong token). */
  max(): number {
    return this.opts.maxMs;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
