/**
 * The agent's own status answers: `/v1/meshreg/health` (is the upstream link up) and
 * `/v1/meshreg/sync-status` (which registrations the control plane has confirmed, which removals are
 * pending, which services are watched and at which version).
 */
import type { LocalServices } from './local/local-services.js';
import type { AgentSync } from './upstream/sync.js';
import type { ServiceView } from './view/service-view.js';

/** `ok` while the session link is open, `degraded` (HTTP 200 still) while serving from cache. */
export function healthView(
  sync: AgentSync,
  local: LocalServices,
  view: ServiceView,
): Record<string, unknown> {
  const up = sync.status();
  return {
    status: up.connected ? 'ok' : 'degraded',
    upstream: {
      state: sync.state,
      connected: up.connected,
      session: up.leader,
      offlineForSec: up.offlineForSec,
    },
    localServices: local.size,
    watchedServices: view.watched().length,
  };
}

/** Every local record with its in-sync flag (and refusal), the tombstones, and the watched services. */
export function syncStatusView(
  sync: AgentSync,
  local: LocalServices,
  view: ServiceView,
): Record<string, unknown> {
  return {
    connected: sync.state === 'open',
    services: local.list().map((r) => {
      const refused = sync.registrationRefusal(r.def.id);
      const base = { ID: r.def.id, Service: r.def.name, Version: r.version, InSync: r.synced };
      return refused === undefined || r.synced ? base : { ...base, Refused: refused };
    }),
    pendingRemovals: local.tombstones().map((t) => ({ ID: t.id, Service: t.service, Version: t.version })),
    watched: view
      .watched()
      .map((w) => ({ Service: w.service, Version: w.version, Complete: w.complete, Received: w.received })),
    counters: sync.counters,
  };
}
