import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONSUL_CHECK_RULES } from '../../agent/checks/check-definition.js';
import { addConsulRoutes, type ConsulBackend, type UpstreamStatus } from '../../agent/consul/consul-api.js';
import type { RegisterRequest } from '../../agent/consul/consul-register.js';
import { LocalServices, toInstance, type NodeIdentity } from '../../agent/local/local-services.js';
import { ServiceView } from '../../agent/view/service-view.js';
import type { Instance } from '../../proto/instance.js';
import { JsonRouter, type JsonAnswer } from '../../proto/runtime/json-router.js';
import { VersionClock } from '../../proto/version.js';
import { makeCheck, makeInstance } from '../support/fixtures.js';

const NODE: NodeIdentity = { nodeId: 'node-a', node: 'a', address: '10.0.0.1', zone: '', region: '' };

/** The agent's Consul backend built from the real local registrations and view, with no network. */
class MemoryBackend implements ConsulBackend {
  readonly node = NODE;
  readonly datacenter = 'dc1';
  readonly firstReadWaitMs = 50;
  readonly checkRules = CONSUL_CHECK_RULES;
  readonly local = new LocalServices(new VersionClock());
  readonly view: ServiceView;
  readonly watched: string[] = [];
  status: UpstreamStatus = { connected: true, lastContactMs: 0, offlineForSec: 0, leader: '127.0.0.1:9600' };

  constructor() {
    this.view = new ServiceView(NODE.nodeId, {
      onWatch: (service) => this.watched.push(service),
      onWatchCatalog: () => this.watched.push('(catalog)'),
      localInstances: (service) => this.local.byName(service).map((r) => toInstance(r, NODE)),
      onChanged: () => undefined,
    });
    this.local.onChange((c) => {
      this.view.localChanged(c.kind === 'upsert' ? c.record.def.name : c.tombstone.service);
      this.view.catalogLocalChanged();
    });
  }

  subscriptionRefusal(): undefined {
    return undefined;
  }

  register(req: RegisterRequest): Promise<void> {
    this.local.register(req.def);
    return Promise.resolve();
  }

  deregister(id: string): Promise<void> {
    this.local.deregister(id);
    return Promise.resolve();
  }

  upstream(): UpstreamStatus {
    return this.status;
  }

  /** A push from the control plane; the first one for a service arrives before any read. */
  push(service: string, version: number, instances: Instance[], complete = true): void {
    this.view.ensure(service);
    this.view.applyPush({ type: 'push', service, version, complete, instances });
  }
}

interface Api {
  readonly backend: MemoryBackend;
  readonly call: (method: string, url: string, body?: unknown, signal?: AbortSignal) => Promise<JsonAnswer>;
}

function api(): Api {
  const backend = new MemoryBackend();
  const router = new JsonRouter();
  addConsulRoutes(router, backend);
  return {
    backend,
    // The same mapping the HTTP server applies, without a socket.
    call: async (method, url, body, signal = new AbortController().signal) => {
      const u = new URL(url, 'http://agent');
      const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const r = await router.handle({ method, path: u.pathname, query: u.searchParams, body: text, signal });
      // A pre-encoded JSON answer travels as `text`; read it back as the client would.
      return r.text !== undefined && r.headers?.['content-type'] === 'application/json'
        ? { ...r, body: JSON.parse(r.text) as unknown }
        : r;
    },
  };
}

function index(r: JsonAnswer): number {
  return Number(r.headers?.['x-consul-index']);
}

test('consul api - a registration shows in agent/services in Consul shape', async () => {
  const { call } = api();
  const put = await call('PUT', '/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-1',
    Address: '127.0.0.1',
    Port: 8080,
    Tags: ['v1'],
    Meta: { version: '1.0' },
  });
  assert.equal(put.status, 200);
  const expected = {
    ID: 'web-1',
    Service: 'web',
    Tags: ['v1'],
    Meta: { version: '1.0' },
    Port: 8080,
    Address: '127.0.0.1',
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: false,
    Datacenter: 'dc1',
  };
  assert.deepEqual(await call('GET', '/v1/agent/services'), { status: 200, body: { 'web-1': expected } });
  assert.deepEqual(await call('GET', '/v1/agent/service/web-1'), { status: 200, body: expected });
  const missing = await call('GET', '/v1/agent/service/none');
  assert.equal(missing.status, 404);
});

