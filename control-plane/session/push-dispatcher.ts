/**
 * Pushes datums to subscribed agent connections.
 *
 * Change notifications are gathered for `coalesceMs`, then each changed key is fetched once, encoded
 * once, and the same frame is written to every subscriber that is behind. So the work per change is
 * proportional to that key's subscribers, not to the registry. A subscriber never gets a version at
 * or below one it was already sent. Each push must be acknowledged by version within `ackTimeoutMs`;
 * it is re-sent (the latest frame) up to `maxRetries` times, then the connection is closed so the
 * agent reconnects and resynchronises. A periodic reconciliation asks the data servers for versions
 * and repairs any notification that was lost.
 *
 * While pushes are stopped (an operator switch), only targets the gate allows are written to; the
 * others keep the version they were last sent, so resuming pushes them the current state. Each
 * change-driven push records one latency sample (change seen → last frame written) and, when the
 * change was traced, one span: never one per subscriber, the hot path stays a loop of writes.
 */
import { SpanKind, type Histogram } from '@opentelemetry/api';
import type { Push, Catalog } from '../../proto/agent-link.js';
import { MeshregError, type ErrorCode } from '../../proto/errors.js';
import type { Logger } from '../../proto/runtime/log.js';
import { contextFrom, meter, tracer } from '../../proto/runtime/telemetry.js';
import type { ChangeListener, DataWatch, DatumChange } from '../link/data-api.js';
import type { DataRouter } from './data-router.js';

/** The internal key of the service-name catalog; not a valid service name, so it cannot collide. */
export const CATALOG_KEY = '#catalog';

/** What the dispatcher needs of a connection. */
export interface PushTarget {
  readonly id: string;
  /** Writes a pre-encoded text frame; `written` runs once the socket has taken it. */
  send(frame: Buffer, written?: () => void): void;
  fail(code: ErrorCode, reason: string): void;
}

export interface PushOptions {
  readonly coalesceMs: number;
  readonly ackTimeoutMs: number;
  readonly maxRetries: number;
  readonly reconcileIntervalMs: number;
  readonly logger: Logger;
}

interface Sub {
  readonly target: PushTarget;
  readonly key: string;
  /** Highest version sent; -1 before the first push. */
  pushed: number;
  acked: number;
  /**
   * When the last push was written to the socket; `undefined` while it is still queued there. The
   * ack clock starts at the write, not at the queueing: a push stuck behind a large backlog to a
   * slow consumer is not late, and re-sending it would only grow the backlog.
   */
  sentAt: number | undefined;
  retries: number;
}

interface Frame {
  readonly version: number;
  /** Encoded once, written as is to every subscriber. */
  readonly data: Buffer;
}

export interface PushStats {
  pushes: number;
  retries: number;
  failures: number;
  subscriptions: number;
}

/** When the first change of a pending key was seen, and the trace it belongs to. */
interface SeenChange {
  readonly seenAt: number;
  readonly traceparent: string | undefined;
}

/** Says whether a target may be pushed to now (false while pushes are stopped for it). */
export type PushGate = (target: PushTarget) => boolean;

export class PushDispatcher implements ChangeListener {
  readonly #router: DataRouter;
  readonly #opts: PushOptions;
  readonly #subs = new Map<string, Map<string, Sub>>();
  readonly #frames = new Map<string, Frame>();
  readonly #inflight = new Set<Sub>();
  /** Keys to push at the next flush, with the change that asked for it (undefined: a (re)subscribe). */
  readonly #pending = new Map<string, SeenChange | undefined>();
  readonly #latency: Histogram;
  #gate: PushGate | undefined;
  readonly #watches = new Map<string, DataWatch>();
  #flushTimer: NodeJS.Timeout | undefined;
  #flushImmediate: NodeJS.Immediate | undefined;
  readonly #sweepTimer: NodeJS.Timeout;
  readonly #reconcileTimer: NodeJS.Timeout;
  readonly #sessionId: string;
  readonly stats: PushStats = { pushes: 0, retries: 0, failures: 0, subscriptions: 0 };

