/**
 * What a data server tells meta's console: a row per service in the slots it leads (instances by
 * health, zones, tags), one service's datum, the slots it is still taking over, and a version that
 * changes whenever one of its datums does (meta's signal that the service list changed).
 */
import type { ConsoleServiceRow } from '../../proto/console.js';
import { CONSOLE_LINK, type DataConsoleSummary } from '../../proto/console-link.js';
import type { Instance } from '../../proto/instance.js';
import type { DataServer } from '../data/data-server.js';
import type { ProtectionHost } from '../link/protection-ops.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import type { ErrorRing } from './error-ring.js';

/** The keys of the slots `server` leads (migrating ones included). */
function ledKeys(server: DataServer): string[] {
  const leads = (slot: number): boolean => {
    const s = server.slotState(slot);
    return s === 'ready' || s === 'migrating';
  };
  return Object.keys(server.store.catalog(leads));
}

/** One service's row, from its instances. */
export function serviceRow(name: string, instances: readonly Instance[]): ConsoleServiceRow {
  const zones = new Set<string>();
  const tags = new Set<string>();
  const n = { passing: 0, warning: 0, critical: 0, draining: 0 };
  for (const i of instances) {
    n[i.health]++;
    if (i.draining === true) n.draining++;
    if (i.zone !== '') zones.add(i.zone);
    for (const t of i.tags) tags.add(t);
  }
  return { name, instances: instances.length, ...n, zones: [...zones].sort(), tags: [...tags].sort() };
}

/** Serves the console's calls on the meta link of a data server. */
export function serveDataConsole(
  peer: RpcPeer,
  server: DataServer,
  errors: ErrorRing,
  protection: ProtectionHost,
): void {
  peer.handle(CONSOLE_LINK.dataSummary, (): DataConsoleSummary => {
    const migrating: number[] = [];
    for (let s = 0; s < server.store.slotCount; s++)
      if (server.slotState(s) === 'migrating') migrating.push(s);
    const keys = ledKeys(server);
    let sum = 0;
    for (const k of keys) sum += server.store.readVersion(k);
    const status = protection.protection.status();
    return {
      dataId: server.id,
      migrating,
      servicesVersion: `${server.epoch}.${keys.length}.${sum}`,
      errors: errors.recent(),
      protection: { role: 'data', id: server.id, active: status.active, held: status.held.length },
    };
  });
  peer.handlePaged(CONSOLE_LINK.services, () =>
    ledKeys(server).map((k) => serviceRow(k, server.drained.mark(server.store.get(k).instances))),
  );
  peer.on(CONSOLE_LINK.drained, (ev) => {
    server.applyDrained(ev);
  });
  peer.handle(CONSOLE_LINK.datum, async ({ service }) => {
    const d = await server.fetch(service);
    return { version: d.version, instances: d.instances };
  });
}
