/**
 * Consul's agent HTTP API, served from the agent's local state. Reads never wait on the network
 * except once: the first read of a service this host never watched waits (bounded) for its first
 * push, so a fresh app does not see an empty list for a service that exists.
 */
import type { ConsulBackend, UpstreamStatus } from './consul-backend.js';
import { MeshregError } from '../../proto/errors.js';
import { worstHealth, type Health } from '../../proto/instance.js';
import { describe, setOwn } from '../../proto/validate.js';
import { toInstance, type LocalRecord } from '../local/local-services.js';
import { parseBlocking, parseFlag } from '../http/blocking.js';
import { checkTargetIssues } from './consul-check.js';
import { decodeServiceDefinition } from './consul-register.js';
import { agentServiceJson } from './consul-encode.js';
import { combineAge, resolveDatacenter, type DatacenterReads } from './consul-datacenters.js';
import { parseDc } from './consul-query.js';
import { block, readHeaders, serviceRead } from './consul-service-read.js';
import type { JsonAnswer, JsonRequest, JsonRouter } from '../../proto/runtime/json-router.js';

export type { ConsulBackend, UpstreamStatus } from './consul-backend.js';

export function addConsulRoutes(router: JsonRouter, b: ConsulBackend): void {
  router
    .add('PUT', '/v1/agent/service/register', (req) => register(b, req))
    .add('PUT', '/v1/agent/service/deregister/:id', async (req) => {
      await b.deregister(req.params['id'] ?? '');
      return { status: 200 };
    })
    .add('GET', '/v1/agent/services', () => agentServices(b))
    .add('GET', '/v1/agent/service/:id', (req) => agentService(b, req))
    .add('GET', '/v1/catalog/services', (req) => catalogServices(b, req))
    .add('GET', '/v1/catalog/datacenters', () => ({
      status: 200,
      body: b.datacenters?.federation.known() ?? [b.datacenter],
    }))
    .add('GET', '/v1/catalog/service/:name', (req) => serviceRead(b, req, 'catalog'))
    .add('GET', '/v1/health/service/:name', (req) => serviceRead(b, req, 'health'))
    .add('GET', '/v1/status/leader', (req) => statusRead(b, req, (up) => up.leader))
    .add('GET', '/v1/status/peers', (req) => statusRead(b, req, (up) => (up.connected ? [up.leader] : [])))
    .add('GET', '/v1/agent/self', () => agentSelf(b))
    .add('GET', '/v1/agent/health/service/name/:name', (req) => localHealthByName(b, req))
    .add('GET', '/v1/agent/health/service/id/:id', (req) => localHealthById(b, req));
}

async function register(b: ConsulBackend, req: JsonRequest): Promise<JsonAnswer> {
  const decoded = decodeServiceDefinition(req.body, b.checkRules);
  if (!decoded.ok) {
    throw new MeshregError('invalid_argument', `Invalid service definition: ${describe(decoded.errors)}`, {
      fields: decoded.errors,
    });
  }
  const refused = await checkTargetIssues(decoded.value.checks, b.checkRules);
  if (refused.length > 0)
    throw new MeshregError('invalid_argument', `Invalid service definition: ${describe(refused)}`, {
      fields: refused,
    });
  await b.register(decoded.value, parseFlag(req.query, 'replace-existing-checks'));
  return { status: 200 };
}

function agentSelf(b: ConsulBackend): JsonAnswer {
  const n = b.node;
  return {
    status: 200,
    body: {
      Config: {
        Datacenter: b.datacenter,
        NodeName: n.node,
        NodeID: n.nodeId,
        Server: false,
        Version: 'meshreg',
      },
      Member: { Name: n.node, Addr: n.address, Port: 0, Tags: { dc: b.datacenter, role: 'node' }, Status: 1 },
      Meta: {},
      Meshreg: { Zone: n.zone, Region: n.region, Upstream: b.upstream() },
    },
  };
}

/** Consul's local health answer: 200 passing, 429 warning, 503 critical (the worst of the entries). */
const LOCAL_STATUS: Readonly<Record<Health, number>> = { passing: 200, warning: 429, critical: 503 };

