/**
 * The console's admin routes on meta: the aggregated reads (`loopback-read`: the console reads them
 * without a token from loopback), the node and instance drains (write token and a reason), and the
 * audit wrapper put around every write route meta already had.
 */
import { MeshregError } from '../../proto/errors.js';
import { describe, isRecord, type Decoded } from '../../proto/validate.js';
import type { AdminRequest, AdminRoute } from '../admin/ops-http.js';
import { audited, listTarget, type AuditSpec } from './audit-log.js';
import { intParam, readAgentQuery, readServiceQuery } from './console-query.js';
import { decodeInstanceDrain, decodeNodeDrain } from './drained.js';
import type { MetaConsole } from './meta-console.js';

function body<T>(d: Decoded<T>): T {
  if (!d.ok) throw new MeshregError('invalid_argument', describe(d.errors), { fields: d.errors });
  return d.value;
}

/** What each of meta's write routes is recorded as (by `METHOD path` where one path has several writes). */
const WRITE_AUDIT: Readonly<Record<string, AuditSpec>> = {
  '/admin/switches/push': {
    action: (req) => (isRecord(req.body) && req.body['stopped'] === true ? 'push.stop' : 'push.resume'),
    target: (req) => {
      const b = req.body;
      return isRecord(b) && Array.isArray(b['allow']) ? `allow=${(b['allow'] as unknown[]).join(',')}` : '';
    },
  },
  '/admin/switches/client-off': { action: 'client-off.edit', target: listTarget },
  '/admin/switches/publish-blacklist': { action: 'publish-blacklist.edit', target: listTarget },
  '/admin/switches/subscribe-blacklist': { action: 'subscribe-blacklist.edit', target: listTarget },
  '/admin/members/:id/drain': { action: 'member.drain', target: (req) => req.params['id'] ?? '' },
  '/admin/protection/release': { action: 'protection.release', target: () => 'meta' },
  '/admin/federation/exports': {
    action: 'federation.exports.edit',
    target: (req) => {
      const b = req.body;
      return isRecord(b) && typeof b['peer'] === 'string'
        ? `${b['peer']}: ${listTarget(req)}`
        : listTarget(req);
    },
  },
  'PUT /admin/federation/peers/:name': {
    action: 'federation.peer.put',
    target: (req) => req.params['name'] ?? '',
  },
  'DELETE /admin/federation/peers/:name': {
    action: 'federation.peer.remove',
    target: (req) => req.params['name'] ?? '',
  },
};

/** `routes` with every write (non-GET) recorded in the audit log. */
export function withAudit(console: MetaConsole, routes: readonly AdminRoute[]): AdminRoute[] {
  return routes.map((r) => {
    if (r.method === 'GET') return r;
    const spec = WRITE_AUDIT[`${r.method} ${r.path}`] ??
      WRITE_AUDIT[r.path] ?? { action: `${r.method} ${r.path}`, target: () => '' };
    return audited(console.audit, r, spec);
  });
}

/** The console's own routes. */
export function consoleRoutes(console: MetaConsole): AdminRoute[] {
  const read = (path: string, handler: AdminRoute['handler']): AdminRoute => ({
    method: 'GET',
    path,
    access: 'loopback-read',
    handler,
  });
  return [
    read('/admin/console/overview', async (req) => ({
      status: 200,
      body: await console.overview(req.caller),
    })),
    read('/admin/console/services', async (req) => ({
      status: 200,
      body: await console.services(readServiceQuery(req.query)),
    })),
    read('/admin/console/services/:name', async (req) => ({
      status: 200,
      body: await console.service(req.params['name'] ?? ''),
    })),
    read('/admin/console/agents', async (req) => ({
      status: 200,
      body: await console.agents(readAgentQuery(req.query)),
    })),
    read('/admin/console/audit', (req) => ({
      status: 200,
      body: console.audit.view(intParam(req.query, 'limit', 1, 10_000, 200)),
    })),
    drainRoute(console, 'node', (b) =>
      console.drained.set(body(decodeNodeDrain(b)).node, undefined, drainedIn(b)),
    ),
    drainRoute(console, 'instance', (b) => {
      const d = body(decodeInstanceDrain(b));
      return console.drained.set(d.node, d.id, drainedIn(b));
    }),
  ];
}

/** `POST /admin/console/drain/<what>`: a write, its reason required, audited as `<what>.drain`. */
function drainRoute(
  console: MetaConsole,
  what: 'node' | 'instance',
  apply: (body: unknown) => unknown,
): AdminRoute {
  const route: AdminRoute = {
    method: 'POST',
    path: `/admin/console/drain/${what}`,
    access: 'write',
    handler: (req) => ({ status: 200, body: apply(req.body) }),
  };
  return audited(console.audit, route, { action: `${what}.drain`, target: nodeTarget, reasonRequired: true });
}

/** The body's `drained`: false restores, anything else drains. */
function drainedIn(b: unknown): boolean {
  return !(isRecord(b) && b['drained'] === false);
}

/** `node` or `node/id`, with `(restore)` when the body takes it out of the drained set. */
function nodeTarget(req: AdminRequest): string {
  const b = req.body;
  if (!isRecord(b)) return '';
  const node = typeof b['node'] === 'string' ? b['node'] : '';
  const id = typeof b['id'] === 'string' ? `/${b['id']}` : '';
  return `${node}${id}${b['drained'] === false ? ' (restore)' : ''}`;
}
