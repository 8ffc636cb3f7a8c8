/**
 * What this data center learned from its federation peers: one copy per (peer, service), kept apart
 * from the local datums (invariant 8) and served to the session's push path as a {@link DataApi} for
 * qualified keys (`web@dc2`).
 *
 * Each copy carries the version of the data center it came from (one sequence per data center), and
 * a copy is replaced only by a strictly newer version: a late notice or fetch never takes a copy back
 * (invariant 2). A copy is removed only when its peer stops exporting the service, or when the peer
 * leaves the configuration; a lost link keeps every copy (served as the last known, marked stale).
 *
 * Writes through this API are refused: nothing registers into another data center's copy.
 */
import { isRemoteKey, remoteKey, splitKey } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';
import { fail, type Result } from '../../proto/result.js';
import type { UnpublishOutcome } from '../../proto/write-outcomes.js';
import type {
  CatalogView,
  ChangeListener,
  DataApi,
  DataWatch,
  DatumView,
  PublishOutcome,
  SessionWatcher,
} from '../link/data-api.js';

/** The {@link DataApi.id} of the import store (never a data server's ID: those are configured names). */
export const IMPORT_STORE_ID = '@federation-imports';

export class ImportStore implements DataApi {
  readonly id = IMPORT_STORE_ID;
  /** Data center → service → its copy (key: the plain service name, as the peer sent it). */
  readonly #copies = new Map<string, Map<string, DatumView>>();
  readonly #watchers = new Map<string, SessionWatcher>();

  /**
   * Stores `datum` (keyed by its plain service name) as `datacenter`'s copy when its version is newer
   * than the copy held; true when stored. A qualified key is refused: copies are never relayed copies.
   */
  apply(datacenter: string, datum: DatumView): boolean {
    if (isRemoteKey(datum.key)) return false;
    let dc = this.#copies.get(datacenter);
    const held = dc?.get(datum.key);
    if (held !== undefined && datum.version <= held.version) return false;
    if (dc === undefined) {
      dc = new Map();
      this.#copies.set(datacenter, dc);
    }
    dc.set(datum.key, datum);
    this.#notify(remoteKey(datum.key, datacenter), datum.version);
    return true;
  }

  /** The version of `datacenter`'s copy of `service` (0: none). */
  version(datacenter: string, service: string): number {
    return this.#copies.get(datacenter)?.get(service)?.version ?? 0;
  }

  /** The services copied from `datacenter`, with their instance counts. */
  services(datacenter: string): ReadonlyMap<string, DatumView> {
    return this.#copies.get(datacenter) ?? new Map<string, DatumView>();
  }

  /**
   * Removes `datacenter`'s copy of each of `services` (no longer exported to us); returns those it
   * held. Their subscribers are told by the session (`refused`), not by a push: an empty push would
   * read as every instance deregistered.
   */
  drop(datacenter: string, services: Iterable<string>): string[] {
    const dc = this.#copies.get(datacenter);
    const dropped: string[] = [];
    if (dc === undefined) return dropped;
    for (const s of services) {
      const held = dc.get(s);
      if (held === undefined) continue;
      dc.delete(s);
      dropped.push(s);
    }
    if (dc.size === 0) this.#copies.delete(datacenter);
    return dropped;
  }

  /** Forgets every copy of `datacenter` (it left the configuration). */
  dropPeer(datacenter: string): string[] {
    return this.drop(datacenter, [...(this.#copies.get(datacenter)?.keys() ?? [])]);
  }

  // ---- DataApi --------------------------------------------------------------------------------

  publish(): Promise<Result<readonly PublishOutcome[]>> {
    return Promise.resolve(fail('forbidden', 'another data center’s copy cannot be written'));
  }

  unpublish(): Promise<Result<readonly UnpublishOutcome[]>> {
    return Promise.resolve(fail('forbidden', 'another data center’s copy cannot be written'));
  }

  dropOwner(): Promise<void> {
    return Promise.reject(new MeshregError('forbidden', 'another data center’s copy cannot be written'));
  }

  /**
   * `service@dc`'s copy, keyed by the qualified key. None held: version 0, incomplete, no instances
   * (an incomplete empty datum never shrinks what a subscriber holds).
   */
  fetch(key: string): Promise<DatumView> {
    const { service, datacenter } = splitKey(key);
    const held = datacenter === undefined ? undefined : this.#copies.get(datacenter)?.get(service);
    return Promise.resolve(
      held === undefined
        ? { key, version: 0, complete: false, instances: [] }
        : { key, version: held.version, complete: held.complete, instances: held.instances },
    );
  }

  fetchCatalog(): Promise<CatalogView> {
    return Promise.resolve({ version: 0, complete: true, services: {} });
  }

  versions(keys: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const out = new Map<string, number>();
    for (const key of keys) {
      const { service, datacenter } = splitKey(key);
      if (datacenter !== undefined) out.set(key, this.version(datacenter, service));
    }
    return Promise.resolve(out);
  }

  watch(sessionId: string, listener: ChangeListener): DataWatch {
    const w: SessionWatcher = { listener, keys: new Set(), catalog: false };
    this.#watchers.set(sessionId, w);
    return {
      interest: (key, on) => {
        if (on) w.keys.add(key);
        else w.keys.delete(key);
      },
      catalogInterest: () => undefined,
      close: () => {
        if (this.#watchers.get(sessionId) === w) this.#watchers.delete(sessionId);
      },
    };
  }

  #notify(key: string, version: number): void {
    for (const w of this.#watchers.values()) if (w.keys.has(key)) w.listener.onChange([{ key, version }]);
  }
}
