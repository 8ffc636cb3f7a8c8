/**
 * When the push dispatcher pushes: keys (and the catalog) marked pending are pushed together at the
 * next flush, after `coalesceMs` for bursts of changes, or on the next turn for a (re)subscribe, a
 * re-send or `coalesceMs` 0. Each pending key remembers the earliest change that asked for it, so the
 * push's latency is measured from there.
 */

/** When the first change of a pending key was seen, and the trace it belongs to. */
export interface SeenChange {
  readonly seenAt: number;
  readonly traceparent: string | undefined;
}

export interface PushScheduleOptions {
  readonly coalesceMs: number;
  /** Pushes one key at a flush, with the change that asked for it (undefined: a (re)subscribe). */
  readonly pushKey: (key: string, change: SeenChange | undefined) => void;
  /** Pushes the catalog at a flush. */
  readonly pushCatalog: () => void;
}

export class PushSchedule {
  readonly #opts: PushScheduleOptions;
  /** Keys to push at the next flush, with the change that asked for it (undefined: a (re)subscribe). */
  readonly #pending = new Map<string, SeenChange | undefined>();
  /** The catalog is to be pushed at the next flush. */
  #catalogPending = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #flushImmediate: NodeJS.Immediate | undefined;

  constructor(opts: PushScheduleOptions) {
    this.#opts = opts;
  }

  /** Marks `key` pending; `now` flushes on the next turn instead of after the coalescing window. */
  key(key: string, now: boolean, change?: SeenChange): void {
    // The earliest change waiting for a key is the one its latency is measured from.
    if (!this.#pending.has(key) || (this.#pending.get(key) === undefined && change !== undefined))
      this.#pending.set(key, change);
    this.#armFlush(now);
  }

  /** Marks the catalog pending (`now` as for {@link key}). */
  catalog(now: boolean): void {
    this.#catalogPending = true;
    this.#armFlush(now);
  }

  /** Cancels the flush to come. */
  close(): void {
    clearTimeout(this.#flushTimer);
    if (this.#flushImmediate !== undefined) clearImmediate(this.#flushImmediate);
  }

  #armFlush(now: boolean): void {
    // A new subscriber should not wait out a coalescing window meant for bursts of changes.
    if (now || this.#opts.coalesceMs === 0) {
      this.#flushImmediate ??= setImmediate(() => {
        this.#flushImmediate = undefined;
        this.#flush();
      });
      return;
    }
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, this.#opts.coalesceMs);
  }

  #flush(): void {
    const entries = [...this.#pending];
    this.#pending.clear();
    for (const [key, change] of entries) this.#opts.pushKey(key, change);
    if (!this.#catalogPending) return;
    this.#catalogPending = false;
    this.#opts.pushCatalog();
  }
}
