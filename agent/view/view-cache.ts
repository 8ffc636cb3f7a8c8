/**
 * The agent's disk copy of every watched service's last view (and the catalog), so discovery keeps
 * working after an agent restart while the control plane is unreachable. It is a {@link StateLog}
 * with one entry per service (`v/<name>`, `v/<name>@<dc>` for a federated copy), one for the catalog
 * and one for the federated data centers last reported (so an agent that starts offline still
 * knows its peers and answers `?dc=` from their cached copies): a push rewrites only the services
 * it changed, and changes are coalesced (at most one append per `minIntervalMs`). A cache need not
 * survive a power cut, so appends are not fsynced; compactions are atomic. Damaged lines are set
 * aside and the rest is kept.
 */
import { WATCH_KEY_RULES, readDatacenter } from '../../proto/datacenter.js';
import { readInstance, type Instance } from '../../proto/instance.js';
import type { Logger } from '../../proto/runtime/log.js';
import { Issues, at, isRecord, readArray, readInt, readString } from '../../proto/validate.js';
import { StateLog, loadStateLog } from '../local/state-log.js';
import type { FederationView, SavedFederation } from '../federation-view.js';
import type { ServiceView } from './service-view.js';

export interface CachedService {
  readonly service: string;
  readonly version: number;
  readonly instances: readonly Instance[];
}

export interface CachedView {
  readonly savedAt: number;
  readonly services: readonly CachedService[];
  readonly catalog?: {
    readonly version: number;
    readonly services: Readonly<Record<string, readonly string[]>>;
  };
  readonly federation?: SavedFederation;
}

export class ViewCache {
  readonly #log: StateLog;
  readonly #minIntervalMs: number;
  readonly #dirty = new Set<string>();
  #catalogDirty = false;
  #federationDirty = false;
  #timer: NodeJS.Timeout | undefined;
  #lastWrite = 0;

  constructor(
    private readonly file: string,
    private readonly view: ServiceView,
    private readonly log: Logger,
    minIntervalMs: number,
    private readonly federation?: FederationView,
  ) {
    this.#minIntervalMs = minIntervalMs;
    this.#log = new StateLog(file, {
      entries: () => this.#entries(),
      durable: false,
      onError: (err) => {
        log.error('could not write the view cache', { file, err });
      },
    });
  }

  /** What a compaction writes: every service that has received a view, and the catalog. */
  snapshot(): CachedView {
    const services: CachedService[] = [];
    for (const s of this.view.watched()) {
      const entry = this.#entry(s.service);
      if (entry !== undefined) services.push(entry);
    }
    const c = this.view.catalogState;
    return {
      savedAt: Date.now(),
      services,
      ...(c.received ? { catalog: { version: c.version, services: c.services } } : {}),
      ...(this.federation === undefined ? {} : { federation: this.federation.toSaved() }),
    };
  }

  /** Asks for the federated data centers to be written soon (after a `datacenters` frame). */
  federationChanged(): void {
    this.#federationDirty = true;
    this.changed();
  }

  /** Asks for `service` (or, without a name, the catalog) to be written soon; bursts become one write. */
  changed(service?: string): void {
    if (service === undefined) this.#catalogDirty = true;
    else this.#dirty.add(service);
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#lastWrite + this.#minIntervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#lastWrite = Date.now();
      this.#putDirty();
    }, wait);
    this.#timer.unref();
  }

  /** Writes now (on shutdown). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#putDirty();
    await this.#log.close();
  }

  /** Loads the cached views into the view. Damaged lines are set aside and logged; the agent goes on. */
  async restore(): Promise<number> {
    const r = await loadStateLog(this.file);
    if (r.kind === 'missing') return 0;
    if (r.kind === 'unreadable' || r.badLines > 0) {
      this.log.error('view cache unreadable; set aside, starting without it', {
        file: this.file,
        ...(r.kind === 'unreadable' ? { reason: r.reason } : { movedTo: r.movedTo, lines: r.badLines }),
      });
    }
    const decoded = r.kind === 'ok' ? decodeCachedView(fromEntries(r.entries)) : undefined;
    if (decoded !== undefined) {
      for (const s of decoded.services) this.view.restore(s.service, s.version, s.instances);
      if (decoded.catalog !== undefined)
        this.view.restoreCatalog(decoded.catalog.version, decoded.catalog.services);
      if (decoded.federation !== undefined) this.federation?.restore(decoded.federation);
    }
    // Starts from what was restored: compact, and without the damaged or torn lines.
    await this.#log.compact();
    return decoded?.services.length ?? 0;
  }

  #putDirty(): void {
    for (const service of this.#dirty) this.#log.put(`v/${service}`, this.#entry(service));
    this.#dirty.clear();
    if (this.#catalogDirty) {
      this.#catalogDirty = false;
      const c = this.view.catalogState;
      if (c.received) this.#log.put(CATALOG_KEY, { version: c.version, services: c.services });
    }
    if (this.#federationDirty && this.federation !== undefined) {
      this.#federationDirty = false;
      this.#log.put(FEDERATION_KEY, this.federation.toSaved());
    }
  }

  #entry(service: string): CachedService | undefined {
    const s = this.view.get(service);
    if (s?.received !== true) return undefined;
    return { service, version: s.version, instances: [...s.remote.values()] };
  }

  *#entries(): Iterable<readonly [string, unknown]> {
    const snap = this.snapshot();
    for (const s of snap.services) yield [`v/${s.service}`, s];
    if (snap.catalog !== undefined) yield [CATALOG_KEY, snap.catalog];
    if (snap.federation !== undefined) yield [FEDERATION_KEY, snap.federation];
  }
}

