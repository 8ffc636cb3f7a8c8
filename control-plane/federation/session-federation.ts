/**
 * Federation as one session runs it: the configuration meta pushes (version-ordered: an older one is
 * ignored), one {@link PeerImporter} per configured peer, the {@link FederationExporter} serving the
 * peers' importers, and the {@link ImportStore} of their copies. Every change of the configuration
 * takes effect at once: a new peer is dialled, a removed one is closed and its copies dropped, a
 * changed address or token re-dials (its copies are kept), an export list change re-subscribes.
 *
 * It tells the session, coalesced, when what agents see of the data centers changed (the
 * `datacenters` frame), and which qualified keys were withdrawn (their subscribers get `refused`).
 */
import type { Attributes } from '@opentelemetry/api';
import type { Datacenters, PeerDatacenter } from '../../proto/agent-link.js';
import { splitKey } from '../../proto/datacenter.js';
import type {
  FederationConfig,
  FederationPeer,
  PeerLinkStatus,
  SessionFederationStatus,
} from '../../proto/federation.js';
import type { Logger } from '../../proto/runtime/log.js';
import { observeGauges } from '../../proto/runtime/telemetry.js';
import type { TlsSource } from '../../proto/runtime/tls.js';
import type { DataApi } from '../link/data-api.js';
import type { LinkRetry } from '../link/link-client.js';
import type { LinkPolicy } from '../link/role-server.js';
import { FederationExporter, type ExportPush } from './exporter.js';
import { ImportStore } from './import-store.js';
import { PeerImporter } from './importer.js';

/** How long changes of the data centers' state are gathered before agents are told. */
export const DATACENTERS_COALESCE_MS = 50;

export interface SessionFederationOptions {
  readonly sessionId: string;
  /** This data center (the session's `MESHREG_DATACENTER`). */
  readonly datacenter: string;
  readonly digestMs: number;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly retry: LinkRetry;
  readonly tls?: TlsSource | undefined;
  readonly logger: Logger;
  readonly push: ExportPush;
  /** The data server leading a local service's slot; throws `unavailable` while there is none. */
  readonly forKey: (service: string) => DataApi;
  /** The data centers' state changed (coalesced): send agents a new `datacenters` frame. */
  readonly changed: () => void;
  /** Subscriptions to drop with `refused`: the key's data center left, or stopped exporting it. */
  readonly withdraw: (refused: (key: string) => string | undefined) => void;
}

export class SessionFederation {
  readonly store = new ImportStore();
  readonly #opts: SessionFederationOptions;
  readonly #exporter: FederationExporter;
  readonly #importers = new Map<string, PeerImporter>();
  #config: FederationConfig | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #unregisterMetrics: () => void;

