/**
 * A data server: holds the datums of the slots it leads and notifies interested sessions of changes.
 *
 * After it starts it is *warming* for a configurable time: agents are still re-sending what they
 * hold, so what it serves may be missing instances. Everything it serves meanwhile is marked
 * incomplete (subscribers merge rather than replace), and when warming ends every datum gets a new
 * version so that subscribers receive one complete, authoritative push.
 */
import type { Logger } from '../../proto/log.js';
import { VersionClock } from '../../proto/version.js';
import { DatumStore, type PublishOutcome } from './datum-store.js';
import type {
  CatalogView,
  ChangeListener,
  DataApi,
  DataWatch,
  DatumChange,
  DatumView,
  PublishItem,
  UnpublishItem,
} from './data-api.js';

export interface DataServerOptions {
  readonly id: string;
  /** How long after start served datums are marked incomplete. */
  readonly warmupMs: number;
  /** How long catalog changes are gathered before one catalog notification. */
  readonly catalogDebounceMs: number;
  readonly logger: Logger;
  readonly clock?: VersionClock;
}

interface Watcher {
  readonly listener: ChangeListener;
  readonly keys: Set<string>;
  catalog: boolean;
}

export class DataServer implements DataApi {
  readonly id: string;
  readonly #store: DatumStore;
  readonly #clock: VersionClock;
  readonly #log: Logger;
  readonly #watchers = new Map<string, Watcher>();
  readonly #pending = new Map<string, number>();
  #flushScheduled = false;
  #warming: boolean;
  #warmTimer: NodeJS.Timeout | undefined;
  #catalog: CatalogView;
  #catalogJson = '{}';
  #catalogTimer: NodeJS.Timeout | undefined;
  readonly #catalogDebounceMs: number;

  constructor(opts: DataServerOptions) {
    this.id = opts.id;
    this.#clock = opts.clock ?? new VersionClock();
    this.#store = new DatumStore(this.#clock);
    this.#log = opts.logger.child({ role: 'data', dataId: opts.id });
    this.#catalogDebounceMs = opts.catalogDebounceMs;
    this.#warming = opts.warmupMs > 0;
    this.#catalog = { version: this.#clock.next(), complete: !this.#warming, services: {} };
    if (this.#warming) {
      this.#warmTimer = setTimeout(() => {
        this.#endWarmup();
      }, opts.warmupMs);
      this.#warmTimer.unref();
    }
  }

  get warming(): boolean {
    return this.#warming;
  }

  stats(): { datums: number; publishers: number; sessions: number; warming: boolean } {
    return {
      datums: this.#store.size,
      publishers: this.#store.publisherCount(),
      sessions: this.#watchers.size,
      warming: this.#warming,
    };
  }

  publish(owner: string, items: readonly PublishItem[]): Promise<PublishOutcome[]> {
    const outcomes = items.map((item) => {
      const outcome = this.#store.publish({ ...item, owner });
      if (outcome === 'applied') this.#changed(item.instance.service);
      return outcome;
    });
    return Promise.resolve(outcomes);
  }

  unpublish(items: readonly UnpublishItem[]): Promise<void> {
    for (const item of items) {
      if (this.#store.unpublish(item.key, item.registrationId, item.version)) this.#changed(item.key);
    }
    return Promise.resolve();
  }

  dropOwner(owner: string): Promise<void> {
    const keys = this.#store.dropOwner(owner);
    if (keys.length > 0)
      this.#log.info('dropped publishers of a closed connection', { owner, services: keys.length });
    for (const key of keys) this.#changed(key);
    return Promise.resolve();
  }

  fetch(key: string): Promise<DatumView> {
    const s = this.#store.get(key);
    return Promise.resolve({
      key: s.key,
      version: s.version,
      complete: !this.#warming,
      instances: s.instances,
    });
  }

  fetchCatalog(): Promise<CatalogView> {
    // A fetch between a change and its debounced notification must not serve the old list.
    if (this.#catalogTimer !== undefined) this.#recomputeCatalog(false);
    return Promise.resolve(this.#catalog);
  }

  versions(keys: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const out = new Map<string, number>();
    for (const k of keys) out.set(k, this.#store.version(k) ?? this.#store.get(k).version);
    return Promise.resolve(out);
  }

  watch(sessionId: string, listener: ChangeListener): DataWatch {
    const w: Watcher = { listener, keys: new Set(), catalog: false };
    this.#watchers.set(sessionId, w);
    return {
      interest: (key, on) => {
        if (on) w.keys.add(key);
        else w.keys.delete(key);
      },
      catalogInterest: (on) => {
        w.catalog = on;
      },
      close: () => {
        if (this.#watchers.get(sessionId) === w) this.#watchers.delete(sessionId);
      },
    };
  }

  close(): void {
    clearTimeout(this.#warmTimer);
    clearTimeout(this.#catalogTimer);
    this.#watchers.clear();
  }

  #endWarmup(): void {
    this.#warming = false;
    const keys = this.#store.bumpAll();
    this.#log.info('warm-up over: datums are now authoritative', { datums: keys.length });
    for (const key of keys) this.#changed(key);
    this.#recomputeCatalog(true);
  }

  #changed(key: string): void {
    const version = this.#store.version(key);
    if (version === undefined) return;
    this.#pending.set(key, version);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Notifications raised in one turn of the event loop go out together.
      setImmediate(() => {
        this.#flush();
      });
    }
    if (this.#catalogTimer === undefined) {
      this.#catalogTimer = setTimeout(() => {
        this.#catalogTimer = undefined;
        this.#recomputeCatalog(false);
      }, this.#catalogDebounceMs);
      this.#catalogTimer.unref();
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.size === 0) return;
    const changes: DatumChange[] = [...this.#pending].map(([key, version]) => ({ key, version }));
    this.#pending.clear();
    for (const w of this.#watchers.values()) {
      const mine = changes.filter((c) => w.keys.has(c.key));
      if (mine.length > 0) w.listener.onChange(mine);
    }
  }

  #recomputeCatalog(force: boolean): void {
    const services = this.#store.catalog();
    const json = JSON.stringify(services);
    if (!force && json === this.#catalogJson && this.#catalog.complete === !this.#warming) return;
    this.#catalogJson = json;
    this.#catalog = { version: this.#clock.next(this.#catalog.version), complete: !this.#warming, services };
    for (const w of this.#watchers.values()) if (w.catalog) w.listener.onCatalogChange(this.#catalog.version);
  }
}
