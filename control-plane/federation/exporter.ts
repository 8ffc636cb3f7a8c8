/**
 * The exporting side of federation: serves the peers' importers at the federation link of this
 * session's port. Each connected importer is one push target of the session's push dispatcher,
 * subscribed to every service exported to its data center: the dispatcher declares the interest at
 * the data servers, coalesces changes and fetches each changed datum once, and this module turns its
 * frame into a notice for that peer (a targeted notice): `datum` for a whole datum, `delta` for what
 * changed since the version last sent on this link (the dispatcher's deltas, encoded once per base
 * and shared by every importer and agent at that base). A notice is acknowledged to the dispatcher at
 * once: what a broken link loses, the importer's next digest repairs.
 *
 * Only local datums are exported: a qualified key (another data center's copy) is never subscribed,
 * answered by `fetch` or listed in a digest. That is the no-relay rule (invariant 8).
 */
import { isRemoteKey } from '../../proto/datacenter.js';
import { MeshregError, type ErrorCode } from '../../proto/errors.js';
import type { FederationConfig, FederationPeer } from '../../proto/federation.js';
import { FEDERATION_LINK, type DatumView } from '../../proto/federation-link.js';
import type { Delta, Push } from '../../proto/agent-link.js';
import type { LinkHello } from '../../proto/rpc.js';
import type { Logger } from '../../proto/runtime/log.js';
import { tokensEqual } from '../link/auth.js';
import type { DataApi } from '../link/data-api.js';
import type { LinkPolicy } from '../link/role-server.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import type { PushTarget } from '../session/push-subscriptions.js';

/** What the exporter needs of the session's push dispatcher. */
export interface ExportPush {
  subscribe(target: PushTarget, key: string, knownVersion: number | undefined): void;
  unsubscribe(target: PushTarget, key: string): void;
  removeTarget(target: PushTarget, keys: Iterable<string>): void;
  ack(target: PushTarget, key: string, version: number): void;
}

/** What the exporter reads of the session: the configuration, the dispatcher and the data servers. */
export interface ExporterHost {
  config(): FederationConfig | undefined;
  readonly push: ExportPush;
  /** The data server leading a service's slot (throws `unavailable` while there is none). */
  forKey(service: string): DataApi;
  readonly logger: Logger;
}

/** Counters of one peer's importers on this session. */
export interface ExportCounts {
  importers: number;
  bytesOut: number;
  noticesOut: number;
}

/** One connected importer: a push target subscribed to what is exported to its data center. */
class ExportLink implements PushTarget {
  readonly id: string;
  readonly deltas = true;
  readonly peerName: string;
  readonly rpc: RpcPeer;
  /** The services it is subscribed to (the current export list to its data center). */
  services = new Set<string>();
  readonly #host: ExporterHost;
  readonly #counts: ExportCounts;

  constructor(id: string, peerName: string, rpc: RpcPeer, host: ExporterHost, counts: ExportCounts) {
    this.id = id;
    this.peerName = peerName;
    this.rpc = rpc;
    this.#host = host;
    this.#counts = counts;
  }

  send(frame: Buffer, written?: () => void): void {
    const f = JSON.parse(frame.toString('utf8')) as Push | Delta;
    if ((f.type !== 'push' && f.type !== 'delta') || isRemoteKey(f.service)) return;
    const sentAt = Date.now();
    if (f.type === 'push') {
      const datum: DatumView = {
        key: f.service,
        version: f.version,
        complete: f.complete,
        instances: f.instances,
      };
      this.rpc.emit(FEDERATION_LINK.datum, { datum, sentAt });
    } else {
      const { service: key, base, version, complete, upserts, removed } = f;
      this.rpc.emit(FEDERATION_LINK.delta, {
        delta: { key, base, version, complete, upserts, removed },
        sentAt,
      });
    }
    this.#counts.noticesOut++;
    this.#counts.bytesOut += frame.length + 64;
    written?.();
    this.#host.push.ack(this, f.service, f.version);
  }

  fail(code: ErrorCode, reason: string): void {
    this.rpc.close(code, reason);
  }
}

export class FederationExporter {
  readonly #host: ExporterHost;
  readonly #links = new Set<ExportLink>();
  readonly #counts = new Map<string, ExportCounts>();
  #seq = 0;

  constructor(host: ExporterHost) {
    this.#host = host;
  }

  /** Counters of `peer`'s importers (zeros when none ever connected). */
  counts(peer: string): ExportCounts {
    return this.#countsOf(peer);
  }

