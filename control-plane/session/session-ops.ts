/**
 * The session role's admin routes (its agent connections and the switches in force) and its
 * metrics, read from its counters when collected (nothing is counted twice on the hot path).
 * Metric names are listed in the README.
 */
import type { AdminConnection, AdminConnections } from '../../proto/admin-api.js';
import { observeGauges } from '../../proto/runtime/telemetry.js';
import type { Switches } from '../../proto/switches.js';
import type { AdminRoute } from '../admin/ops-http.js';
import type { PushStats } from './push-dispatcher.js';

/** What the routes need of the session. */
export interface SessionAdminHost {
  readonly sessionId: string;
  /** The open agent connections. */
  connections(): AdminConnection[];
  readonly switches: Switches;
}

/** `GET /admin/connections` and `GET /admin/switches` of a session. */
export function sessionAdminRoutes(server: SessionAdminHost): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/admin/connections',
      handler: () => ({
        status: 200,
        body: { sessionId: server.sessionId, connections: server.connections() } satisfies AdminConnections,
      }),
    },
    { method: 'GET', path: '/admin/switches', handler: () => ({ status: 200, body: server.switches }) },
  ];
}

/** A snapshot of what the session counts. */
export interface SessionCounts {
  readonly connections: number;
  readonly subscriptions: number;
  readonly push: PushStats;
  readonly unacknowledged: number;
  readonly epoch: number;
  readonly pushStopped: boolean;
  readonly writes: { publishers: number; pendingWrites: number; connectionsInGrace: number };
  readonly publishes: number;
  readonly refusals: number;
}

/** Registers the session gauges and counters; returns their unregistration. */
export function registerSessionMetrics(sessionId: string, read: () => SessionCounts): () => void {
  const g = (name: string, description: string, pick: (c: SessionCounts) => number, counter = false) => ({
    name,
    description,
    counter,
    read: (observe: (v: number) => void) => {
      observe(pick(read()));
    },
  });
  return observeGauges(
    [
      g('meshreg.session.connections', 'Open agent connections', (c) => c.connections),
      g(
        'meshreg.session.publishers',
        'Publishers held for open and recently closed connections',
        (c) => c.writes.publishers,
      ),
      g('meshreg.session.subscriptions', 'Subscriptions of open connections', (c) => c.subscriptions),
      g('meshreg.session.pending_writes', 'Writes waiting for a slot leader', (c) => c.writes.pendingWrites),
      g('meshreg.session.publishes', 'Registrations accepted from agents', (c) => c.publishes, true),
      g('meshreg.session.refusals', 'Registrations refused by a switch', (c) => c.refusals, true),
      g('meshreg.push.sent', 'Push frames written to agents', (c) => c.push.pushes, true),
      g(
        'meshreg.push.retried',
        'Push frames re-sent after an acknowledgement timeout',
        (c) => c.push.retries,
        true,
      ),
      g('meshreg.push.failed', 'Pushes never acknowledged (connection closed)', (c) => c.push.failures, true),
      g('meshreg.push.pending', 'Pushes sent and not yet acknowledged', (c) => c.unacknowledged),
      g('meshreg.push.stopped', '1 while pushes are stopped by the operator switch', (c) =>
        c.pushStopped ? 1 : 0,
      ),
      g('meshreg.slot_table.epoch', 'Epoch of the slot table in use', (c) => c.epoch),
    ],
    { role: 'session', session_id: sessionId },
  );
}
