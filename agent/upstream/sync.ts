/**
 * Anti-entropy between the agent and the control plane (Consul's model, over one WebSocket):
 * - on every (re)connect, a full sync: every local registration, every pending removal, and every
 *   watched service with the version the agent holds, so unchanged services are not pushed again;
 * - on every local change, a partial sync of just that change;
 * - on a jittered interval, whatever is still unconfirmed is sent again.
 * Pushes are applied to the view and acknowledged by version. In protocol 2 a `delta` is applied
 * only onto the version it was made from: any other base means a frame was lost, and the agent
 * subscribes again with the version it holds, so the session answers from there (a delta, or the
 * whole datum). The acks of one event-loop turn go out in one `acks` frame.
 *
 * Backpressure (protocol 3): after a `slow_down` the agent's own non-urgent sends (batches of local
 * changes and the periodic re-send) wait until the pause asked, stretched by a random 0–50 % so a
 * fleet of agents does not come back in one burst. Acks, pings and subscriptions are not deferred:
 * they are what lets the session drain its queues.
 */
import {
  DELTA_PROTOCOL_VERSION,
  MAX_BATCH,
  type AckItem,
  type AgentFrame,
  type Delta,
  type Datacenters,
  type Interest,
  type SessionFrame,
  type Welcome,
} from '../../proto/agent-link.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import type { Logger } from '../../proto/runtime/log.js';
import { withTraceparent } from '../../proto/trace-context.js';
import { toInstance, type LocalServices, type NodeIdentity } from '../local/local-services.js';
import type { UpstreamStatus } from '../consul/consul-api.js';
import type { ServiceView } from '../view/service-view.js';
import { LocalBatch, type LocalBatchFlush } from './local-batch.js';
import {
  UpstreamLink,
  type FatalClose,
  type LinkHandler,
  type LinkOptions,
  type LinkState,
} from './connection.js';

export interface SyncOptions {
  readonly link: Omit<LinkOptions, 'nodeId' | 'nodeName' | 'logger'>;
  readonly fullSyncIntervalMs: number;
  readonly logger: Logger;
  /** Jitter of slow-down pauses; `Math.random` by default. */
  readonly random?: () => number;
}

export class AgentSync implements LinkHandler {
  readonly #link: UpstreamLink;
  readonly #local: LocalServices;
  readonly #view: ServiceView;
  readonly #node: NodeIdentity;
  readonly #log: Logger;
  readonly #timer: NodeJS.Timeout;
  #lastHeardMs = 0;
  #offlineSinceMs = Date.now();
  #welcome: Welcome | undefined;
  readonly #stateListeners = new Set<(s: LinkState) => void>();
  readonly #datacenterListeners = new Set<(frame: Datacenters, receivedAt: number) => void>();
  /** Local changes not sent yet (held while the session asked to slow down). */
  readonly #batch: LocalBatch;
  readonly #random: () => number;
  /** Acks waiting for the end of this event-loop turn (protocol 2): service → highest version. */
  readonly #pendingAcks = new Map<string, number>();
  #flushAcks: NodeJS.Immediate | undefined;
  /** `deltasRefused`: deltas whose base was not the version held (the service was asked for again). */
  readonly counters = {
    pushesApplied: 0,
    pushesIgnored: 0,
    deltasRefused: 0,
    confirms: 0,
    refusals: 0,
    slowDowns: 0,
  };
  /** Why the control plane refused a registration (by service ID) or a subscription (by name). */
  readonly #refusedRegs = new Map<string, { code: string; message: string }>();
  readonly #refusedSubs = new Map<string, { code: string; message: string }>();