function localHealthEntry(b: ConsulBackend, r: LocalRecord): { status: Health; body: unknown } {
  const i = toInstance(r, b.node);
  const status = worstHealth(i.checks);
  return {
    status,
    body: {
      AggregatedStatus: status,
      Service: agentServiceJson(r, b.datacenter),
      Checks: i.checks.map((c) => ({
        Node: i.node,
        CheckID: c.id,
        Name: c.name,
        Status: c.status,
        Output: c.output,
        ServiceID: i.id,
        ServiceName: i.service,
        Type: c.type,
      })),
    },
  };
}

function localHealthByName(b: ConsulBackend, req: JsonRequest): JsonAnswer {
  const name = req.params['name'] ?? '';
  const entries = b.local.byName(name).map((r) => localHealthEntry(b, r));
  if (entries.length === 0) throw new MeshregError('not_found', `no local service named ${name}`);
  const worst = worstHealth(entries.map((e) => ({ status: e.status })));
  return { status: LOCAL_STATUS[worst], body: entries.map((e) => e.body) };
}

function localHealthById(b: ConsulBackend, req: JsonRequest): JsonAnswer {
  const r = b.local.get(req.params['id'] ?? '');
  if (r === undefined)
    throw new MeshregError('not_found', `no local service with ID ${req.params['id'] ?? ''}`);
  const e = localHealthEntry(b, r);
  return { status: LOCAL_STATUS[e.status], body: e.body };
}

function agentServices(b: ConsulBackend): JsonAnswer {
  const body: Record<string, unknown> = {};
  // A draining service is deregistered as far as this agent's own API is concerned.
  for (const r of b.local.list())
    if (r.draining !== true) setOwn(body, r.def.id, agentServiceJson(r, b.datacenter));
  return { status: 200, body };
}

function agentService(b: ConsulBackend, req: JsonRequest): JsonAnswer {
  const r = b.local.get(req.params['id'] ?? '');
  if (r === undefined) throw new MeshregError('not_found', `unknown service ID: ${req.params['id'] ?? ''}`);
  return { status: 200, body: agentServiceJson(r, b.datacenter) };
}

/**
 * `/v1/status/*`: the session server in use. A peer's status is reached through it too, so `?dc=`
 * of a known peer answers the same; an unknown one is Consul's 500.
 */
function statusRead(b: ConsulBackend, req: JsonRequest, body: (up: UpstreamStatus) => unknown): JsonAnswer {
  const dc = resolveDatacenter(b.datacenters, b.datacenter, parseDc(req.query));
  if ('status' in dc) return dc;
  return { status: 200, body: body(b.upstream()) };
}

async function catalogServices(b: ConsulBackend, req: JsonRequest): Promise<JsonAnswer> {
  const blocking = parseBlocking(req.query);
  const dc = resolveDatacenter(b.datacenters, b.datacenter, parseDc(req.query));
  if ('status' in dc) return dc;
  if (dc.remote && b.datacenters !== undefined) return peerServices(b, b.datacenters, dc.datacenter, req);
  const state = b.view.ensureCatalog();
  if (!state.received && b.upstream().connected) {
    await b.view.waitForCatalogChange(b.firstReadWaitMs, req.signal);
  }
  const changed = (ms: number): Promise<void> => b.view.waitForCatalogChange(ms, req.signal);
  await block(b.view.index, () => state.modifyIndex, changed, blocking.index, blocking.waitMs, req.signal);
  const local = b.local.list().map((r) => [r.def.name, r.def.tags] as const);
  return {
    status: 200,
    body: b.view.catalogServices(local),
    headers: readHeaders(b.upstream(), state.modifyIndex),
  };
}

/**
 * `/v1/catalog/services?dc=PEER`: the names the peer exports here (tags are not exported), from
 * what the session last reported; blocking on a change of that report.
 */
async function peerServices(
  b: ConsulBackend,
  reads: DatacenterReads,
  datacenter: string,
  req: JsonRequest,
): Promise<JsonAnswer> {
  const blocking = parseBlocking(req.query);
  const changed = (ms: number): Promise<void> => reads.waitForChange(ms, req.signal);
  const current = (): number => reads.modifyIndex;
  await block(b.view.index, current, changed, blocking.index, blocking.waitMs, req.signal);
  const body: Record<string, string[]> = {};
  for (const name of [...(reads.federation.peer(datacenter)?.services ?? [])].sort()) setOwn(body, name, []);
  const up = b.upstream();
  const age = combineAge(up.connected ? undefined : up.offlineForSec, reads.staleAgeSec(datacenter));
  return { status: 200, body, headers: readHeaders(up, reads.modifyIndex, age) };
}
