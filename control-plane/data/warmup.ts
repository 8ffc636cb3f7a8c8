/**
 * A data server's warm-up after it starts: at least `warmupMs`, then on until every session meta
 * lists has reconnected and no publish arrived for `quietMs` (sessions still re-sending after a
 * restart), at most `maxMs`. What the server serves
 * meanwhile is incomplete.
 */
export interface WarmupOptions {
  readonly warmupMs: number;
  /** Undefined or 0: warm-up ends at `warmupMs`. */
  readonly warmupQuietMs?: number;
  /** Never below `warmupMs`. */
  readonly warmupMaxMs?: number;
  /** Monotonic milliseconds (`performance.now` by default). */
  readonly now?: () => number;
  /**
   * Whether everyone who must re-send has come back (every session meta lists is connected); the
   * warm-up does not end before, except at `maxMs`. Always ready when absent.
   */
  readonly warmupReady?: () => boolean;
}

export class Warmup {
  readonly #now: () => number;
  readonly #quietMs: number;
  readonly #maxMs: number;
  readonly #startedAt: number;
  readonly #ready: () => boolean;
  #lastWriteAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #on: boolean;

  /** Starts warming (unless `warmupMs` is 0); `onEnd` runs once when it is over. */
  constructor(
    opts: WarmupOptions,
    private readonly onEnd: () => void,
  ) {
    this.#now = opts.now ?? ((): number => performance.now());
    this.#quietMs = opts.warmupQuietMs ?? 0;
    this.#maxMs = Math.max(opts.warmupMs, opts.warmupMaxMs ?? 0);
    this.#startedAt = this.#now();
    this.#ready = opts.warmupReady ?? ((): boolean => true);
    this.#on = opts.warmupMs > 0;
    if (this.#on) this.#checkIn(opts.warmupMs);
  }

  get on(): boolean {
    return this.#on;
  }

  /** A publish arrived: the quiet period starts again. */
  noteWrite(): void {
    if (this.#on) this.#lastWriteAt = this.#now();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  #checkIn(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#check();
    }, ms);
    this.#timer.unref();
  }

  #check(): void {
    const now = this.#now();
    const quietFor = now - this.#lastWriteAt;
    const left = this.#startedAt + this.#maxMs - now;
    // A data server that restarted empty must not call itself complete before the sessions that
    // hold the publishers have reconnected and re-sent them: what it served would shrink lists.
    const ready = this.#ready();
    if ((quietFor < this.#quietMs || !ready) && left > 0) {
      const wait = ready ? this.#quietMs - quietFor : Math.max(this.#quietMs, 50);
      this.#checkIn(Math.max(1, Math.min(wait, left)));
      return;
    }
    this.#on = false;
    this.onEnd();
  }
}
