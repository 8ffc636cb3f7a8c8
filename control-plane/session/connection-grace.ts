/**
 * Closed agent connections in their grace period. A connection that closed keeps its publishers
 * for `graceMs` of live time (a stall of this session never shortens it: `liveTimeout`), then they
 * are dropped from the data servers — unless protection mode holds them because too many
 * connections went at once. A held connection whose agent comes back (a new connection of the same
 * node) ends like any replaced connection, after a grace period, without counting as a loss. A
 * switched-off client is a real deregistration: dropped at once, never held.
 */
import type { Logger } from '../../proto/runtime/log.js';
import { liveTimeout, loopMonitor } from '../../proto/runtime/loop-monitor.js';
import type { Protection } from '../link/protection.js';

export interface ConnectionGraceOptions {
  readonly graceMs: number;
  readonly logger: Logger;
  /** Holds grace drops when too many connections go at once (none: every drop goes through). */
  readonly protection?: Protection | undefined;
  /** The timer: {@link liveTimeout} by default; returns its cancel. Injectable for tests. */
  readonly graceTimer?: ((fn: () => void, ms: number) => () => void) | undefined;
  /** How many connections the session knows besides those in grace (the protection's population). */
  readonly open: () => number;
  /** Drops a connection's publishers from every data server. */
  readonly drop: (connId: string) => void;
}

/** What is kept of a closed connection: its node, and whatever the owner keeps with it. */
export interface GraceRecord {
  readonly nodeId: string;
}

export class ConnectionGrace<R extends GraceRecord> {
  readonly #opts: ConnectionGraceOptions;
  readonly #timer: (fn: () => void, ms: number) => () => void;
  readonly #grace = new Map<string, { rec: R; cancel: () => void; held?: boolean }>();
  /** Live time needs the loop monitor running (reference-counted: the session starts it too). */
  readonly #monitored: boolean;

  constructor(opts: ConnectionGraceOptions) {
    this.#opts = opts;
    this.#timer = opts.graceTimer ?? liveTimeout;
    this.#monitored = opts.graceTimer === undefined;
    if (this.#monitored) loopMonitor.start();
    opts.protection?.onRelease((ids) => {
      for (const id of ids) this.#drop(id);
    });
  }

  get size(): number {
    return this.#grace.size;
  }

  /**
   * Closed connections still in their grace period, with their records: what a slot's new leader
   * collects. Held connections are left out: their agent may have re-registered through another
   * session and deregistered since, and a stale copy handed to a leader that lost its tombstones
   * would bring the instance back (robustness seed 2018). What is held stays where it is.
   */
  *inGrace(): IterableIterator<[string, { readonly rec: R }]> {
    for (const [id, g] of this.#grace) if (g.held !== true) yield [id, g];
  }

  /** A connection closed: keep `rec` for the grace period (`dropNow`: a switched-off client). */
  closed(connId: string, rec: R, dropNow: boolean): void {
    const cancel = this.#timer(
      () => {
        if (dropNow) this.#drop(connId);
        else this.#over(connId);
      },
      dropNow ? 0 : this.#opts.graceMs,
    );
    this.#grace.set(connId, { rec, cancel });
  }

  /** A connection of `nodeId` opened: a held connection of that node is back. */
  opened(nodeId: string): void {
    const p = this.#opts.protection;
    // Only while something is held: a reconnect storm must not scan every connection in grace.
    if (p?.active !== true) return;
    for (const [id, g] of this.#grace) {
      if (g.rec.nodeId !== nodeId || !p.recovered(id)) continue;
      g.cancel = this.#timer(() => {
        this.#drop(id);
      }, this.#opts.graceMs);
    }
  }

  close(): void {
    for (const g of this.#grace.values()) g.cancel();
    this.#grace.clear();
    if (this.#monitored) loopMonitor.stop();
  }

  #over(connId: string): void {
    const p = this.#opts.protection;
    if (p === undefined || p.admit(connId, this.#opts.open() + this.#grace.size)) {
      this.#drop(connId);
      return;
    }
    const g = this.#grace.get(connId);
    if (g !== undefined) {
      g.cancel = () => undefined;
      g.held = true;
    }
    this.#opts.logger.warn('connection did not come back; publishers held (protection mode)', {
      conn: connId,
      nodeId: g?.rec.nodeId,
    });
  }

  #drop(connId: string): void {
    const g = this.#grace.get(connId);
    if (g === undefined) return;
    g.cancel();
    this.#grace.delete(connId);
    this.#opts.protection?.forget(connId);
    this.#opts.drop(connId);
  }
}
