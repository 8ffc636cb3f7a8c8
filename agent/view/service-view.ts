/**
 * The agent's local view of every service its apps watch: what the control plane pushed, merged with
 * the host's own registrations (so a local app reads its own writes at once). Reads are answered
 * from here without touching the network; blocking queries wait on per-service change signals.
 *
 * Indexes: one counter for the whole agent (Consul's `X-Consul-Index`), starting at 1, raised on every
 * visible change; each service remembers the index of its last change.
 */
import type { Catalog, Push } from '../../proto/agent-link.js';
import { MeshregError } from '../../proto/errors.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { ChangeSignal } from './change-signal.js';

export interface WatchedService {
  readonly service: string;
  /** Datum version last applied from the control plane; 0 when nothing has arrived. */
  version: number;
  /** Whether the last push was authoritative (false while the control plane rebuilds). */
  complete: boolean;
  /** True once a push arrived or a cached copy was restored. */
  received: boolean;
  remote: Map<string, Instance>;
  modifyIndex: number;
  lastReadMs: number;
  /** Reads in progress (a blocking query, a first read waiting): a held watch is never evicted. */
  holds: number;
}

export interface CatalogState {
  version: number;
  received: boolean;
  services: Readonly<Record<string, readonly string[]>>;
  modifyIndex: number;
}

export interface ViewHooks {
  /** A service was read for the first time: subscribe to it upstream. */
  onWatch(service: string): void;
  /** The catalog was read for the first time. */
  onWatchCatalog(): void;
  /** The host's own instances of a service, newest state. */
  localInstances(service: string): readonly Instance[];
  /** Any visible change of a service (for EDS and the disk cache). */
  onChanged(service: string): void;
  /** A push changed the catalog (for the disk cache). */
  onCatalogChanged?(): void;
  /** Watches were evicted: unsubscribe upstream and forget them on disk. */
  onUnwatch?(services: readonly string[]): void;
  /** True while something outside the HTTP reads uses the service (an xDS subscriber): not evicted. */
  inUse?(service: string): boolean;
}

/** Limits of the watch table. */
export interface ViewOptions {
  /** Most services watched at once; a read of one more evicts the least recently read idle watch. */
  readonly maxWatches?: number;
  /** The clock of `lastReadMs` and eviction (injectable for tests). */
  readonly now?: () => number;
}

/** Default of {@link ViewOptions.maxWatches}. */
export const DEFAULT_MAX_WATCHES = 10_000;

export class ServiceView {
  #index = 1;
  readonly #services = new Map<string, WatchedService>();
  readonly #waiters = new Map<string, ChangeSignal>();
  readonly #catalogChanged = new ChangeSignal();
  readonly #catalog: CatalogState = { version: 0, received: false, services: {}, modifyIndex: 1 };
  #catalogWatched = false;
  readonly #ownNodeId: string;
  readonly #hooks: ViewHooks;
  readonly #maxWatches: number;
  readonly #now: () => number;

  constructor(ownNodeId: string, hooks: ViewHooks, options: ViewOptions = {}) {
    this.#ownNodeId = ownNodeId;
    this.#hooks = hooks;
    this.#maxWatches = options.maxWatches ?? DEFAULT_MAX_WATCHES;
    this.#now = options.now ?? Date.now;
  }

  /** The agent-wide index (≥ 1). */
  get index(): number {
    return this.#index;
  }

  /**
   * Raises the agent-wide index for a change outside any watched service (the data centers the
   * session reported) and returns it, so blocking reads of that state have an index to wait past.
   */
  touch(): number {
    return ++this.#index;
  }

  /** The catalog as held (read-only use). */
  get catalogState(): Readonly<CatalogState> {
    return this.#catalog;
  }

  get catalogWatched(): boolean {
    return this.#catalogWatched;
  }

  watched(): WatchedService[] {
    return [...this.#services.values()];
  }

  get(service: string): WatchedService | undefined {
    return this.#services.get(service);
  }

  /**
   * The entry of `service`, created (and subscribed upstream) on first use; every call counts as a
   * read. At the watch limit, the least recently read watch that nothing holds is evicted to make
   * room; when every watch is held, throws `rate_limited` naming the limit.
   */
  ensure(service: string): WatchedService {
    let s = this.#services.get(service);
    if (s === undefined) {
      if (this.#services.size >= this.#maxWatches && !this.#evictLeastRecent()) {
        throw new MeshregError(
          'rate_limited',
          `this agent already watches ${this.#maxWatches} services, all in use (MESHREG_AGENT_MAX_WATCHES)`,
        );
      }
      s = this.#create(service);
      this.#hooks.onWatch(service);
    }
    s.lastReadMs = this.#now();
    return s;
  }

  /** Keeps `entry` from eviction until the returned release is called (idempotent). */
  hold(entry: WatchedService): () => void {
    entry.holds++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      entry.holds--;
      // The idle time counts from the end of the read: a long blocking query was a read all along.
      entry.lastReadMs = this.#now();
    };
  }

