/**
 * Binds the agent's {@link EndpointSource} to the {@link SnapshotCache}: it remembers which services
 * each node asked for (by any stream or REST poll), builds each service's resources once per change,
 * and refreshes only the nodes interested in a changed service, so work per change follows that
 * service's subscribers, not the registry's size.
 */
import { SERVICE_NAME_PATTERN } from '../../proto/instance.js';
import { silentLogger, type Logger } from '../../proto/runtime/log.js';
import type { EndpointSource } from './endpoint-source.js';
import { buildServiceResources } from './service-resources.js';
import { cachedResource, SnapshotCache, type CachedResource } from './snapshot-cache.js';
import { RESOURCE_TYPE_URLS, type ResourceTypeUrl } from './type-urls.js';

/** Options of {@link XdsView}. */
export interface XdsViewOptions {
  readonly cache?: SnapshotCache;
  readonly logger?: Logger;
  /** How long a REST poller's interest outlives its last request (REST has no stream end). */
  readonly restIdleMs?: number;
  readonly now?: () => number;
}

interface Subscription {
  readonly services: ReadonlySet<string>;
  /** Last time it was renewed; only REST subscriptions expire. */
  touchedMs: number;
  readonly expires: boolean;
}

interface BuiltService {
  readonly version: number;
  readonly byType: ReadonlyMap<ResourceTypeUrl, CachedResource>;
}

const DEFAULT_REST_IDLE_MS = 10 * 60_000;

/** The xDS resources of the services that nodes watch, kept current from an EndpointSource. */
export class XdsView {
  /** The versioned per-node resources that streams and REST polls read. */
  readonly cache: SnapshotCache;
  readonly #source: EndpointSource;
  readonly #logger: Logger;
  readonly #restIdleMs: number;
  readonly #now: () => number;
  readonly #interest = new Map<string, Map<string, Subscription>>();
  readonly #built = new Map<string, BuiltService>();
  readonly #unsubscribe: () => void;

  constructor(source: EndpointSource, options: XdsViewOptions = {}) {
    this.#source = source;
    this.cache = options.cache ?? new SnapshotCache();
    this.#logger = options.logger ?? silentLogger;
    this.#restIdleMs = options.restIdleMs ?? DEFAULT_REST_IDLE_MS;
    this.#now = options.now ?? Date.now;
    this.#unsubscribe = source.onChange((service) => {
      this.#onServiceChange(service);
    });
  }

  /**
   * Records that `subscriber` of `node` wants `services` (replacing what it wanted before) and
   * brings the node's resources up to date before returning, so a watch created next sees them.
   * Names that cannot be services are ignored: no resource will ever exist for them.
   * `expires` marks REST pollers, which are forgotten after an idle period.
   */
  subscribe(node: string, subscriber: string, services: readonly string[], expires = false): void {
    const valid = new Set(services.filter((s) => SERVICE_NAME_PATTERN.test(s)));
    let subs = this.#interest.get(node);
    if (subs === undefined) {
      subs = new Map();
      this.#interest.set(node, subs);
    }
    subs.set(subscriber, { services: valid, touchedMs: this.#now(), expires });
    for (const service of valid) if (!this.#built.has(service)) this.#rebuild(service);
    this.#expireIdle();
    this.#refresh(node);
  }

  /** Drops a subscriber (a closed stream); a node with none left is removed from the cache. */
  unsubscribe(node: string, subscriber: string): void {
    const subs = this.#interest.get(node);
    if (subs === undefined || !subs.delete(subscriber)) return;
    if (subs.size === 0) {
      this.#interest.delete(node);
      this.cache.deleteNode(node);
    } else {
      this.#refresh(node);
    }
    this.#dropUnwatched();
  }

  /** True while some node subscribes to `service`: the agent keeps its watch alive then. */
  watches(service: string): boolean {
    return this.#built.has(service);
  }

  /** Stops following the source. Parked watches stay parked. */
  close(): void {
    this.#unsubscribe();
  }

  #onServiceChange(service: string): void {
    if (!this.#built.has(service)) return;
    this.#rebuild(service);
    for (const [node, subs] of this.#interest) {
      if ([...subs.values()].some((s) => s.services.has(service))) this.#refresh(node);
    }
  }

  #rebuild(service: string): void {
    const snapshot = this.#source.snapshot(service);
    const built = buildServiceResources(snapshot, this.#source.locality);
    if (built.skipped > 0) {
      this.#logger.warn('eds: instances without an IP address and port left out', {
        service,
        skipped: built.skipped,
      });
    }
    const byType = new Map<ResourceTypeUrl, CachedResource>();
    for (const [typeUrl, body] of built.byType) byType.set(typeUrl, cachedResource(service, body));
    this.#built.set(service, { version: snapshot.version, byType });
  }

  /** Recomputes every type for one node from the built services; the cache bumps only what changed. */
  #refresh(node: string): void {
    const services = new Set<string>();
    for (const sub of this.#interest.get(node)?.values() ?? []) for (const s of sub.services) services.add(s);
    const sorted = [...services].sort();
    for (const typeUrl of RESOURCE_TYPE_URLS) {
      const resources: CachedResource[] = [];
      for (const service of sorted) {
        const built = this.#built.get(service);
        // Version 0 = the agent has no view yet: withhold the resource, so the client keeps
        // waiting for it instead of dialing an empty endpoint list; it is sent when it appears.
        const resource = built !== undefined && built.version > 0 ? built.byType.get(typeUrl) : undefined;
        if (resource !== undefined) resources.push(resource);
      }
      this.cache.setResources(node, typeUrl, resources);
    }
  }

  #expireIdle(): void {
    const cutoff = this.#now() - this.#restIdleMs;
    for (const [node, subs] of [...this.#interest]) {
      for (const [id, sub] of [...subs])
        if (sub.expires && sub.touchedMs < cutoff) this.unsubscribe(node, id);
    }
  }

  #dropUnwatched(): void {
    const wanted = new Set<string>();
    for (const subs of this.#interest.values())
      for (const sub of subs.values()) for (const s of sub.services) wanted.add(s);
    for (const service of [...this.#built.keys()]) if (!wanted.has(service)) this.#built.delete(service);
  }
}

const shared = new WeakMap<EndpointSource, XdsView>();

/**
 * The one view per source that the REST gateway and the gRPC server share by default, so a node
 * sees the same version strings whichever transport it uses.
 */
export function xdsViewFor(source: EndpointSource, logger?: Logger): XdsView {
  let view = shared.get(source);
  if (view === undefined) {
    view = new XdsView(source, logger === undefined ? {} : { logger });
    shared.set(source, view);
  }
  return view;
}

/** The shared view of `source` if a transport created one (it is not created by asking). */
export function existingXdsView(source: EndpointSource): XdsView | undefined {
  return shared.get(source);
}
