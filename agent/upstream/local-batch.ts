/**
 * The agent's local changes on their way to the session: the changes of one event-loop turn go out
 * together (a definition folder or a burst of registrations costs a few frames, not one per
 * instance), and the trace of the first change (an HTTP register's span) travels with the batch.
 *
 * Backpressure: while the session has asked to slow down ({@link LocalBatch.deferUntil}), the batch
 * is held until then instead of going out next turn. Nothing is lost by waiting: a later change of
 * the same registration replaces the earlier one in the batch.
 */
import type { Tombstone, LocalChange, LocalRecord } from '../local/local-services.js';
import { traceparentOf } from '../../proto/runtime/telemetry.js';

/** What a batch hands over when it is due. */
export interface LocalBatchFlush {
  readonly upserts: readonly LocalRecord[];
  readonly removals: readonly Tombstone[];
  readonly traceparent: string | undefined;
}

export class LocalBatch {
  readonly #upserts = new Map<string, LocalRecord>();
  readonly #removals = new Map<string, Tombstone>();
  #trace: string | undefined;
  /** Cancels the scheduled flush; undefined when none is scheduled. */
  #cancel: (() => void) | undefined;
  #deferUntilMs = 0;
  readonly #flush: (batch: LocalBatchFlush) => void;
  readonly #now: () => number;

  constructor(flush: (batch: LocalBatchFlush) => void, now: () => number = Date.now) {
    this.#flush = flush;
    this.#now = now;
  }

  /** Whether sends are being held back after a slow-down. */
  get deferring(): boolean {
    return this.#now() < this.#deferUntilMs;
  }

  /** The wall time sends are held until (0, or a past time, when they are not held). */
  get deferredUntilMs(): number {
    return this.#deferUntilMs;
  }

  /** Adds a change; a newer change of the same registration replaces the older. */
  add(change: LocalChange): void {
    if (change.kind === 'upsert') {
      const r = change.record;
      this.#removals.delete(`${r.def.id}\n${r.def.name}`);
      this.#upserts.set(r.def.id, r);
    } else {
      const t = change.tombstone;
      if (this.#upserts.get(t.id)?.def.name === t.service) this.#upserts.delete(t.id);
      this.#removals.set(`${t.id}\n${t.service}`, t);
    }
    this.#trace ??= traceparentOf();
    if (this.#cancel === undefined) this.#schedule();
  }

  /** Holds the batch until `untilMs` (wall time); an earlier time than one already set is ignored. */
  deferUntil(untilMs: number): boolean {
    if (untilMs <= this.#deferUntilMs) return false;
    this.#deferUntilMs = untilMs;
    if (this.#cancel !== undefined) {
      this.#cancel();
      this.#schedule();
    }
    return true;
  }

  /** Drops what is pending and any deferral (a full sync carries the whole state). */
  clear(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#upserts.clear();
    this.#removals.clear();
    this.#trace = undefined;
    this.#deferUntilMs = 0;
  }

  #schedule(): void {
    const waitMs = this.#deferUntilMs - this.#now();
    const run = (): void => {
      this.#cancel = undefined;
      const batch = {
        upserts: [...this.#upserts.values()],
        removals: [...this.#removals.values()],
        traceparent: this.#trace,
      };
      this.#upserts.clear();
      this.#removals.clear();
      this.#trace = undefined;
      this.#flush(batch);
    };
    if (waitMs > 0) {
      const t = setTimeout(run, waitMs);
      this.#cancel = () => {
        clearTimeout(t);
      };
    } else {
      const i = setImmediate(run);
      this.#cancel = () => {
        clearImmediate(i);
      };
    }
  }
}