const CATALOG_KEY = 'catalog';
const FEDERATION_KEY = 'federation';

/** The {@link CachedView} shape of a replayed cache log, for {@link decodeCachedView}. */
function fromEntries(entries: ReadonlyMap<string, unknown>): unknown {
  const services: unknown[] = [];
  for (const [key, value] of entries) if (key.startsWith('v/')) services.push(value);
  const catalog = entries.get(CATALOG_KEY);
  const federation = entries.get(FEDERATION_KEY);
  return {
    savedAt: 0,
    services,
    ...(catalog === undefined ? {} : { catalog }),
    ...(federation === undefined ? {} : { federation }),
  };
}

/** Validates a cache file; entries that do not decode are dropped, the rest is kept. */
export function decodeCachedView(raw: unknown): CachedView | undefined {
  if (!isRecord(raw)) return undefined;
  const issues = new Issues();
  const savedAt = readInt(issues, raw['savedAt'], 'savedAt', { required: true }) ?? 0;
  const services =
    readArray(
      issues,
      raw['services'],
      'services',
      (s, p) => {
        if (!isRecord(s)) return undefined;
        const service = readString(issues, s['service'], at(p, 'service'), WATCH_KEY_RULES);
        const version = readInt(issues, s['version'], at(p, 'version'), { required: true });
        const instances = readArray(
          issues,
          s['instances'],
          at(p, 'instances'),
          (i, ip) => readInstance(issues, i, ip),
          { maxItems: 10_000_000 },
        );
        if (service === undefined || version === undefined || instances === undefined) return undefined;
        return { service, version, instances };
      },
      { maxItems: 1_000_000 },
    ) ?? [];
  let catalog: CachedView['catalog'];
  const c = raw['catalog'];
  if (isRecord(c) && isRecord(c['services'])) {
    const version = readInt(issues, c['version'], 'catalog.version', { required: true });
    const names: Record<string, string[]> = {};
    for (const [name, tags] of Object.entries(c['services'])) {
      if (Array.isArray(tags) && tags.every((t) => typeof t === 'string')) names[name] = tags;
    }
    if (version !== undefined) catalog = { version, services: names };
  }
  const federation = decodeSavedFederation(raw['federation']);
  return {
    savedAt,
    services,
    ...(catalog === undefined ? {} : { catalog }),
    ...(federation === undefined ? {} : { federation }),
  };
}

/** Most federated peers kept on disk, and most exported names per peer (as the frame allows). */
const MAX_SAVED_PEERS = 64;
const MAX_SAVED_PEER_SERVICES = 10_000;

/** The saved federation, or undefined when absent or damaged (the agent then waits for a frame). */
function decodeSavedFederation(raw: unknown): SavedFederation | undefined {
  if (!isRecord(raw)) return undefined;
  const issues = new Issues();
  const peers = readArray(
    issues,
    raw['peers'],
    'federation.peers',
    (p, path) => {
      if (!isRecord(p)) return undefined;
      const name = readDatacenter(issues, p['name'], at(path, 'name'), true);
      const syncedAt =
        p['syncedAt'] === null
          ? null
          : readInt(issues, p['syncedAt'], at(path, 'syncedAt'), { required: true });
      const services = readArray(
        issues,
        p['services'],
        at(path, 'services'),
        (n, np) => readString(issues, n, np, { required: true, maxLength: 256 }),
        { maxItems: MAX_SAVED_PEER_SERVICES },
      );
      if (name === undefined || syncedAt === undefined || services === undefined) return undefined;
      return { name, syncedAt, services };
    },
    { maxItems: MAX_SAVED_PEERS },
  );
  return peers === undefined || !issues.empty ? undefined : { peers };
}
