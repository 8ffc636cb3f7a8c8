/**
 * Consul's agent HTTP API, served from the agent's local state. Reads never wait on the network
 * except once: the first read of a service this host never watched waits (bounded) for its first
 * push, so a fresh app does not see an empty list for a service that exists.
 */
import { MeshregError } from '../../proto/errors.js';
import { SERVICE_NAME_PATTERN, worstHealth, type Health, type Instance } from '../../proto/instance.js';
import { describe, setOwn } from '../../proto/validate.js';
import type { CheckRules } from '../checks/check-definition.js';
import {
  toInstance,
  type LocalRecord,
  type LocalServices,
  type NodeIdentity,
} from '../local/local-services.js';
import type { ServiceView, WatchedService } from '../view/service-view.js';
import { parseBlocking, parseFlag } from '../http/blocking.js';
import { checkTargetIssues } from './consul-check.js';
import { decodeServiceDefinition, type RegisterRequest } from './consul-register.js';
import { agentServiceJson, catalogEntry, healthEntry } from './consul-encode.js';
import type { JsonAnswer, JsonRequest, JsonRouter } from '../../proto/runtime/json-router.js';

/** The link's health as reads report it (Consul's known-leader and last-contact headers). */
export interface UpstreamStatus {
  readonly connected: boolean;
  /** Milliseconds since the link was last heard from; 0 while connected. */
  readonly lastContactMs: number;
  /** Seconds since the link went down; 0 while connected. */
  readonly offlineForSec: number;
  /** `host:port` of the session server in use, '' when offline. */
  readonly leader: string;
}

/** What the Consul handlers need from the agent. */
export interface ConsulBackend {
  readonly node: NodeIdentity;
  readonly datacenter: string;
  readonly view: ServiceView;
  readonly local: LocalServices;
  readonly firstReadWaitMs: number;
  /** The agent's check policy, applied while decoding a registration's checks. */
  readonly checkRules: CheckRules;
  register(req: RegisterRequest, replaceExistingChecks: boolean): Promise<void>;
  deregister(id: string): Promise<void>;
  upstream(): UpstreamStatus;
  /** Why the control plane refused to let this host watch `service` (a blacklist), if it did. */
  subscriptionRefusal(service: string): { code: string; message: string } | undefined;
}

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
    .add('GET', '/v1/catalog/service/:name', (req) => serviceRead(b, req, 'catalog'))
    .add('GET', '/v1/health/service/:name', (req) => serviceRead(b, req, 'health'))
    .add('GET', '/v1/status/leader', () => ({ status: 200, body: b.upstream().leader }))
    .add('GET', '/v1/status/peers', () => ({
      status: 200,
      body: b.upstream().connected ? [b.upstream().leader] : [],
    }))
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

/** Headers every read carries: the index, and whether the control plane is reachable. */
function readHeaders(up: UpstreamStatus, index: number): Record<string, string> {
  const h: Record<string, string> = {
    'x-consul-index': String(Math.max(1, index)),
    'x-consul-knownleader': String(up.connected),
    'x-consul-lastcontact': String(up.lastContactMs),
  };
  if (!up.connected) {
    // Consul's own way to say "served from a local cache while the servers are unreachable".
    h['x-cache'] = 'HIT';
    h['age'] = String(up.offlineForSec);
  }
  return h;
}

function checkServiceName(name: string): void {
  if (name === '' || name.length > 256 || !SERVICE_NAME_PATTERN.test(name)) {
    throw new MeshregError('invalid_argument', `invalid service name: ${JSON.stringify(name)}`, {
      fields: [{ path: 'name', message: 'must be a service name' }],
    });
  }
}