test('consul api - an invalid registration is a 400 naming every field', async () => {
  const { call } = api();
  const r = await call('PUT', '/v1/agent/service/register', { Name: 'web', Port: 'x', Tags: [1] });
  assert.equal(r.status, 400);
  const body = r.body as { error: { code: string; fields: { path: string }[] } };
  assert.equal(body.error.code, 'invalid_argument');
  assert.deepEqual(
    body.error.fields.map((f) => f.path),
    ['Tags[0]', 'Port'],
  );
  assert.equal(
    (await call('PUT', '/v1/agent/service/register?replace-existing-checks=maybe', { Name: 'w' })).status,
    400,
  );
});

test('consul api - deregistering removes the service; unknown IDs are ignored', async () => {
  const { call } = api();
  await call('PUT', '/v1/agent/service/register', { Name: 'web', ID: 'web-1' });
  assert.equal((await call('PUT', '/v1/agent/service/deregister/web-1')).status, 200);
  assert.equal((await call('PUT', '/v1/agent/service/deregister/never')).status, 200);
  assert.deepEqual((await call('GET', '/v1/agent/services')).body, {});
  assert.deepEqual((await call('GET', '/v1/health/service/web')).body, []);
});

test('consul api - an unknown service reads as [] (never null) and a bad name is a 400', async () => {
  const { call, backend } = api();
  backend.status = { connected: false, lastContactMs: 1500, offlineForSec: 3, leader: '' };
  const r = await call('GET', '/v1/health/service/none');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, []);
  assert.ok(index(r) >= 1);
  assert.deepEqual(r.headers, {
    'content-type': 'application/json',
    'x-consul-index': String(index(r)),
    'x-consul-knownleader': 'false',
    'x-consul-lastcontact': '1500',
    'x-cache': 'HIT',
    age: '3',
  });
  assert.deepEqual((await call('GET', '/v1/catalog/service/none')).body, []);
  assert.equal((await call('GET', '/v1/health/service/bad%20name')).status, 400);
  assert.deepEqual((await call('GET', '/v1/status/leader')).body, '');
});

test('consul api - health entries in Consul shape, own registrations and pushed ones', async () => {
  const { call, backend } = api();
  backend.push('web', 1, [makeInstance({ id: 'web-2', service: 'web', nodeId: 'node-b', node: 'b' })]);
  await call('PUT', '/v1/agent/service/register', { Name: 'web', ID: 'web-1', Port: 80 });
  const r = await call('GET', '/v1/health/service/web');
  const i = index(r);
  const body = r.body as Record<string, unknown>[];
  assert.equal(body.length, 2);
  assert.deepEqual(body[0], {
    Node: {
      ID: 'node-a',
      Node: 'a',
      Address: '10.0.0.1',
      Datacenter: 'dc1',
      TaggedAddresses: { lan: '10.0.0.1', wan: '10.0.0.1' },
      Meta: {},
      CreateIndex: i,
      ModifyIndex: i,
    },
    Service: {
      ID: 'web-1',
      Service: 'web',
      Tags: [],
      Address: '',
      Meta: {},
      Port: 80,
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
      CreateIndex: i,
      ModifyIndex: i,
    },
    Checks: [
      {
        Node: 'a',
        CheckID: 'serfHealth',
        Name: 'Serf Health Status',
        Status: 'passing',
        Notes: '',
        Output: 'Agent alive and reachable',
        ServiceID: '',
        ServiceName: '',
        ServiceTags: [],
        Type: '',
        CreateIndex: i,
        ModifyIndex: i,
      },
    ],
  });
  assert.deepEqual(
    body.map((e) => (e['Service'] as { ID: string }).ID),
    ['web-1', 'web-2'],
    'sorted by node, then ID',
  );
});

