/**
 * Binds the agent's {@link EndpointSource} to the {@link SnapshotCache}: it remembers which services
 * each node asked for (by any stream or REST poll), builds each service's resources once per change
 * and per distinct caller (locality and scope, see caller.ts) rather than per node, and refreshes
 * only the nodes interested in a changed service, so work per change follows that service's
 * subscribers, not the registry's size.
 */
import { SERVICE_NAME_PATTERN } from '../../proto/instance.js';
import { silentLogger, type Logger } from '../../proto/runtime/log.js';
import { splitKey } from '../../proto/datacenter.js';
import { callerKey, isUnspecified, resolveCaller, type ResolvedCaller, type XdsCaller } from './caller.js';
import type { EndpointSource, ServiceSnapshot } from './endpoint-source.js';
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

/** One node key's subscribers and the caller they all share (the key includes the caller). */
interface NodeInterest {
  readonly caller: ResolvedCaller;
  readonly subs: Map<string, Subscription>;
}

interface BuiltService {
  readonly caller: ResolvedCaller;
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
  readonly #interest = new Map<string, NodeInterest>();
  /** Per service, one build per distinct caller (by {@link callerKey}), shared by every node alike. */
  readonly #built = new Map<string, Map<string, BuiltService>>();
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
   * `expires` marks REST pollers, which are forgotten after an idle period. `caller` is what the
   * node said of its locality and scope.
   *
   * Returns the key under which {@link cache} holds this node's resources: the node id when the
   * node said nothing of locality or scope, else the id with the resolved caller (so two clients
   * sharing an id but not a locality never share versions).
   */
  subscribe(
    node: string,
    subscriber: string,
    services: readonly string[],
    expires = false,
    caller?: XdsCaller,
  ): string {
    const resolved = resolveCaller(caller, this.#source.locality);
    const key = isUnspecified(caller) ? node : JSON.stringify([node, callerKey(resolved)]);
    const valid = new Set(services.filter((s) => SERVICE_NAME_PATTERN.test(s)));
    let interest = this.#interest.get(key);
    if (interest === undefined) {
      interest = { caller: resolved, subs: new Map() };
      this.#interest.set(key, interest);
    }
    interest.subs.set(subscriber, { services: valid, touchedMs: this.#now(), expires });
    const ck = callerKey(resolved);
    for (const service of valid)
      if (this.#built.get(service)?.has(ck) !== true) this.#rebuild(service, [resolved]);
    this.#expireIdle();
    this.#refresh(key);
    return key;
  }

  /** Drops a subscriber (a closed stream) of a node key; a key with none left is removed from the cache. */
  unsubscribe(nodeKey: string, subscriber: string): void {
    const interest = this.#interest.get(nodeKey);
    if (interest === undefined || !interest.subs.delete(subscriber)) return;
    if (interest.subs.size === 0) {
      this.#interest.delete(nodeKey);
      this.cache.deleteNode(nodeKey);
    } else {
      this.#refresh(nodeKey);
    }
    this.#dropUnwatched();
  }

  /**
   * True while some node subscribes to `key`: the agent keeps its watch alive then. A qualified
   * key (`web@dc2`) is in use while a caller of scope `global` subscribes to the service.
   */
  watches(key: string): boolean {
    const { service, datacenter } = splitKey(key);
    const builds = this.#built.get(service);
    if (builds === undefined) return false;
    if (datacenter === undefined) return true;
    for (const b of builds.values()) if (b.caller.scope === 'global') return true;
    return false;
  }

  /** Stops following the source. Parked watches stay parked. */
  close(): void {
    this.#unsubscribe();
  }

  #onServiceChange(service: string): void {
    const builds = this.#built.get(service);
    if (builds === undefined) return;
    this.#rebuild(
      service,
      [...builds.values()].map((b) => b.caller),
    );
    for (const [key, interest] of this.#interest) {
      if ([...interest.subs.values()].some((s) => s.services.has(service))) this.#refresh(key);
    }
  }

  /** Builds `service` for each caller; callers that differ only in locality share one snapshot read. */
  #rebuild(service: string, callers: readonly ResolvedCaller[]): void {
    let builds = this.#built.get(service);
    if (builds === undefined) {
      builds = new Map();
      this.#built.set(service, builds);
    }
    let local: ServiceSnapshot | undefined;
    let global: ServiceSnapshot | undefined;
    for (const caller of callers) {
      const snapshot =
        caller.scope === 'global'
          ? (global ??= this.#source.snapshot(service, { remote: true }))
          : (local ??= this.#source.snapshot(service));
      const built = buildServiceResources(snapshot, caller);
      if (built.skipped > 0) {
        this.#logger.warn('eds: instances without an IP address and port left out', {
          service,
          skipped: built.skipped,
        });
      }
      // Only the endpoints differ between callers: keep one object for equal resources, so the
      // gRPC transport encodes each once.
      const other = builds.values().next().value;
      const byType = new Map<ResourceTypeUrl, CachedResource>();
      for (const [typeUrl, body] of built.byType) {
        const fresh = cachedResource(service, body);
        const same = other?.byType.get(typeUrl);
        byType.set(typeUrl, same?.digest === fresh.digest ? same : fresh);
      }
      builds.set(callerKey(caller), { caller, version: snapshot.version, byType });
    }
  }

  /** Recomputes every type for one node key from the built services; the cache bumps only what changed. */
  #refresh(key: string): void {
    const interest = this.#interest.get(key);
    if (interest === undefined) return;
    const ck = callerKey(interest.caller);
    const services = new Set<string>();
    for (const sub of interest.subs.values()) for (const s of sub.services) services.add(s);
    const sorted = [...services].sort();
    for (const typeUrl of RESOURCE_TYPE_URLS) {
      const resources: CachedResource[] = [];
      for (const service of sorted) {
        const built = this.#built.get(service)?.get(ck);
        // Version 0 = the agent has no view yet: withhold the resource, so the client keeps
        // waiting for it instead of dialing an empty endpoint list; it is sent when it appears.
        const resource = built !== undefined && built.version > 0 ? built.byType.get(typeUrl) : undefined;
        if (resource !== undefined) resources.push(resource);
      }
      this.cache.setResources(key, typeUrl, resources);
    }
  }

  #expireIdle(): void {
    const cutoff = this.#now() - this.#restIdleMs;
    for (const [key, interest] of [...this.#interest]) {
      for (const [id, sub] of [...interest.subs])
        if (sub.expires && sub.touchedMs < cutoff) this.unsubscribe(key, id);
    }
  }

  #dropUnwatched(): void {
    const wanted = new Map<string, Set<string>>();
    for (const interest of this.#interest.values()) {
      const ck = callerKey(interest.caller);
      for (const sub of interest.subs.values()) {
        for (const s of sub.services) {
          let callers = wanted.get(s);
          if (callers === undefined) {
            callers = new Set();
            wanted.set(s, callers);
          }
          callers.add(ck);
        }
      }
    }
    for (const [service, builds] of [...this.#built]) {
      const callers = wanted.get(service);
      for (const ck of [...builds.keys()]) if (callers?.has(ck) !== true) builds.delete(ck);
      if (builds.size === 0) this.#built.delete(service);
    }
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