  /** How the federation link admits a hello: see the file comment of `proto/federation-link.ts`. */
  policy(): LinkPolicy {
    return {
      roles: ['federation'],
      authorize: (hello) => this.#authorize(hello),
      accepted: (rpc, hello) => {
        this.#accepted(rpc, hello.id);
        return {};
      },
    };
  }

  /** Applies a new configuration to the connected importers: export lists, removed peers, new tokens. */
  configChanged(): void {
    for (const link of [...this.#links]) {
      const peer = this.#peerOf(link.peerName);
      if (peer === undefined) {
        link.fail('unauthorized', `data center ${link.peerName} is no longer a federation peer`);
        continue;
      }
      this.#setExports(link, peer.exports);
    }
  }

  /** Closes every importer's link (the session stops). */
  close(): void {
    for (const link of this.#links) link.fail('shutting_down', 'session stopping');
  }

  #authorize(hello: LinkHello): MeshregError | undefined {
    const config = this.#host.config();
    if (config === undefined) return new MeshregError('unavailable', 'federation not configured yet');
    if (hello.id === config.datacenter)
      return new MeshregError(
        'wrong_datacenter',
        `a federation peer named ${hello.id} is this data center itself`,
      );
    const peer = config.peers.find((p) => p.name === hello.id);
    // One answer for an unknown peer and a wrong token: nothing tells a prober which names exist.
    if (peer === undefined || !tokensEqual(peer.token, hello.token))
      return new MeshregError('unauthorized', 'unknown federation peer or wrong token');
    return undefined;
  }

  #accepted(rpc: RpcPeer, peerName: string): void {
    const counts = this.#countsOf(peerName);
    const link = new ExportLink(
      `federation:${peerName}:${String(++this.#seq)}`,
      peerName,
      rpc,
      this.#host,
      counts,
    );
    this.#links.add(link);
    counts.importers++;
    rpc.handle(FEDERATION_LINK.digest, () => this.#digest(link));
    rpc.handle(FEDERATION_LINK.fetch, ({ key }) => this.#fetch(link, key));
    void rpc.closed.then(() => {
      this.#links.delete(link);
      counts.importers--;
      this.#host.push.removeTarget(link, link.services);
      link.services = new Set();
    });
    this.#host.logger.info('federation importer connected', { peer: peerName });
    this.#setExports(link, this.#peerOf(peerName)?.exports ?? [], true);
  }

  /** Subscribes `link` to exactly `exports` and tells its importer the list. */
  #setExports(link: ExportLink, exports: readonly string[], force = false): void {
    const next = new Set(exports.filter((s) => !isRemoteKey(s)));
    const same = next.size === link.services.size && [...next].every((s) => link.services.has(s));
    if (same && !force) return;
    for (const s of link.services) if (!next.has(s)) this.#host.push.unsubscribe(link, s);
    const added = [...next].filter((s) => !link.services.has(s));
    link.services = next;
    for (const s of added) this.#host.push.subscribe(link, s, undefined);
    link.rpc.emit(FEDERATION_LINK.exports, { services: [...next].sort() });
  }

  async #digest(link: ExportLink): Promise<{ services: Record<string, number> }> {
    const byServer = new Map<DataApi, string[]>();
    for (const s of link.services) {
      const server = this.#host.forKey(s);
      byServer.set(server, [...(byServer.get(server) ?? []), s]);
    }
    const services: Record<string, number> = {};
    for (const s of link.services) services[s] = 0;
    const answers = await Promise.all([...byServer].map(([server, keys]) => server.versions(keys)));
    for (const versions of answers) for (const [k, v] of versions) if (link.services.has(k)) services[k] = v;
    return { services };
  }

  async #fetch(link: ExportLink, key: string): Promise<DatumView> {
    if (isRemoteKey(key) || !link.services.has(key))
      throw new MeshregError('forbidden', `${key} is not exported to ${link.peerName}`);
    const d = await this.#host.forKey(key).fetch(key);
    return { key, version: d.version, complete: d.complete, instances: d.instances };
  }

  #peerOf(name: string): FederationPeer | undefined {
    return this.#host.config()?.peers.find((p) => p.name === name);
  }

  #countsOf(peer: string): ExportCounts {
    let c = this.#counts.get(peer);
    if (c === undefined) {
      c = { importers: 0, bytesOut: 0, noticesOut: 0 };
      this.#counts.set(peer, c);
    }
    return c;
  }
}