test('consul api - ?passing keeps healthy instances and repeated ?tag= must all match', async () => {
  const { call, backend } = api();
  const mk = (id: string, tags: string[], status: 'passing' | 'warning' | 'critical'): Instance =>
    makeInstance({ id, service: 'web', tags, checks: [makeCheck(`${id}-c`, status)], health: status });
  backend.push('web', 1, [
    mk('w1', ['v1', 'blue'], 'passing'),
    mk('w2', ['v1'], 'passing'),
    mk('w3', ['v1', 'blue'], 'critical'),
    mk('w4', ['v2', 'blue'], 'warning'),
  ]);
  const ids = async (url: string): Promise<string[]> =>
    ((await call('GET', url)).body as { Service?: { ID: string }; ServiceID?: string }[]).map(
      (e) => e.Service?.ID ?? e.ServiceID ?? '',
    );
  assert.deepEqual(await ids('/v1/health/service/web'), ['w1', 'w2', 'w3', 'w4']);
  assert.deepEqual(await ids('/v1/health/service/web?passing'), ['w1', 'w2']);
  assert.deepEqual(await ids('/v1/health/service/web?passing=false'), ['w1', 'w2', 'w3', 'w4']);
  assert.deepEqual(await ids('/v1/health/service/web?tag=v1'), ['w1', 'w2', 'w3']);
  assert.deepEqual(await ids('/v1/health/service/web?tag=v1&tag=blue'), ['w1', 'w3']);
  assert.deepEqual(await ids('/v1/health/service/web?tag=v1&tag=blue&passing'), ['w1']);
  assert.deepEqual(await ids('/v1/health/service/web?tag=none'), []);
  assert.deepEqual(await ids('/v1/catalog/service/web?tag=blue&tag=v2'), ['w4']);
});

test('consul api - X-Consul-Index is at least 1 and grows with each change', async () => {
  const { call, backend } = api();
  backend.status = { ...backend.status, connected: false };
  const seen: number[] = [];
  seen.push(index(await call('GET', '/v1/health/service/web')));
  await call('PUT', '/v1/agent/service/register', { Name: 'web', ID: 'web-1' });
  seen.push(index(await call('GET', '/v1/health/service/web')));
  seen.push(index(await call('GET', '/v1/health/service/web')));
  backend.push('web', 5, [makeInstance({ id: 'web-2', service: 'web' })]);
  seen.push(index(await call('GET', '/v1/health/service/web')));
  seen.push(index(await call('GET', '/v1/catalog/services')));
  await call('PUT', '/v1/agent/service/register', { Name: 'db' });
  seen.push(index(await call('GET', '/v1/catalog/services')));
  assert.ok((seen[0] ?? 0) >= 1);
  assert.ok((seen[1] ?? 0) > (seen[0] ?? 0));
  assert.equal(seen[2], seen[1], 'an unchanged service keeps its index');
  assert.ok((seen[3] ?? 0) > (seen[2] ?? 0));
  assert.ok((seen[5] ?? 0) > (seen[4] ?? 0));
});

test('consul api - a blocking read returns as soon as the service changes', async () => {
  const { call, backend } = api();
  backend.push('web', 1, []);
  const first = await call('GET', '/v1/health/service/web');
  let settled = false;
  const started = performance.now();
  const pending = call('GET', `/v1/health/service/web?index=${index(first)}&wait=30s`).then((r) => {
    settled = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false, 'still blocking while nothing changed');
  backend.push('web', 2, [makeInstance({ id: 'web-2', service: 'web' })]);
  const r = await pending;
  assert.ok(performance.now() - started < 1000);
  assert.ok(index(r) > index(first));
  assert.equal((r.body as unknown[]).length, 1);
});

test('consul api - a thousand blocking reads woken by one change share one encoding', async () => {
  const { call, backend } = api();
  backend.push('web', 1, [makeInstance({ id: 'web-1', service: 'web' })]);
  const first = await call('GET', '/v1/health/service/web?passing');
  const view = backend.view;
  const real = view.instances.bind(view);
  let builds = 0;
  view.instances = (service: string): Instance[] => {
    builds++;
    return real(service);
  };
  const pending = Array.from({ length: 1000 }, () =>
    call('GET', `/v1/health/service/web?passing&index=${index(first)}&wait=30s`),
  );
  await new Promise((r) => setTimeout(r, 20));
  backend.push('web', 2, [makeInstance({ id: 'web-2', service: 'web' })]);
  const answers = await Promise.all(pending);
  assert.equal(builds, 1, 'the list is filtered, sorted and encoded once for every woken read');
  const texts = new Set(answers.map((r) => JSON.stringify(r.body)));
  assert.equal(texts.size, 1);
  assert.ok(answers.every((r) => index(r) > index(first)));
  assert.equal((answers[0]?.body as unknown[]).length, 1);
});

test('consul api - a blocking read returns at its wait with the same index', async () => {
  const { call, backend } = api();
  backend.push('web', 1, []);
  const first = await call('GET', '/v1/health/service/web');
  const started = performance.now();
  const r = await call('GET', `/v1/health/service/web?index=${index(first)}&wait=60ms`);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 55 && elapsed < 1000, `${elapsed} ms`);
  assert.equal(index(r), index(first));
  assert.deepEqual(r.body, []);
});

