/**
 * The importing side of federation for one peer data center: a link from this session to one of the
 * peer's sessions (its addresses tried in turn), on which the peer sends a notice for every change of
 * a service it exports to us (`datum`: the whole datum; `delta`: the change from the version it last
 * sent, applied only to a copy at exactly that version, else the datum is fetched), and which this side asks for a `digest` (every exported
 * service with its version) on connect and every `digestMs`, then `fetch`es each service whose copy
 * differs: the digest repairs whatever notice was lost.
 *
 * States: `connecting` (never linked yet) → `linked` (the first digest applied) → `down` (the link
 * was lost: copies are kept and served as the last known, stale) → `linked` … A blackholed link is
 * noticed by WebSocket pings (one each {@link PING_INTERVAL_MS}, the link cut after
 * {@link MAX_MISSED_PONGS} unanswered) and by the digest's call timeout.
 */
import WebSocket from 'ws';
import {
  FEDERATION_LINK,
  FEDERATION_LINK_PATH,
  type DatumDelta,
  type DatumView,
} from '../../proto/federation-link.js';
import { registrationId } from '../../proto/instance.js';
import type { FederationPeer, PeerLinkStatus } from '../../proto/federation.js';
import type { LinkSocket } from '../../proto/runtime/link-socket.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { TlsSource } from '../../proto/runtime/tls.js';
import { CLUSTER_PROTOCOL_VERSION } from '../../proto/rpc.js';
import {
  LinkClient,
  tlsSocket,
  wsSocket,
  type LinkRetry,
  type LinkSocketFactory,
} from '../link/link-client.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import type { ImportStore } from './import-store.js';

export const PING_INTERVAL_MS = 1000;
export const MAX_MISSED_PONGS = 3;

export type ImportState = PeerLinkStatus['state'];

export interface ImporterOptions {
  readonly peer: FederationPeer;
  /** This data center's name (the hello's `id`). */
  readonly datacenter: string;
  readonly store: ImportStore;
  readonly digestMs: number;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly retry: LinkRetry;
  readonly tls?: TlsSource | undefined;
  readonly logger: Logger;
  /** The link state or the export list changed (what the `datacenters` frame shows). */
  readonly changed: () => void;
  /** Services of this peer whose copies were dropped (no longer exported): their subscribers are told. */
  readonly withdrawn: (services: readonly string[]) => void;
}

/** The link URL of an address: the federation link path added when the address has no path. */
export function linkUrl(address: string): string {
  const u = new URL(address);
  if (u.pathname === '' || u.pathname === '/') u.pathname = FEDERATION_LINK_PATH;
  return u.toString();
}

export class PeerImporter {
  readonly name: string;
  readonly peer: FederationPeer;
  readonly #opts: ImporterOptions;
  readonly #client: LinkClient;
  readonly #timer: NodeJS.Timeout;
  readonly #pinger: NodeJS.Timeout;
  #state: ImportState = 'connecting';
  #socket: WebSocket | undefined;
  #missedPongs = 0;
  /** The current link has completed a digest round (later rounds' fetches count as repairs). */
  #synced = false;
  #syncing = false;
  readonly #refetching = new Set<string>();
  #exportsToUs: string[] = [];
  #lastSyncAt: number | null = null;
  #lagMs: number | null = null;
  readonly counts = { notices: 0, digests: 0, repairs: 0, bytesIn: 0 };

