/**
 * The agent's disk copy of every watched service's last view (and the catalog), so discovery keeps
 * working after an agent restart while the control plane is unreachable. Writes are atomic and
 * coalesced (at most one per `minIntervalMs`); a file that does not decode is set aside.
 */
import { readInstance, type Instance } from '../../proto/instance.js';
import type { Logger } from '../../proto/runtime/log.js';
import { Issues, at, isRecord, readArray, readInt, readString } from '../../proto/validate.js';
import { GroupWriter, readJsonFile } from '../local/state-file.js';
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
}

export class ViewCache {
  readonly #writer: GroupWriter;
  readonly #minIntervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #lastWrite = 0;

  constructor(
    private readonly file: string,
    private readonly view: ServiceView,
    private readonly log: Logger,
    minIntervalMs: number,
  ) {
    this.#minIntervalMs = minIntervalMs;
    this.#writer = new GroupWriter(
      file,
      () => this.snapshot(),
      (err) => {
        log.error('could not write the view cache', { file, err });
      },
    );
  }

  /** What is written: every service that has received a view. */
  snapshot(): CachedView {
    const services = this.view
      .watched()
      .filter((s) => s.received)
      .map((s) => ({ service: s.service, version: s.version, instances: [...s.remote.values()] }));
    const c = this.view.catalogState;
    return {
      savedAt: Date.now(),
      services,
      ...(c.received ? { catalog: { version: c.version, services: c.services } } : {}),
    };
  }

  /** Asks for a write soon; bursts of changes become one write. */
  changed(): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#lastWrite + this.#minIntervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#lastWrite = Date.now();
      void this.#writer.write();
    }, wait);
    this.#timer.unref();
  }

  /** Writes now (on shutdown). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#writer.write();
  }

  /** Loads the cached views into the view. A bad file is set aside and logged; the agent goes on. */
  async restore(): Promise<number> {
    const r = await readJsonFile(this.file);
    if (r.kind === 'missing') return 0;
    if (r.kind === 'corrupt') {
      this.log.error('view cache unreadable; set aside, starting without it', {
        file: this.file,
        movedTo: r.movedTo,
        reason: r.reason,
      });
      return 0;
    }
    const decoded = decodeCachedView(r.value);
    if (decoded === undefined) {
      this.log.error('view cache has an unexpected shape; ignoring it', { file: this.file });
      return 0;
    }
    for (const s of decoded.services) this.view.restore(s.service, s.version, s.instances);
    if (decoded.catalog !== undefined)
      this.view.restoreCatalog(decoded.catalog.version, decoded.catalog.services);
    return decoded.services.length;
  }
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
        const service = readString(issues, s['service'], at(p, 'service'), {
          required: true,
          maxLength: 256,
        });
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
  return catalog === undefined ? { savedAt, services } : { savedAt, services, catalog };
}