  constructor(sessionId: string, router: DataRouter, opts: PushOptions) {
    this.#sessionId = sessionId;
    this.#router = router;
    this.#opts = opts;
    this.#latency = meter().createHistogram('meshreg.push.latency_ms', {
      description:
        'Time from a change notification reaching the session to its frame written to the last subscriber',
      unit: 'ms',
      advice: { explicitBucketBoundaries: [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] },
    });
    this.#sweepTimer = setInterval(
      () => {
        this.#sweep();
      },
      Math.max(10, Math.floor(opts.ackTimeoutMs / 2)),
    );
    this.#sweepTimer.unref();
    this.#reconcileTimer = setInterval(() => {
      void this.#reconcile();
    }, opts.reconcileIntervalMs);
    this.#reconcileTimer.unref();
    for (const server of router.servers()) this.attachServer(server.id);
  }

  /** Pushes sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.#inflight.size;
  }

  /**
   * Stops pushing to every target `gate` refuses (undefined: push to all again). On resume every
   * subscribed key is pushed to whoever is behind, so held subscribers get the current state.
   */
  setGate(gate: PushGate | undefined): void {
    this.#gate = gate;
    for (const key of this.#subs.keys()) this.#schedule(key, true);
  }

  /** Starts receiving change notifications from a data server (and re-declares current interest). */
  attachServer(id: string): void {
    const server = this.#router.servers().find((s) => s.id === id);
    if (server === undefined || this.#watches.has(id)) return;
    const watch = server.watch(this.#sessionId, this);
    this.#watches.set(id, watch);
    for (const key of this.#subs.keys()) {
      if (key === CATALOG_KEY) watch.catalogInterest(true);
      else watch.interest(key, true);
    }
  }

  /**
   * Checks every subscribed key against the data servers soon (after a data server connected or the
   * slot table changed): whatever could not be fetched before is pushed now, not at the next
   * reconciliation. Subscribers already up to date are not sent anything.
   */
  resyncAll(): void {
    for (const key of this.#subs.keys()) this.#schedule(key, true);
  }

  /** Stops receiving notifications from a data server that left. */
  detachServer(id: string): void {
    this.#watches.get(id)?.close();
    this.#watches.delete(id);
  }

  subscribe(target: PushTarget, key: string, knownVersion: number | undefined): void {
    let subs = this.#subs.get(key);
    if (subs === undefined) {
      subs = new Map();
      this.#subs.set(key, subs);
      for (const w of this.#watches.values()) {
        if (key === CATALOG_KEY) w.catalogInterest(true);
        else w.interest(key, true);
      }
    }
    const old = subs.get(target.id);
    if (old === undefined) this.stats.subscriptions++;
    // The new subscription replaces the old one, including its unacknowledged push: acks now reach
    // only the new one, so the old one must not be retried and fail the connection.
    else this.#inflight.delete(old);
    const known = knownVersion ?? -1;
    subs.set(target.id, { target, key, pushed: known, acked: known, sentAt: 0, retries: 0 });
    this.#schedule(key, true);
  }

  unsubscribe(target: PushTarget, key: string): void {
    const subs = this.#subs.get(key);
    const sub = subs?.get(target.id);
    if (subs === undefined || sub === undefined) return;
    subs.delete(target.id);
    this.#inflight.delete(sub);
    this.stats.subscriptions--;
    if (subs.size === 0) {
      this.#subs.delete(key);
      this.#frames.delete(key);
      for (const w of this.#watches.values()) {
        if (key === CATALOG_KEY) w.catalogInterest(false);
        else w.interest(key, false);
      }
    }
  }

  /** Removes every subscription of a closed connection. */
  removeTarget(target: PushTarget, keys: Iterable<string>): void {
    for (const key of keys) this.unsubscribe(target, key);
  }

  ack(target: PushTarget, key: string, version: number): void {
    const sub = this.#subs.get(key)?.get(target.id);
    if (sub === undefined) return;
    if (version > sub.acked) sub.acked = version;
    if (sub.acked >= sub.pushed) {
      sub.retries = 0;
      this.#inflight.delete(sub);
    }
  }

  onChange(changes: readonly DatumChange[]): void {
    const seenAt = performance.now();
    for (const c of changes) this.#schedule(c.key, false, { seenAt, traceparent: c.traceparent });
  }

  onCatalogChange(): void {
    this.#schedule(CATALOG_KEY, false);
  }

  close(): void {
    clearInterval(this.#sweepTimer);
    clearInterval(this.#reconcileTimer);
    clearTimeout(this.#flushTimer);
    if (this.#flushImmediate !== undefined) clearImmediate(this.#flushImmediate);
    for (const w of this.#watches.values()) w.close();
    this.#watches.clear();
  }

  #schedule(key: string, now: boolean, change?: SeenChange): void {
    // The earliest change waiting for a key is the one its latency is measured from.
    if (!this.#pending.has(key) || (this.#pending.get(key) === undefined && change !== undefined))
      this.#pending.set(key, change);
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
    for (const [key, change] of entries) {
      this.#pushKey(key, change).catch((err: unknown) => {
        // The reconciliation pass (or the next table / data connection) retries whatever could not be
        // fetched now; no leader yet is expected while a cluster starts or fails over.
        const expected =
          err instanceof MeshregError && (err.code === 'unavailable' || err.code === 'stale_epoch');
        this.#opts.logger[expected ? 'debug' : 'warn']('push fetch failed', { service: key, err });
      });
    }
  }

  async #pushKey(key: string, change: SeenChange | undefined): Promise<void> {
    if (!this.#subs.has(key)) return;
    const frame = await this.#frameFor(key);
    const subs = this.#subs.get(key);
    if (subs === undefined) return;
    if (change?.traceparent === undefined) {
      if (this.#fanOut(subs, frame) > 0 && change !== undefined) this.#recordLatency(key, change);
      return;
    }
    const attributes = { 'meshreg.service': key, 'meshreg.version': frame.version };
    const span = tracer().startSpan(
      'session.push',
      { kind: SpanKind.PRODUCER, attributes },
      contextFrom(change.traceparent),
    );
    const written = this.#fanOut(subs, frame);
    span.setAttribute('meshreg.subscribers', written);
    span.end();
    if (written > 0) this.#recordLatency(key, change);
  }

  /** Writes `frame` to every subscriber that is behind and not held; returns how many. */
  #fanOut(subs: ReadonlyMap<string, Sub>, frame: Frame): number {
    const gate = this.#gate;
    let written = 0;
    for (const sub of subs.values()) {
      if (sub.pushed >= frame.version) continue;
      if (gate !== undefined && !gate(sub.target)) continue;
      this.#send(sub, frame);
      written++;
    }
    return written;
  }

  #recordLatency(key: string, change: SeenChange): void {
    if (key !== CATALOG_KEY) this.#latency.record(performance.now() - change.seenAt);
  }

  async #frameFor(key: string): Promise<Frame> {
    if (key === CATALOG_KEY) {
      const c = await this.#router.fetchCatalog();
      const cached = this.#frames.get(key);
      if (cached?.version === c.version) return cached;
      const msg: Catalog = {
        type: 'catalog',
        version: c.version,
        complete: c.complete,
        services: c.services,
      };
      return this.#remember(key, { version: c.version, data: Buffer.from(JSON.stringify(msg)) });
    }
    const d = await this.#router.forKey(key).fetch(key);
    const cached = this.#frames.get(key);
    if (cached !== undefined && cached.version >= d.version) return cached;
    const msg: Push = {
      type: 'push',
      service: key,
      version: d.version,
      complete: d.complete,
      instances: d.instances,
    };
    return this.#remember(key, { version: d.version, data: Buffer.from(JSON.stringify(msg)) });
  }

  #remember(key: string, frame: Frame): Frame {
    if (this.#subs.has(key)) this.#frames.set(key, frame);
    return frame;
  }

  #send(sub: Sub, frame: Frame): void {
    sub.pushed = frame.version;
    this.stats.pushes++;
    // The catalog is a convenience view; it is not acknowledged (a later change re-sends it anyway).
    if (sub.key !== CATALOG_KEY) this.#inflight.add(sub);
    this.#write(sub, frame);
  }

  #write(sub: Sub, frame: Frame): void {
    sub.sentAt = undefined;
    sub.target.send(frame.data, () => {
      if (sub.pushed === frame.version) sub.sentAt = performance.now();
    });
  }

  #sweep(): void {
    const now = performance.now();
    for (const sub of [...this.#inflight]) {
      if (sub.sentAt === undefined || now - sub.sentAt < this.#opts.ackTimeoutMs) continue;
      const frame = this.#frames.get(sub.key);
      if (sub.retries >= this.#opts.maxRetries || frame === undefined) {
        this.#inflight.delete(sub);
        this.stats.failures++;
        this.#opts.logger.warn('push not acknowledged; closing the connection', {
          conn: sub.target.id,
          service: sub.key,
          version: sub.pushed,
        });
        sub.target.fail('ack_timeout', `push of ${sub.key}@${sub.pushed} not acknowledged`);
        continue;
      }
      sub.retries++;
      this.stats.retries++;
      this.#write(sub, frame);
    }
  }

  async #reconcile(): Promise<void> {
    const byServer = new Map<string, string[]>();
    for (const key of this.#subs.keys()) {
      if (key === CATALOG_KEY) continue;
      try {
        const id = this.#router.forKey(key).id;
        const list = byServer.get(id) ?? [];
        list.push(key);
        byServer.set(id, list);
      } catch {
        // No leader for this slot right now; the next pass tries again.
      }
    }
    for (const server of this.#router.servers()) {
      const keys = byServer.get(server.id);
      if (keys === undefined) continue;
      try {
        const versions = await server.versions(keys);
        for (const [key, version] of versions) {
          const subs = this.#subs.get(key);
          if (subs === undefined) continue;
          for (const sub of subs.values()) {
            if (sub.pushed < version) {
              this.#schedule(key, true);
              break;
            }
          }
        }
      } catch (err) {
        this.#opts.logger.warn('version reconciliation failed', { dataId: server.id, err });
      }
    }
    this.#schedule(CATALOG_KEY, false);
  }
}
