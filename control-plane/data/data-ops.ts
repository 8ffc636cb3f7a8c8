/**
 * The data role's metrics and admin routes: what a data server holds, per slot state, and a
 * service's datum as this replica sees it (the CLI asks every replica and compares).
 */
import { SpanKind } from '@opentelemetry/api';
import type { PublishParams } from '../../proto/data-link.js';
import { MeshregError } from '../../proto/errors.js';
import { SERVICE_NAME_PATTERN } from '../../proto/instance.js';
import { contextFrom, observeGauges, traceparentOfSpan, tracer } from '../../proto/runtime/telemetry.js';
import type { AdminRoute } from '../admin/ops-http.js';
import type { Ok } from '../../proto/result.js';
import type { PublishOutcome } from '../../proto/write-outcomes.js';
import type { DataServer } from './data-server.js';

/**
 * A session's publish as one `data.publish` span, a child of the session's span; the changes it
 * causes carry this span's context on to the push.
 */
export async function tracedPublish(server: DataServer, p: PublishParams): Promise<Ok<PublishOutcome[]>> {
  const span = tracer().startSpan(
    'data.publish',
    { kind: SpanKind.SERVER, attributes: { 'meshreg.items': p.items.length, 'meshreg.data_id': server.id } },
    contextFrom(p.traceparent),
  );
  try {
    return await server.publish(p.owner, p.items, p.epoch, traceparentOfSpan(span));
  } finally {
    span.end();
  }
}

/** Registers the data server's gauges; returns their unregistration. */
export function registerDataMetrics(
  server: DataServer,
  extra: () => { sessions: number; publishes: number },
): () => void {
  const stat = (k: string): number => Number(server.stats()[k] ?? 0);
  return observeGauges(
    [
      {
        name: 'meshreg.data.datums',
        description: 'Datums held (led and followed slots)',
        read: (o) => o(stat('datums')),
      },
      { name: 'meshreg.data.publishers', description: 'Publishers held', read: (o) => o(stat('publishers')) },
      {
        name: 'meshreg.data.tombstones',
        description: 'Unpublished registrations remembered so that older publishes cannot bring them back',
        read: (o) => o(stat('tombstones')),
      },
      {
        name: 'meshreg.data.slots',
        description: 'Slots of this server by state',
        read: (o) => {
          o(stat('leading'), { state: 'leading' });
          o(stat('migrating'), { state: 'migrating' });
          o(stat('following'), { state: 'following' });
        },
      },
      {
        name: 'meshreg.data.sessions',
        description: 'Session servers linked',
        read: (o) => o(extra().sessions),
      },
      {
        name: 'meshreg.data.publishes',
        description: 'Publishers written by sessions',
        counter: true,
        read: (o) => o(extra().publishes),
      },
      {
        name: 'meshreg.slot_table.epoch',
        description: 'Epoch of the slot table in use',
        read: (o) => o(server.epoch),
      },
    ],
    { role: 'data', data_id: server.id },
  );
}

/** `GET /admin/datums/:service`: this replica's datum of a service. */
export function dataAdminRoutes(server: DataServer, health: () => Record<string, unknown>): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/admin/datums/:service',
      handler: (req) => {
        const service = req.params['service'] ?? '';
        if (!SERVICE_NAME_PATTERN.test(service) || service.length > 256)
          throw new MeshregError('invalid_argument', `service: must be a service name, got "${service}"`, {
            fields: [{ path: 'service', message: 'must be a service name' }],
          });
        return { status: 200, body: server.replicaOf(service) };
      },
    },
    { method: 'GET', path: '/admin/status', handler: () => ({ status: 200, body: health() }) },
  ];
}