test('consul api - a blocking read ends when the client goes away', async () => {
  const { call, backend } = api();
  backend.push('web', 1, []);
  const first = await call('GET', '/v1/health/service/web');
  const controller = new AbortController();
  const pending = call(
    'GET',
    `/v1/health/service/web?index=${index(first)}&wait=30s`,
    undefined,
    controller.signal,
  );
  setTimeout(() => {
    controller.abort();
  }, 10);
  const started = performance.now();
  await pending;
  assert.ok(performance.now() - started < 1000);
});

test('consul api - an index from the future answers at once', async () => {
  const { call, backend } = api();
  backend.push('web', 1, []);
  const started = performance.now();
  const r = await call('GET', '/v1/health/service/web?index=999999&wait=30s');
  assert.ok(performance.now() - started < 1000);
  assert.equal(r.status, 200);
});

test('consul api - the first read of a new service waits for its first push, bounded', async () => {
  const { call, backend } = api();
  const pending = call('GET', '/v1/health/service/web');
  await Promise.resolve();
  assert.deepEqual(backend.watched, ['web'], 'the read subscribed upstream');
  backend.push('web', 1, [makeInstance({ id: 'web-2', service: 'web' })]);
  assert.equal(((await pending).body as unknown[]).length, 1);
  const started = performance.now();
  assert.deepEqual((await call('GET', '/v1/health/service/never')).body, []);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= backend.firstReadWaitMs - 5 && elapsed < 1000, `${elapsed} ms`);
});

test('consul api - catalog/services merges pushed and local names with their tags', async () => {
  const { call, backend } = api();
  backend.view.ensureCatalog();
  backend.view.applyCatalog({
    type: 'catalog',
    version: 1,
    complete: true,
    services: { web: ['v2'], db: [] },
  });
  await call('PUT', '/v1/agent/service/register', { Name: 'web', Tags: ['v1'] });
  await call('PUT', '/v1/agent/service/register', { Name: 'local', ID: 'l-1' });
  const r = await call('GET', '/v1/catalog/services');
  assert.deepEqual(r.body, { web: ['v1', 'v2'], db: [], local: [] });
  assert.ok(index(r) >= 1);
});

test('consul api - a blocking catalog read wakes on a catalog change, not on a service push', async () => {
  const { call, backend } = api();
  backend.view.ensureCatalog();
  backend.view.applyCatalog({ type: 'catalog', version: 1, complete: true, services: { web: [] } });
  const first = await call('GET', '/v1/catalog/services');
  assert.deepEqual(backend.watched, ['(catalog)'], 'the read watched the catalog, not a service');
  let settled = false;
  const pending = call('GET', `/v1/catalog/services?index=${index(first)}&wait=30s`).then((r) => {
    settled = true;
    return r;
  });
  backend.push('web', 1, [makeInstance({ id: 'web-2', service: 'web' })]);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false, 'a service push does not answer a catalog query');
  backend.view.applyCatalog({ type: 'catalog', version: 2, complete: true, services: { web: [], db: [] } });
  const r = await pending;
  assert.ok(index(r) > index(first));
  assert.deepEqual(r.body, { web: [], db: [] });
});