  constructor(opts: ImporterOptions) {
    this.#opts = opts;
    this.peer = opts.peer;
    this.name = opts.peer.name;
    const log = opts.logger.child({ peer: this.name });
    const base: LinkSocketFactory = opts.tls === undefined ? wsSocket : tlsSocket(opts.tls);
    this.#client = new LinkClient(
      {
        url: opts.peer.addresses.map(linkUrl).join(','),
        hello: {
          role: 'federation',
          id: opts.datacenter,
          url: '',
          protocolVersion: CLUSTER_PROTOCOL_VERSION,
          token: opts.peer.token,
        },
        callTimeoutMs: opts.callTimeoutMs,
        maxFrameBytes: opts.maxFrameBytes,
        retry: opts.retry,
        tls: opts.tls,
        logger: log,
        connect: (url, o): LinkSocket => {
          const s = base(url, o);
          this.#socket = s instanceof WebSocket ? s : undefined;
          this.#missedPongs = 0;
          this.#socket?.on('pong', () => {
            this.#missedPongs = 0;
          });
          return s;
        },
      },
      {
        setup: (peer) => {
          this.#setup(peer);
        },
        ready: (peer) => {
          this.#synced = false;
          void this.#sync(peer);
        },
        state: (s) => {
          if (s === 'backoff' || s === 'closed') this.#lost(s);
        },
      },
    );
    this.#timer = setInterval(() => {
      const peer = this.#client.peer;
      if (peer !== undefined && this.#synced) void this.#sync(peer);
    }, opts.digestMs);
    this.#timer.unref();
    this.#pinger = setInterval(() => {
      this.#ping();
    }, PING_INTERVAL_MS);
    this.#pinger.unref();
  }

  get state(): ImportState {
    return this.#state;
  }

  get exportsToUs(): readonly string[] {
    return this.#exportsToUs;
  }

  get lastSyncAt(): number | null {
    return this.#lastSyncAt;
  }

  start(): void {
    this.#client.start();
  }

  stop(): void {
    clearInterval(this.#timer);
    clearInterval(this.#pinger);
    this.#client.stop();
  }

  /** This link's status (the importers' side of it; the session adds the exporter's counters). */
  status(): Omit<PeerLinkStatus, 'importers' | 'bytesOut'> {
    let instances = 0;
    const copies = this.#opts.store.services(this.name);
    for (const d of copies.values()) instances += d.instances.length;
    return {
      name: this.name,
      state: this.#state,
      stale: this.#state !== 'linked',
      lastSyncAt: this.#lastSyncAt,
      lagMs: this.#lagMs,
      services: copies.size,
      instances,
      exportsToUs: this.#exportsToUs,
      ...this.counts,
    };
  }

  #setup(peer: RpcPeer): void {
    peer.on(FEDERATION_LINK.datum, (n) => {
      // A notice of a service no longer exported to us (sent before the list changed) is not kept.
      if (!this.#exportsToUs.includes(n.datum.key)) return;
      this.counts.bytesIn += JSON.stringify(n).length;
      if (!this.#opts.store.apply(this.name, n.datum)) return;
      this.counts.notices++;
      this.#lagMs = Math.max(0, Date.now() - n.sentAt);
      if (this.#state === 'linked') this.#lastSyncAt = Date.now();
    });
    peer.on(FEDERATION_LINK.delta, (n) => {
      if (!this.#exportsToUs.includes(n.delta.key)) return;
      this.counts.bytesIn += JSON.stringify(n).length;
      const next = this.#patched(n.delta);
      if (next === undefined) {
        // Our copy is not at the delta's base (a digest moved it on, or it never came): take the datum.
        void this.#refetch(peer, n.delta.key);
        return;
      }
      if (!this.#opts.store.apply(this.name, next)) return;
      this.counts.notices++;
      this.#lagMs = Math.max(0, Date.now() - n.sentAt);
      if (this.#state === 'linked') this.#lastSyncAt = Date.now();
    });
    peer.on(FEDERATION_LINK.exports, ({ services }) => {
      this.#setExports(services);
    });
  }

  /**
   * The copy with `d` applied, when the copy is exactly at `d.base`; undefined otherwise. An
   * incomplete delta adds and updates but removes nothing, as agents apply one.
   */
  #patched(d: DatumDelta): DatumView | undefined {
    const held = this.#opts.store.services(this.name).get(d.key);
    if (held?.version !== d.base) return undefined;
    const byId = new Map(held.instances.map((i) => [registrationId(i), i]));
    if (d.complete) for (const id of d.removed) byId.delete(id);
    for (const i of d.upserts) byId.set(registrationId(i), i);
    return { key: d.key, version: d.version, complete: d.complete, instances: [...byId.values()] };
  }

  /** Fetches one service whose delta could not be applied (one fetch at a time per service). */
  async #refetch(peer: RpcPeer, service: string): Promise<void> {
    if (this.#refetching.has(service)) return;
    this.#refetching.add(service);
    try {
      const d = await peer.call(FEDERATION_LINK.fetch, { key: service });
      this.counts.bytesIn += JSON.stringify(d).length;
      if (this.#opts.store.apply(this.name, d)) this.counts.notices++;
    } catch (err) {
      // The next digest round repairs it.
      this.#opts.logger.debug('federation fetch after a delta failed', { peer: this.name, service, err });
    } finally {
      this.#refetching.delete(service);
    }
  }

  #setExports(services: readonly string[]): void {
    const next = [...new Set(services)].sort();
    if (next.join(',') === this.#exportsToUs.join(',')) return;
    this.#exportsToUs = next;
    const gone = [...this.#opts.store.services(this.name).keys()].filter((s) => !next.includes(s));
    const dropped = this.#opts.store.drop(this.name, gone);
    if (dropped.length > 0) this.#opts.withdrawn(dropped);
    this.#opts.changed();
  }

  /** One digest round: drop what is no longer exported, fetch what differs, then the peer is linked. */
  async #sync(peer: RpcPeer): Promise<void> {
    if (this.#syncing) return;
    this.#syncing = true;
    const timeout = Math.min(this.#opts.callTimeoutMs, Math.max(1000, this.#opts.digestMs));
    try {
      const digest = await peer.call(FEDERATION_LINK.digest, {}, timeout);
      this.counts.digests++;
      this.counts.bytesIn += JSON.stringify(digest).length;
      this.#setExports(Object.keys(digest.services));
      const store = this.#opts.store;
      const differs = Object.entries(digest.services).filter(([s, v]) => store.version(this.name, s) !== v);
      for (const [service] of differs) {
        const d = await peer.call(FEDERATION_LINK.fetch, { key: service }, timeout);
        this.counts.bytesIn += JSON.stringify(d).length;
        if (store.apply(this.name, d) && this.#synced) this.counts.repairs++;
      }
      this.#synced = true;
      this.#lastSyncAt = Date.now();
      if (this.#client.peer === peer) this.#enter('linked', 'digest applied');
    } catch (err) {
      // A digest without an answer: the link is taken as dead (a blackhole sends no close).
      this.#opts.logger.debug('federation digest failed', { peer: this.name, err });
      if (this.#client.peer === peer) peer.terminate();
    } finally {
      this.#syncing = false;
    }
  }

  #ping(): void {
    const s = this.#socket;
    if (s?.readyState !== WebSocket.OPEN || this.#client.peer === undefined) return;
    if (this.#missedPongs >= MAX_MISSED_PONGS) {
      this.#opts.logger.debug('federation link unanswered; cut', { peer: this.name });
      s.terminate();
      return;
    }
    this.#missedPongs++;
    s.ping();
  }

  #lost(why: string): void {
    this.#synced = false;
    if (this.#state === 'linked') this.#enter('down', why);
  }

  #enter(next: ImportState, reason: string): void {
    if (next === this.#state) return;
    const from = this.#state;
    this.#state = next;
    const log = this.#opts.logger;
    if (next === 'linked') log.info('federation link up', { peer: this.name, from, reason });
    else
      log.warn('federation link down: serving its last known copies as stale', { peer: this.name, reason });
    this.#opts.changed();
  }
}
