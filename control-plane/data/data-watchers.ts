/**
 * The sessions watching a data server and the change notifications they are sent: changed keys are
 * gathered and go out together once per event-loop turn (during warm-up, once per notify interval),
 * each session getting only the keys it is interested in.
 */
import type { ChangeListener, DataWatch, DatumChange, SessionWatcher } from '../link/data-api.js';

export interface DataWatchersOptions {
  /** During warm-up, changes are notified at most this often (0: each turn). */
  readonly warmupNotifyMs: number;
  /** Whether the server is still warming up. */
  readonly warming: () => boolean;
}

export class DataWatchers {
  readonly #watchers = new Map<string, SessionWatcher>();
  /** Changed keys waiting for the next notification: version and the trace of the write, if any. */
  readonly #pending = new Map<string, { version: number; traceparent: string | undefined }>();
  #flushScheduled = false;
  readonly #warmupNotifyMs: number;
  readonly #warming: () => boolean;

  constructor(opts: DataWatchersOptions) {
    this.#warmupNotifyMs = opts.warmupNotifyMs;
    this.#warming = opts.warming;
  }

  /** How many sessions watch. */
  get size(): number {
    return this.#watchers.size;
  }

  /** Registers `sessionId`'s listener (replacing an earlier one); it starts interested in nothing. */
  watch(sessionId: string, listener: ChangeListener): DataWatch {
    const w: SessionWatcher = { listener, keys: new Set(), catalog: false };
    this.#watchers.set(sessionId, w);
    return {
      interest: (key, on) => {
        if (on) w.keys.add(key);
        else w.keys.delete(key);
      },
      catalogInterest: (on) => {
        w.catalog = on;
      },
      close: () => {
        if (this.#watchers.get(sessionId) === w) this.#watchers.delete(sessionId);
      },
    };
  }

  /** Tells every session interested in the catalog that it is now at `version`. */
  announceCatalog(version: number): void {
    for (const w of this.#watchers.values()) if (w.catalog) w.listener.onCatalogChange(version);
  }

  /** Every key some session is interested in (each once). */
  watchedKeys(): Set<string> {
    const keys = new Set<string>();
    for (const w of this.#watchers.values()) for (const k of w.keys) keys.add(k);
    return keys;
  }

  /** Notes that `key` is now at `version`; the notification goes out with the next flush. */
  changed(key: string, version: number, traceparent?: string): void {
    // Several writes in one turn: the notification carries the trace of the first traced one.
    this.#pending.set(key, { version, traceparent: traceparent ?? this.#pending.get(key)?.traceparent });
    // Notifications of one event-loop turn go out together; during warm-up, of a notify interval.
    if (!this.#flushScheduled) this.#scheduleFlush();
  }

  /** Sends the pending changes now, each session the keys it is interested in. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.size === 0) return;
    const changes: DatumChange[] = [...this.#pending].map(([key, p]) =>
      p.traceparent === undefined
        ? { key, version: p.version }
        : { key, version: p.version, traceparent: p.traceparent },
    );
    this.#pending.clear();
    for (const w of this.#watchers.values()) {
      const mine = changes.filter((c) => w.keys.has(c.key));
      if (mine.length > 0) w.listener.onChange(mine);
    }
  }

  /** Forgets every session. */
  clear(): void {
    this.#watchers.clear();
  }

  #scheduleFlush(): void {
    this.#flushScheduled = true;
    const flush = (): void => {
      this.flush();
    };
    if (this.#warming() && this.#warmupNotifyMs > 0) setTimeout(flush, this.#warmupNotifyMs).unref();
    else setImmediate(flush);
  }
}
