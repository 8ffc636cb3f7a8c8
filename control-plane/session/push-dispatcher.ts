/**
 * Pushes datums to subscribed agent connections.
 *
 * Change notifications are gathered for `coalesceMs`, then each changed key is fetched once, encoded
 * once, and the same frame is written to every subscriber that is behind. So the work per change is
 * proportional to that key's subscribers, not to the registry. A subscriber never gets a version at
 * or below one it was already sent. A protocol-2 subscriber that holds a recent version gets a
 * `delta` from it, encoded once per (key, base → version) and shared like the whole frame (see
 * `push-history.ts`); an unknown or too old base, or a delta no smaller than the datum, gets the whole
 * datum. An incomplete datum (the data layer rebuilding) is not sent to a subscriber that holds a
 * copy (a cached one, or a complete push): it would not shrink the copy and costs the whole datum;
 * the complete one follows. A subscriber that holds nothing gets each incomplete one, as before.
 *
 * Each push must be acknowledged by version within `ackTimeoutMs`; otherwise the subscriber is taken
 * back to what it acknowledged and pushed again from there (a lost delta is repaired by the next
 * delta from the acknowledged base, or the whole datum), up to `maxRetries` times, then the
 * connection is closed so the agent reconnects and resynchronises. A periodic reconciliation asks the
 * data servers for versions and repairs any notification that was lost.
 *
 * While pushes are stopped (an operator switch), only targets the gate allows are written to; the
 * others keep the version they were last sent, so resuming pushes them the current state. Each
 * change-driven push records one latency sample (change seen → last frame written) and, when the
 * change was traced, one span: never one per subscriber, the hot path stays a loop of writes.
 *
 * The service catalog is a subscription of its own: its own subscriber set, pending flag, cached
 * frame and push path (see {@link PushDispatcher.subscribeCatalog}). It is not acknowledged: it is a
 * convenience view (Consul's `/v1/catalog/services`), and the next change, resubscribe or
 * reconciliation pass sends its current version anyway.
 */
import { SpanKind, type Histogram } from '@opentelemetry/api';
import type { Catalog } from '../../proto/agent-link.js';
import { isRemoteKey } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';
import { valueOrThrow } from '../../proto/result.js';
import type { Logger } from '../../proto/runtime/log.js';
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';
import { contextFrom, meter, tracer } from '../../proto/runtime/telemetry.js';
import type { ChangeListener, DataWatch, DatumChange } from '../link/data-api.js';
import type { DataRouter } from './data-router.js';
import { PushHistory } from './push-history.js';
import { PushSchedule, type SeenChange } from './push-schedule.js';
import {
  CatalogSubscribers,
  SubscriptionTable,
  type PushFrame as Frame,
  type PushStats,
  type PushTarget,
  type ServiceSub,
} from './push-subscriptions.js';

export type { PushStats, PushTarget } from './push-subscriptions.js';

export interface PushOptions {
  readonly coalesceMs: number;
  readonly ackTimeoutMs: number;
  /** Clock of ack deadlines: live time by default, so a stall of the session never fails a push. */
  readonly ackClock?: () => number;
  readonly maxRetries: number;
  readonly reconcileIntervalMs: number;
  readonly logger: Logger;
}

/** Says whether a target may be pushed to now (false while pushes are stopped for it). */
export type PushGate = (target: PushTarget) => boolean;

/** Fans changed datums (and the catalog) out to subscribed connections; see the file comment. */
export class PushDispatcher implements ChangeListener {
  readonly #router: DataRouter;
  readonly #opts: PushOptions;
  readonly #table: SubscriptionTable;
  /** Per subscribed key: the latest datum and its recent past (frames and deltas). */
  readonly #history = new Map<string, PushHistory>();
  readonly #schedule: PushSchedule;
  readonly #catalog: CatalogSubscribers;
  readonly #latency: Histogram;
  #gate: PushGate | undefined;
  readonly #watches = new Map<string, DataWatch>();
  readonly #sweepTimer: NodeJS.Timeout;
  readonly #ackNow: () => number;
  readonly #reconcileTimer: NodeJS.Timeout;
  readonly #sessionId: string;
  readonly stats: PushStats = { pushes: 0, deltas: 0, retries: 0, failures: 0, subscriptions: 0 };