  constructor(opts: SessionFederationOptions) {
    this.#opts = opts;
    this.#exporter = new FederationExporter({
      config: () => this.#config,
      push: opts.push,
      forKey: opts.forKey,
      logger: opts.logger,
    });
    this.#unregisterMetrics = this.#registerMetrics();
  }

  get datacenter(): string {
    return this.#opts.datacenter;
  }

  /** The federation link's admission policy (served on the session's port). */
  policy(): LinkPolicy {
    return this.#exporter.policy();
  }

  /**
   * Whether a qualified key's data center may be watched: a configured peer. Before meta sent the
   * configuration every name is accepted (the configuration then withdraws the unknown ones).
   */
  knows(datacenter: string): boolean {
    return this.#config === undefined || this.#importers.has(datacenter);
  }

  /** Adopts a newer configuration (an older or equal version is ignored); true when adopted. */
  apply(config: FederationConfig): boolean {
    if (this.#config !== undefined && config.version <= this.#config.version) return false;
    if (config.datacenter !== this.#opts.datacenter)
      this.#opts.logger.error('meta names another data center than this session’s MESHREG_DATACENTER', {
        meta: config.datacenter,
        session: this.#opts.datacenter,
      });
    this.#config = config;
    const wanted = new Map(config.peers.map((p) => [p.name, p]));
    for (const [name, imp] of this.#importers) {
      const next = wanted.get(name);
      if (next !== undefined && sameLink(next, imp.peer)) continue;
      imp.stop();
      this.#importers.delete(name);
      if (next === undefined) {
        this.store.dropPeer(name);
        this.#opts.logger.info('federation peer removed: its copies are dropped', { peer: name });
      }
    }
    for (const p of config.peers) if (!this.#importers.has(p.name)) this.#startImporter(p);
    this.#exporter.configChanged();
    this.#opts.withdraw((key) => {
      const dc = splitKey(key).datacenter;
      return dc === undefined || this.#importers.has(dc)
        ? undefined
        : `data center ${dc} is not a federation peer of ${this.#opts.datacenter}`;
    });
    this.#changed();
    return true;
  }

  /** What agents are told of the data centers (`datacenters`, protocol 4). */
  datacentersFrame(): Datacenters {
    const now = Date.now();
    const peers: PeerDatacenter[] = [...this.#importers.values()].map((imp) => ({
      name: imp.name,
      linked: imp.state === 'linked',
      ageMs: imp.lastSyncAt === null ? -1 : Math.max(0, now - imp.lastSyncAt),
      services: imp.exportsToUs,
    }));
    return { type: 'datacenters', local: this.#opts.datacenter, peers };
  }

  /** Every peer's link as this session sees it (meta's admin API gathers these). */
  status(): SessionFederationStatus {
    return {
      sessionId: this.#opts.sessionId,
      datacenter: this.#opts.datacenter,
      peers: [...this.#importers.values()].map((imp) => this.#peerStatus(imp)),
    };
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#unregisterMetrics();
    this.#exporter.close();
    for (const imp of this.#importers.values()) imp.stop();
    this.#importers.clear();
  }

  #peerStatus(imp: PeerImporter): PeerLinkStatus {
    const out = this.#exporter.counts(imp.name);
    return { ...imp.status(), importers: out.importers, bytesOut: out.bytesOut };
  }

  #startImporter(peer: FederationPeer): void {
    const o = this.#opts;
    const imp = new PeerImporter({
      peer,
      datacenter: o.datacenter,
      store: this.store,
      digestMs: o.digestMs,
      callTimeoutMs: o.callTimeoutMs,
      maxFrameBytes: o.maxFrameBytes,
      retry: o.retry,
      tls: o.tls,
      logger: o.logger,
      changed: () => {
        this.#changed();
      },
      withdrawn: (services) => {
        const gone = new Set(services.map((s) => `${s}@${peer.name}`));
        o.withdraw((key) => (gone.has(key) ? `${peer.name} no longer exports this service` : undefined));
      },
    });
    this.#importers.set(peer.name, imp);
    imp.start();
  }

  #changed(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#opts.changed();
    }, DATACENTERS_COALESCE_MS);
    this.#timer.unref();
  }

  #registerMetrics(): () => void {
    const each = (pick: (s: PeerLinkStatus) => number) => (observe: (v: number, a: Attributes) => void) => {
      for (const imp of this.#importers.values()) {
        const s = this.#peerStatus(imp);
        observe(pick(s), { peer: s.name });
      }
    };
    const g = (name: string, description: string, pick: (s: PeerLinkStatus) => number, counter = false) => ({
      name,
      description,
      counter,
      read: each(pick),
    });
    return observeGauges(
      [
        g('meshreg.federation.linked', '1 while the link to the peer is up and synced', (s) =>
          s.state === 'linked' ? 1 : 0,
        ),
        g('meshreg.federation.lag_ms', 'Delay of the last notice applied from the peer', (s) => s.lagMs ?? 0),
        g('meshreg.federation.services', 'Services imported from the peer', (s) => s.services),
        g('meshreg.federation.notices', 'Change notices applied from the peer', (s) => s.notices, true),
        g('meshreg.federation.digests', 'Digest rounds with the peer', (s) => s.digests, true),
        g('meshreg.federation.repairs', 'Services a digest had to repair', (s) => s.repairs, true),
        g('meshreg.federation.bytes_in', 'Bytes received from the peer', (s) => s.bytesIn, true),
        g('meshreg.federation.bytes_out', 'Bytes sent to the peer’s importers', (s) => s.bytesOut, true),
        g('meshreg.federation.importers', 'The peer’s importers connected here', (s) => s.importers),
      ],
      { role: 'session', session_id: this.#opts.sessionId },
    );
  }
}

/** Whether two configurations of a peer dial the same link (same addresses and token). */
function sameLink(a: FederationPeer, b: FederationPeer): boolean {
  return a.token === b.token && a.addresses.join(',') === b.addresses.join(',');
}
