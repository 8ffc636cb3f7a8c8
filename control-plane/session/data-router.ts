/**
 * Routes a service key to the data server that leads its slot, by the latest slot table; a key
 * qualified by a federated data center (`web@dc2`) to the store of imported copies, when one is set.
 * That store is not one of {@link DataRouter.servers} (it holds no part of the local catalog).
 */
import { isRemoteKey } from '../../proto/datacenter.js';
import { fail, ok, type Result } from '../../proto/result.js';
import { slotOf, type SlotTable } from '../../proto/slot-table.js';
import { VersionClock } from '../../proto/version.js';
import type { CatalogView, DataApi } from '../link/data-api.js';

export class DataRouter {
  readonly #servers = new Map<string, DataApi>();
  #table: SlotTable | undefined;
  readonly #clock = new VersionClock();
  #catalogParts = '';
  #catalogVersion = 0;
  #imports: DataApi | undefined;

  /** The store of federated copies (qualified keys), or undefined when none is set. */
  get imports(): DataApi | undefined {
    return this.#imports;
  }

  /** Routes qualified keys to `store` from now on. */
  setImports(store: DataApi): void {
    this.#imports = store;
  }

  /** A data server or the import store by its ID. */
  byId(id: string): DataApi | undefined {
    return this.#imports?.id === id ? this.#imports : this.#servers.get(id);
  }

  get epoch(): number {
    return this.#table?.epoch ?? 0;
  }

  addServer(server: DataApi): void {
    this.#servers.set(server.id, server);
  }

  removeServer(id: string): void {
    this.#servers.delete(id);
  }

  servers(): DataApi[] {
    return [...this.#servers.values()];
  }

  /** Applies a table; an older epoch than the one held is ignored. */
  applyTable(table: SlotTable): boolean {
    if (this.#table !== undefined && table.epoch <= this.#table.epoch) return false;
    this.#table = table;
    return true;
  }

  /**
   * The data server leading `key`'s slot (the import store for a qualified key), or `unavailable` while there is none (no table yet, or
   * its leader is not among the servers added): an expected state during start-up and failover.
   */
  forKey(key: string): Result<DataApi> {
    if (isRemoteKey(key))
      return this.#imports === undefined
        ? fail('not_found', `no federated data center for ${key}`)
        : ok(this.#imports);
    const table = this.#table;
    if (table === undefined) return fail('unavailable', 'no slot table yet');
    const slot = table.slots[slotOf(key, table.slotCount)];
    const server = slot === undefined ? undefined : this.#servers.get(slot.leader);
    if (server === undefined) return fail('unavailable', `no data server leads the slot of ${key}`);
    return ok(server);
  }

  /** The catalog merged over every data server (each holds the services of its own slots). */
  async fetchCatalog(): Promise<CatalogView> {
    const parts = await Promise.all(this.servers().map((s) => s.fetchCatalog()));
    const services: Record<string, string[]> = {};
    let complete = true;
    // The merged catalog gets a version of its own, new whenever any part's version moved.
    const partKey = parts.map((p) => p.version).join(',');
    if (partKey !== this.#catalogParts) {
      this.#catalogParts = partKey;
      this.#catalogVersion = this.#clock.next(this.#catalogVersion);
    }
    const version = this.#catalogVersion;
    for (const p of parts) {
      complete &&= p.complete;
      for (const [name, tags] of Object.entries(p.services)) {
        const merged = new Set([...(services[name] ?? []), ...tags]);
        services[name] = [...merged].sort();
      }
    }
    return { version, complete, services };
  }
}