  /**
   * Evicts every watch not read for `idleMs`, not held by a read in progress and not in use by
   * xDS. Returns the evicted names (already reported to `onUnwatch`).
   */
  evictIdle(idleMs: number): string[] {
    const cutoff = this.#now() - idleMs;
    const gone: string[] = [];
    for (const s of this.#services.values())
      if (s.lastReadMs <= cutoff && this.#evictable(s)) gone.push(s.service);
    this.#forget(gone);
    return gone;
  }

  /** Stops watching `service` now unless a read holds it or xDS uses it; true when it went. */
  unwatch(service: string): boolean {
    const s = this.#services.get(service);
    if (s === undefined || !this.#evictable(s)) return false;
    this.#forget([service]);
    return true;
  }

  #evictable(s: WatchedService): boolean {
    return s.holds === 0 && this.#hooks.inUse?.(s.service) !== true;
  }

  /** Evicts the least recently read evictable watch; false when every watch is held. */
  #evictLeastRecent(): boolean {
    let oldest: WatchedService | undefined;
    for (const s of this.#services.values())
      if ((oldest === undefined || s.lastReadMs < oldest.lastReadMs) && this.#evictable(s)) oldest = s;
    if (oldest === undefined) return false;
    this.#forget([oldest.service]);
    return true;
  }

  #forget(services: readonly string[]): void {
    if (services.length === 0) return;
    for (const service of services) this.#services.delete(service);
    this.#hooks.onUnwatch?.(services);
  }

  #create(service: string): WatchedService {
    const s: WatchedService = {
      service,
      version: 0,
      complete: false,
      received: false,
      remote: new Map(),
      modifyIndex: this.#index,
      lastReadMs: this.#now(),
      holds: 0,
    };
    this.#services.set(service, s);
    return s;
  }

  /**
   * Restores a cached copy (from disk) before anything was pushed. Restoring counts as a read, so
   * a cached watch nobody reads again is evicted after the idle time. Past the watch limit the
   * rest of the cache is skipped rather than evicting what was restored first.
   */
  restore(service: string, version: number, instances: readonly Instance[]): void {
    if (!this.#services.has(service) && this.#services.size >= this.#maxWatches) return;
    const s = this.ensure(service);
    if (s.received) return;
    s.version = version;
    s.complete = true;
    s.received = true;
    s.remote = new Map(instances.map((i) => [registrationId(i), i]));
    this.#bump(service, s);
  }

  /**
   * Applies a push. Older or equal versions are ignored (invariant 2). An incomplete push adds to
   * and updates what is held but removes nothing (invariant 3). Returns whether it was applied.
   */
  applyPush(push: Push): boolean {
    const s = this.#services.get(push.service);
    if (s === undefined) return false;
    if (s.received && push.version <= s.version) return false;
    const next = push.complete ? new Map<string, Instance>() : new Map(s.remote);
    for (const i of push.instances) next.set(registrationId(i), i);
    s.remote = next;
    s.version = push.version;
    s.complete = push.complete;
    s.received = true;
    this.#bump(push.service, s);
    return true;
  }

  /** The host's own registrations of `service` changed. */
  localChanged(service: string): void {
    const s = this.#services.get(service);
    if (s !== undefined) this.#bump(service, s);
  }

  /** Instances of `service`: pushed ones from other nodes plus this node's own, by ID. */
  instances(service: string): Instance[] {
    const s = this.#services.get(service);
    const out: Instance[] = [];
    if (s !== undefined) {
      for (const i of s.remote.values()) if (i.nodeId !== this.#ownNodeId) out.push(i);
    }
    out.push(...this.#hooks.localInstances(service));
    return out;
  }

  // ---- catalog ----------------------------------------------------------------------------------

  ensureCatalog(): CatalogState {
    if (!this.#catalogWatched) {
      this.#catalogWatched = true;
      this.#hooks.onWatchCatalog();
    }
    return this.#catalog;
  }

  applyCatalog(c: Catalog): boolean {
    if (this.#catalog.received && c.version <= this.#catalog.version) return false;
    // While the control plane rebuilds, names only get added: no service disappears for that reason.
    this.#catalog.services = c.complete ? c.services : { ...this.#catalog.services, ...c.services };
    this.#catalog.version = c.version;
    this.#catalog.received = true;
    this.#catalog.modifyIndex = ++this.#index;
    this.#hooks.onCatalogChanged?.();
    this.#catalogChanged.wake();
    return true;
  }

  restoreCatalog(version: number, services: Readonly<Record<string, readonly string[]>>): void {
    if (this.#catalog.received) return;
    this.#catalog.services = services;
    this.#catalog.version = version;
    this.#catalog.received = true;
    this.#catalog.modifyIndex = ++this.#index;
  }

  /** Local names merged into the catalog, so a local app sees its own service listed at once. */
  catalogServices(localNames: Iterable<readonly [string, readonly string[]]>): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [name, tags] of Object.entries(this.#catalog.services)) out[name] = [...tags];
    for (const [name, tags] of localNames) out[name] = [...new Set([...(out[name] ?? []), ...tags])].sort();
    return out;
  }

  /** Called when a local registration changes, since the catalog overlays local names. */
  catalogLocalChanged(): void {
    this.#catalog.modifyIndex = ++this.#index;
    this.#catalogChanged.wake();
  }

  // ---- waiting ----------------------------------------------------------------------------------

  /**
   * Resolves when `service` changes, after `timeoutMs`, or on abort — whichever comes first.
   * Never rejects.
   */
  waitForChange(service: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    let changes = this.#waiters.get(service);
    if (changes === undefined) {
      changes = new ChangeSignal();
      this.#waiters.set(service, changes);
    }
    const own = changes;
    return own.wait(timeoutMs, signal, () => {
      if (own.waiting === 0 && this.#waiters.get(service) === own) this.#waiters.delete(service);
    });
  }

  /** Like {@link waitForChange} for the catalog (pushed names, or a local registration). */
  waitForCatalogChange(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.#catalogChanged.wait(timeoutMs, signal);
  }

  #bump(service: string, s: WatchedService): void {
    s.modifyIndex = ++this.#index;
    this.#hooks.onChanged(service);
    this.#waiters.get(service)?.wake();
  }
}