async function serviceRead(
  b: ConsulBackend,
  req: JsonRequest,
  shape: 'health' | 'catalog',
): Promise<JsonAnswer> {
  const name = req.params['name'] ?? '';
  checkServiceName(name);
  const passing = shape === 'health' && parseFlag(req.query, 'passing');
  const tags = req.query.getAll('tag');
  const blocking = parseBlocking(req.query);
  const entry = b.view.ensure(name);
  // While this read waits (first push, blocking query) its watch cannot be evicted.
  const release = b.view.hold(entry);
  try {
    if (!entry.received && b.upstream().connected) {
      await b.view.waitForChange(name, b.firstReadWaitMs, req.signal);
    }
    const refusal = b.subscriptionRefusal(name);
    if (refusal?.code === 'limit_exceeded') {
      // A limit is not a policy decision: its own code (429), naming the limit. The watch goes, so
      // a later read asks again (and succeeds once the agent watches fewer services).
      release();
      b.view.unwatch(name);
      throw new MeshregError('limit_exceeded', `watching "${name}" was refused: ${refusal.message}`);
    }
    if (refusal !== undefined)
      throw new MeshregError('forbidden', `watching "${name}" was refused: ${refusal.message}`);
    const changed = (ms: number): Promise<void> => b.view.waitForChange(name, ms, req.signal);
    await block(b, () => entry.modifyIndex, changed, blocking.index, blocking.waitMs, req.signal);
  } finally {
    release();
  }
  const index = entry.modifyIndex;
  // A body only changes with the service's index: encode it once per index and filter, not per
  // read, so a thousand blocking queries woken by one change share one encoding.
  const cacheKey = `${shape}|${String(passing)}|${tags.join('\u0000')}`;
  let cache = bodies.get(entry);
  if (cache === undefined || cache.index !== index) {
    cache = { index, texts: new Map(), headers: undefined };
    bodies.set(entry, cache);
  }
  const up = b.upstream();
  // Online, the headers depend on the index only; offline they carry the time since contact.
  const headers = up.connected
    ? (cache.headers ??= { ...readHeaders(up, index), 'content-type': 'application/json' })
    : { ...readHeaders(up, index), 'content-type': 'application/json' };
  let text = cache.texts.get(cacheKey);
  if (text === undefined) {
    let list: Instance[] = b.view.instances(name);
    if (tags.length > 0) list = list.filter((i) => tags.every((t) => i.tags.includes(t)));
    if (passing) list = list.filter((i) => i.checks.every((c) => c.status === 'passing'));
    list.sort((x, y) => (x.node === y.node ? x.id.localeCompare(y.id) : x.node.localeCompare(y.node)));
    text = JSON.stringify(
      list.map((i) =>
        shape === 'health' ? healthEntry(i, b.datacenter, index) : catalogEntry(i, b.datacenter, index),
      ),
    );
    // A few filter combinations per service are normal; a client cycling through tags must not grow it forever.
    if (cache.texts.size < 32) cache.texts.set(cacheKey, text);
  }
  return { status: 200, text, headers };
}

/** Encoded read bodies per watched service, valid for one index. */
const bodies = new WeakMap<
  WatchedService,
  { index: number; texts: Map<string, string>; headers: Record<string, string> | undefined }
>();

/** Holds a blocking read until the entry's index passes `index`, the wait elapses, or the client leaves. */
async function block(
  b: ConsulBackend,
  current: () => number,
  changed: (timeoutMs: number) => Promise<void>,
  index: number | undefined,
  waitMs: number,
  signal: AbortSignal,
): Promise<void> {
  // An index from the future (the agent restarted since the client read it) answers at once, so the
  // client sees the index go backwards and resets, as Consul clients do.
  if (index === undefined || index === 0 || index > b.view.index) return;
  const deadline = performance.now() + waitMs;
  while (current() <= index && !signal.aborted) {
    const left = deadline - performance.now();
    if (left <= 0) return;
    await changed(left);
  }
}

async function catalogServices(b: ConsulBackend, req: JsonRequest): Promise<JsonAnswer> {
  const blocking = parseBlocking(req.query);
  const state = b.view.ensureCatalog();
  if (!state.received && b.upstream().connected) {
    await b.view.waitForCatalogChange(b.firstReadWaitMs, req.signal);
  }
  const changed = (ms: number): Promise<void> => b.view.waitForCatalogChange(ms, req.signal);
  await block(b, () => state.modifyIndex, changed, blocking.index, blocking.waitMs, req.signal);
  const local = b.local.list().map((r) => [r.def.name, r.def.tags] as const);
  return {
    status: 200,
    body: b.view.catalogServices(local),
    headers: readHeaders(b.upstream(), state.modifyIndex),
  };
}