  constructor(local: LocalServices, view: ServiceView, node: NodeIdentity, opts: SyncOptions) {
    this.#local = local;
    this.#view = view;
    this.#node = node;
    this.#log = opts.logger;
    this.#link = new UpstreamLink(
      { ...opts.link, nodeId: node.nodeId, nodeName: node.node, logger: opts.logger },
      this,
    );
    this.#random = opts.random ?? Math.random;
    this.#batch = new LocalBatch((b) => {
      this.#onLocalFlush(b);
    });
    local.onChange((c) => {
      this.#batch.add(c);
    });
    const jittered = opts.fullSyncIntervalMs * (0.75 + Math.random() * 0.5);
    this.#timer = setInterval(() => {
      this.#resendUnconfirmed();
    }, jittered);
    this.#timer.unref();
  }

  get state(): LinkState {
    return this.#link.state;
  }

  /** Why the control plane refused this agent for good (e.g. 4015, another data center), if it did. */
  get fatalClose(): FatalClose | undefined {
    return this.#link.fatalClose;
  }

  start(): void {
    this.#link.start();
  }

  stop(): void {
    clearInterval(this.#timer);
    if (this.#flushAcks !== undefined) clearImmediate(this.#flushAcks);
    this.#batch.clear();
    this.#link.stop();
  }

  onStateChange(listener: (s: LinkState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Every `datacenters` frame the session sends (its peers, their link state and exports). */
  onDatacenters(listener: (frame: Datacenters, receivedAt: number) => void): () => void {
    this.#datacenterListeners.add(listener);
    return () => this.#datacenterListeners.delete(listener);
  }

  status(): UpstreamStatus {
    const connected = this.#link.state === 'open';
    const now = Date.now();
    let leader = '';
    if (connected) {
      try {
        leader = new URL(this.#link.url).host;
      } catch {
        leader = this.#link.url;
      }
    }
    return {
      connected,
      lastContactMs: connected ? 0 : this.#lastHeardMs === 0 ? 0 : now - this.#lastHeardMs,
      offlineForSec: connected ? 0 : Math.floor((now - this.#offlineSinceMs) / 1000),
      leader,
    };
  }

  /** The last refusal of a registration, by service ID. */
  registrationRefusal(id: string): { code: string; message: string } | undefined {
    return this.#refusedRegs.get(id);
  }

  /** The refusal of a subscription, by service name (cleared on the next connect). */
  subscriptionRefusal(service: string): { code: string; message: string } | undefined {
    return this.#refusedSubs.get(service);
  }

  subscribe(service: string): void {
    this.#send({ type: 'subscribe', services: [{ service }] });
  }

  /** Tells the session these services are no longer watched here, and forgets their refusals. */
  unsubscribe(services: readonly string[]): void {
    for (const s of services) this.#refusedSubs.delete(s);
    for (const batch of chunks(services)) this.#send({ type: 'unsubscribe', services: batch });
  }

  subscribeCatalog(): void {
    this.#send({ type: 'catalogSubscribe' });
  }

  // ---- LinkHandler ------------------------------------------------------------------------------

  onOpen(welcome: Welcome): void {
    // The full sync below carries every pending local change: drop the batch so nothing goes twice
    // (and a slow-down asked by the previous session does not hold for this one).
    this.#batch.clear();
    // Acks of the previous connection's pushes mean nothing to this one.
    this.#pendingAcks.clear();
    this.#welcome = welcome;
    // Switches may have changed while away: ask again.
    this.#refusedSubs.clear();
    this.#lastHeardMs = Date.now();
    const regs = this.#local.list().map((r) => ({ instance: toInstance(r, this.#node), version: r.version }));
    for (const batch of chunks(regs)) this.#send({ type: 'publish', registrations: batch });
    const gone = this.#local.tombstones();
    for (const batch of chunks(gone)) this.#send({ type: 'unpublish', registrations: batch });
    const interests: Interest[] = this.#view
      .watched()
      .map((s) => (s.received ? { service: s.service, knownVersion: s.version } : { service: s.service }));
    for (const batch of chunks(interests)) this.#send({ type: 'subscribe', services: batch });
    if (this.#view.catalogWatched) this.#send({ type: 'catalogSubscribe' });
    this.#log.info('full sync sent', {
      registrations: regs.length,
      removals: gone.length,
      subscriptions: interests.length,
    });
  }

  onFrame(frame: SessionFrame): void {
    this.#lastHeardMs = Date.now();
    switch (frame.type) {
      case 'push':
        if (this.#view.applyPush(frame)) this.counters.pushesApplied++;
        else this.counters.pushesIgnored++;
        // Acknowledge even an ignored push: the session must stop re-sending it.
        this.#ack(frame.service, frame.version);
        return;
      case 'delta':
        this.#onDelta(frame);
        return;
      case 'catalog':
        this.#view.applyCatalog(frame);
        return;
      case 'refused':
        this.#refusedSubs.set(frame.service, frame.error);
        this.#log.warn('subscription refused by the control plane', {
          service: frame.service,
          code: frame.error.code,
          reason: frame.error.message,
        });
        return;
      case 'confirm':
        for (const r of frame.results) {
          if (r.error !== undefined) {
            this.counters.refusals++;
            if (r.op === 'publish') this.#refusedRegs.set(r.id, r.error);
            this.#log.warn('registration refused by the control plane', {
              op: r.op,
              id: r.id,
              code: r.error.code,
              reason: r.error.message,
            });
            continue;
          }
          this.counters.confirms++;
          this.#refusedRegs.delete(r.id);
          if (r.op === 'publish') this.#local.confirmPublish(r.id, r.version);
          else this.#local.confirmUnpublish(r.id, r.version);
        }
        return;
      case 'slow_down':
        this.#onSlowDown(frame.retryAfterMs, frame.reason);
        return;
      case 'datacenters': {
        const receivedAt = Date.now();
        for (const l of this.#datacenterListeners) l(frame, receivedAt);
        return;
      }
      case 'pong':
      case 'welcome':
        return;
      default: {
        const never: never = frame;
        throw new Error(`unhandled frame ${String(never)}`);
      }
    }
  }

  onState(state: LinkState): void {
    if (state !== 'open' && this.#offlineSinceMs === 0) this.#offlineSinceMs = Date.now();
    if (state === 'open') this.#offlineSinceMs = 0;
    for (const l of this.#stateListeners) l(state);
  }

  get welcome(): Welcome | undefined {
    return this.#welcome;
  }

  /** Whether non-urgent sends are being held back after a `slow_down`. */
  get deferring(): boolean {
    return this.#batch.deferring;
  }

  /** The wall time non-urgent sends are held until (0, or a past time, when they are not held). */
  get deferredUntilMs(): number {
    return this.#batch.deferredUntilMs;
  }

  // ---- internals ------------------------------------------------------------------------------

  #onLocalFlush(batch: LocalBatchFlush): void {
    const upserts = batch.upserts.map((r) => ({ instance: toInstance(r, this.#node), version: r.version }));
    for (const regs of chunks(batch.removals)) this.#send({ type: 'unpublish', registrations: regs });
    for (const regs of chunks(upserts))
      this.#send({ type: 'publish', registrations: regs, ...withTraceparent(batch.traceparent) });
  }

  /**
   * The session is overloaded: hold non-urgent sends for `retryAfterMs` (already clamped by the
   * decoder) plus up to half as much again of jitter. A batch already waiting waits longer too.
   */
  #onSlowDown(retryAfterMs: number, reason: string): void {
    this.counters.slowDowns++;
    const until = Date.now() + Math.round(retryAfterMs * (1 + this.#random() * 0.5));
    if (this.#batch.deferUntil(until)) this.#log.info('session asked to slow down', { retryAfterMs, reason });
  }

  /**
   * Applies a delta onto the version it was made from, by building the new list from the view's
   * and replacing it. A delta at or below the version held is ignored and acknowledged like a push;
   * one from another base is not applied, and the service is subscribed again with the version held.
   */
  #onDelta(frame: Delta): void {
    const s = this.#view.get(frame.service);
    if (s === undefined || (s.received && frame.version <= s.version)) {
      this.counters.pushesIgnored++;
      this.#ack(frame.service, frame.version);
      return;
    }
    if (!s.received || s.version !== frame.base) {
      this.counters.deltasRefused++;
      this.#log.debug('delta from another base; asking again', {
        service: frame.service,
        base: frame.base,
        held: s.version,
      });
      const interest = s.received ? { service: s.service, knownVersion: s.version } : { service: s.service };
      this.#send({ type: 'subscribe', services: [interest] });
      return;
    }
    const next = new Map<string, Instance>(s.remote);
    for (const id of frame.removed) next.delete(id);
    for (const i of frame.upserts) next.set(registrationId(i), i);
    const { service, version, complete } = frame;
    if (this.#view.applyPush({ type: 'push', service, version, complete, instances: [...next.values()] }))
      this.counters.pushesApplied++;
    else this.counters.pushesIgnored++;
    this.#ack(frame.service, frame.version);
  }

  /**
   * Acknowledges a push: at once in protocol 1; in protocol 2 with the other acks of this
   * event-loop turn, in one `acks` frame (the highest version per service).
   */
  #ack(service: string, version: number): void {
    if (this.#link.protocolVersion < DELTA_PROTOCOL_VERSION) {
      this.#send({ type: 'ack', service, version });
      return;
    }
    if ((this.#pendingAcks.get(service) ?? -1) < version) this.#pendingAcks.set(service, version);
    this.#flushAcks ??= setImmediate(() => {
      this.#flushAcks = undefined;
      const acks: AckItem[] = [];
      for (const [s, v] of this.#pendingAcks) acks.push({ service: s, version: v });
      this.#pendingAcks.clear();
      for (const batch of chunks(acks)) this.#send({ type: 'acks', acks: batch });
    });
  }

  #resendUnconfirmed(): void {
    // Told to slow down: the next round (or the next connection's full sync) sends it.
    if (this.#link.state !== 'open' || this.deferring) return;
    const regs = this.#local
      .list()
      .filter((r) => !r.synced)
      .map((r) => ({ instance: toInstance(r, this.#node), version: r.version }));
    for (const batch of chunks(regs)) this.#send({ type: 'publish', registrations: batch });
    for (const batch of chunks(this.#local.tombstones()))
      this.#send({ type: 'unpublish', registrations: batch });
  }

  #send(frame: AgentFrame): void {
    // When offline nothing is lost: the full sync on the next open carries the current state.
    this.#link.send(frame);
  }
}

function* chunks<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += MAX_BATCH) yield items.slice(i, i + MAX_BATCH);
}