  constructor(sessionId: string, router: DataRouter, opts: PushOptions) {
    this.#sessionId = sessionId;
    this.#router = router;
    this.#opts = opts;
    this.#ackNow = opts.ackClock ?? (() => loopMonitor.liveNow());
    this.#table = new SubscriptionTable(this.stats);
    this.#catalog = new CatalogSubscribers();
    this.#schedule = new PushSchedule({
      coalesceMs: opts.coalesceMs,
      pushKey: (key, change) => {
        this.#pushKey(key, change).catch((err: unknown) => {
          this.#fetchFailed(key, err);
        });
      },
      pushCatalog: () => {
        this.#pushCatalog().catch((err: unknown) => {
          this.#fetchFailed('catalog', err);
        });
      },
    });
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
    return this.#table.unacknowledged;
  }

  /** Estimated bytes of the kept datums, their recent past and encoded frames. */
  get historyBytes(): number {
    let n = 0;
    for (const h of this.#history.values()) n += h.bytes;
    return n;
  }

  /**
   * Stops pushing to every target `gate` refuses (undefined: push to all again). On resume every
   * subscribed key is pushed to whoever is behind, so held subscribers get the current state.
   */
  setGate(gate: PushGate | undefined): void {
    this.#gate = gate;
    this.resyncAll();
  }

  /** Starts receiving change notifications from a data server (and re-declares current interest). */
  attachServer(id: string): void {
    const server = this.#router.byId(id);
    if (server === undefined || this.#watches.has(id)) return;
    const watch = server.watch(this.#sessionId, this);
    this.#watches.set(id, watch);
    for (const key of this.#table.keys()) if (this.#serves(id, key)) watch.interest(key, true);
    if (this.#catalog.size > 0) watch.catalogInterest(true);
  }

  /**
   * Whether the watch of `id` is told about `key`: a qualified key (`web@dc2`) only the import store,
   * a local one only the data servers (their link refuses a qualified key).
   */
  #serves(id: string, key: string): boolean {
    return (id === this.#router.imports?.id) === isRemoteKey(key);
  }

  #interest(key: string, on: boolean): void {
    for (const [id, w] of this.#watches) if (this.#serves(id, key)) w.interest(key, on);
  }

  /**
   * Checks every subscribed key against the data servers soon (after a data server connected or the
   * slot table changed): whatever could not be fetched before is pushed now, not at the next
   * reconciliation. Subscribers already up to date are not sent anything.
   */
  resyncAll(): void {
    for (const key of this.#table.keys()) this.#schedule.key(key, true);
    if (this.#catalog.size > 0) this.#schedule.catalog(true);
  }

  /** Stops receiving notifications from a data server that left. */
  detachServer(id: string): void {
    this.#watches.get(id)?.close();
    this.#watches.delete(id);
  }

  subscribe(target: PushTarget, key: string, knownVersion: number | undefined): void {
    if (this.#table.add(target, key, knownVersion)) this.#interest(key, true);
    this.#schedule.key(key, true);
  }

  unsubscribe(target: PushTarget, key: string): void {
    if (!this.#table.remove(target, key)) return;
    this.#history.delete(key);
    this.#interest(key, false);
  }

  /** Subscribes `target` to the service catalog (again: it is sent the current one if newer). */
  subscribeCatalog(target: PushTarget, knownVersion: number | undefined): void {
    if (this.#catalog.size === 0) {
      for (const w of this.#watches.values()) w.catalogInterest(true);
    }
    if (this.#catalog.add(target, knownVersion)) this.stats.subscriptions++;
    this.#schedule.catalog(true);
  }

  unsubscribeCatalog(target: PushTarget): void {
    if (!this.#catalog.remove(target)) return;
    this.stats.subscriptions--;
    if (this.#catalog.size > 0) return;
    for (const w of this.#watches.values()) w.catalogInterest(false);
  }

  /** Removes every subscription of a closed connection: its services in `keys`, and the catalog. */
  removeTarget(target: PushTarget, keys: Iterable<string>): void {
    for (const key of keys) this.unsubscribe(target, key);
    this.unsubscribeCatalog(target);
  }

  ack(target: PushTarget, key: string, version: number): void {
    this.#table.ack(target, key, version);
  }

  /** The subscribers of `key` by connection ID (the console reads their sent and acked versions). */
  subscribers(key: string): ReadonlyMap<string, ServiceSub> | undefined {
    return this.#table.subscribers(key);
  }

  onChange(changes: readonly DatumChange[]): void {
    const seenAt = performance.now();
    for (const c of changes) this.#schedule.key(c.key, false, { seenAt, traceparent: c.traceparent });
  }

  onCatalogChange(): void {
    this.#schedule.catalog(false);
  }

  close(): void {
    clearInterval(this.#sweepTimer);
    clearInterval(this.#reconcileTimer);
    this.#schedule.close();
    for (const w of this.#watches.values()) w.close();
    this.#watches.clear();
  }

  #fetchFailed(what: string, err: unknown): void {
    // The reconciliation pass (or the next table / data connection) retries whatever could not be
    // fetched now; no leader yet is expected while a cluster starts or fails over.
    const expected =
      err instanceof MeshregError && (err.code === 'unavailable' || err.code === 'stale_epoch');
    this.#opts.logger[expected ? 'debug' : 'warn']('push fetch failed', { service: what, err });
  }

  async #pushKey(key: string, change: SeenChange | undefined): Promise<void> {
    if (!this.#table.has(key)) return;
    const history = await this.#fetch(key);
    const subs = this.#table.subscribers(key);
    if (subs === undefined) return;
    if (change?.traceparent === undefined) {
      if (this.#fanOutKey(subs.values(), history) > 0 && change !== undefined)
        this.#latency.record(performance.now() - change.seenAt);
      return;
    }
    const attributes = { 'meshreg.service': key, 'meshreg.version': history.version };
    const span = tracer().startSpan(
      'session.push',
      { kind: SpanKind.PRODUCER, attributes },
      contextFrom(change.traceparent),
    );
    const written = this.#fanOutKey(subs.values(), history);
    span.setAttribute('meshreg.subscribers', written);
    span.end();
    if (written > 0) this.#latency.record(performance.now() - change.seenAt);
  }

  /**
   * Sends the latest version of a key to every subscriber that is behind and not held: a delta from
   * what it was sent when it speaks protocol 2 and one can be made, else the whole datum (see the
   * file comment for incomplete datums). Returns how many were written to.
   */
  #fanOutKey(subs: Iterable<ServiceSub>, history: PushHistory): number {
    const gate = this.#gate;
    const version = history.version;
    let written = 0;
    for (const sub of subs) {
      if (sub.pushed >= version) continue;
      // A copy held (cached, or complete when pushed) is not sent an incomplete datum.
      if (!history.complete && sub.pushed > 0 && !sub.partial) continue;
      if (gate !== undefined && !gate(sub.target)) continue;
      const delta = sub.target.deltas === true && sub.pushed > 0 ? history.delta(sub.pushed) : undefined;
      if (delta !== undefined) this.stats.deltas++;
      sub.partial = !history.complete;
      this.#table.sent(sub, version);
      this.#write(sub, delta ?? history.full());
      written++;
    }
    return written;
  }

  async #pushCatalog(): Promise<void> {
    if (this.#catalog.size === 0) return;
    const c = await this.#router.fetchCatalog();
    const frame = this.#catalog.frame(c.version, () => {
      const msg: Catalog = {
        type: 'catalog',
        version: c.version,
        complete: c.complete,
        services: c.services,
      };
      return JSON.stringify(msg);
    });
    const gate = this.#gate;
    for (const sub of this.#catalog.values()) {
      if (sub.pushed >= frame.version || (gate !== undefined && !gate(sub.target))) continue;
      sub.pushed = frame.version;
      this.stats.pushes++;
      sub.target.send(frame.data);
    }
  }

  /** Fetches `key` and folds it into its history (kept while the key has subscribers). */
  async #fetch(key: string): Promise<PushHistory> {
    const d = await valueOrThrow(this.#router.forKey(key)).fetch(key);
    const history = this.#history.get(key) ?? new PushHistory(key);
    history.update(d);
    if (this.#table.has(key)) this.#history.set(key, history);
    return history;
  }

  #write(sub: ServiceSub, frame: Frame): void {
    sub.sentAt = undefined;
    sub.target.send(frame.data, () => {
      if (sub.pushed === frame.version) sub.sentAt = this.#ackNow();
    });
  }

  #sweep(): void {
    // In live time: an ack left unread by our own stall is not overdue (no re-send, no 4010).
    const overdue = this.#table.sweep(this.#ackNow(), this.#opts, (key) => this.#history.has(key));
    for (const sub of overdue.failed) {
      this.#opts.logger.warn('push not acknowledged; closing the connection', {
        conn: sub.target.id,
        service: sub.key,
        version: sub.pushed,
      });
      sub.target.fail('ack_timeout', `push of ${sub.key}@${sub.pushed} not acknowledged`);
    }
    // Pushed again from what each acknowledged: a lost delta becomes a delta from an older base.
    for (const sub of overdue.resend) {
      this.#table.rewind(sub);
      this.#schedule.key(sub.key, true);
    }
  }

  async #reconcile(): Promise<void> {
    const byServer = new Map<string, string[]>();
    for (const key of this.#table.keys()) {
      const leader = this.#router.forKey(key);
      // No leader for this slot right now: the next pass tries again.
      if (!leader.ok) continue;
      const list = byServer.get(leader.value.id) ?? [];
      list.push(key);
      byServer.set(leader.value.id, list);
    }
    const imports = this.#router.imports;
    for (const server of imports === undefined
      ? this.#router.servers()
      : [...this.#router.servers(), imports]) {
      const keys = byServer.get(server.id);
      if (keys === undefined) continue;
      try {
        const versions = await server.versions(keys);
        for (const [key, version] of versions) {
          if (this.#table.behind(key, version)) this.#schedule.key(key, true);
        }
      } catch (err) {
        this.#opts.logger.warn('version reconciliation failed', { dataId: server.id, err });
      }
    }
    if (this.#catalog.size > 0) this.#schedule.catalog(false);
  }
}
