/**
 * The agent's own status answers: `/v1/meshreg/health` (is the upstream link up, or why the control
 * plane refused this agent) and `/v1/meshreg/sync-status` (which registrations the control plane has
 * confirmed, which removals are pending, which services are watched and at which version, and the
 * federated data centers with how stale their copies are).
 */
import { splitKey } from '../proto/datacenter.js';
import type { FederationView, PeerState } from './federation-view.js';
import type { LocalServices } from './local/local-services.js';
import type { AgentSync } from './upstream/sync.js';
import type { ServiceView } from './view/service-view.js';

/** A peer as the status answers show it: stale while its link is down, with the age of its last sync. */
function peerStatus(p: PeerState, agentOnline: boolean, now: number): Record<string, unknown> {
  return {
    name: p.name,
    linked: p.linked,
    stale: !p.linked || !agentOnline,
    lastSyncAgeSec: p.syncedAt === undefined ? null : Math.max(0, Math.floor((now - p.syncedAt) / 1000)),
    services: [...p.services].sort(),
  };
}

/**
 * `ok` while the session link is open, `degraded` (HTTP 200 still) while serving from cache; a
 * refusal that retrying cannot cure (4015: the session is of another data center) is named.
 */
export function healthView(
  sync: AgentSync,
  local: LocalServices,
  view: ServiceView,
  federation?: FederationView,
): Record<string, unknown> {
  const up = sync.status();
  const refused = sync.fatalClose;
  const now = Date.now();
  return {
    status: up.connected ? 'ok' : 'degraded',
    upstream: {
      state: sync.state,
      connected: up.connected,
      session: up.leader,
      offlineForSec: up.offlineForSec,
      ...(refused === undefined
        ? {}
        : { refused: { code: refused.code, reason: refused.reason, session: refused.url } }),
    },
    localServices: local.size,
    watchedServices: view.watched().length,
    ...(federation === undefined
      ? {}
      : {
          datacenter: federation.local,
          peers: federation.peers().map((p) => peerStatus(p, up.connected, now)),
        }),
  };
}

/** Every local record with its in-sync flag (and refusal), the tombstones, and the watched services. */
export function syncStatusView(
  sync: AgentSync,
  local: LocalServices,
  view: ServiceView,
  federation?: FederationView,
): Record<string, unknown> {
  const online = sync.state === 'open';
  const now = Date.now();
  const datacenterOf = (key: string): string => splitKey(key).datacenter ?? federation?.local ?? '';
  const stale = (key: string): boolean => {
    const dc = splitKey(key).datacenter;
    return !online || (dc !== undefined && federation?.peer(dc)?.linked !== true);
  };
  return {
    connected: online,
    services: local.list().map((r) => {
      const refused = sync.registrationRefusal(r.def.id);
      const base = { ID: r.def.id, Service: r.def.name, Version: r.version, InSync: r.synced };
      return refused === undefined || r.synced ? base : { ...base, Refused: refused };
    }),
    pendingRemovals: local.tombstones().map((t) => ({ ID: t.id, Service: t.service, Version: t.version })),
    watched: view.watched().map((w) => ({
      Service: w.service,
      Datacenter: datacenterOf(w.service),
      Version: w.version,
      Complete: w.complete,
      Received: w.received,
      Stale: stale(w.service),
    })),
    counters: sync.counters,
    ...(federation === undefined
      ? {}
      : {
          datacenters: {
            local: federation.local,
            peers: federation.peers().map((p) => peerStatus(p, online, now)),
          },
        }),
  };
}
