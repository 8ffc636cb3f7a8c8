/**
 * The agent's Consul surface for zones, data centers and scopes, driven end to end in memory: the
 * real upstream link and sync against a fake session that sends `datacenters` frames and pushes of
 * `web@dc2`, the real view and FederationView, and the real Consul routes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { healthView, syncStatusView } from '../../agent/agent-status.js';
import { CONSUL_CHECK_RULES } from '../../agent/checks/check-definition.js';
import { addConsulRoutes, type ConsulBackend } from '../../agent/consul/consul-api.js';
import { DatacenterReads } from '../../agent/consul/consul-datacenters.js';
import { FederationView } from '../../agent/federation-view.js';
import { LocalServices, toInstance, type NodeIdentity } from '../../agent/local/local-services.js';
import { AgentSync } from '../../agent/upstream/sync.js';
import { ServiceView } from '../../agent/view/service-view.js';
import { ViewCache } from '../../agent/view/view-cache.js';
import type { Datacenters, PeerDatacenter } from '../../proto/agent-link.js';
import { NO_PATH_TO_DATACENTER } from '../../proto/datacenter.js';
import type { Instance } from '../../proto/instance.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { JsonRouter, type JsonAnswer } from '../../proto/runtime/json-router.js';
import { VersionClock } from '../../proto/version.js';
import { makeInstance, settle } from '../support/fixtures.js';
import { FakeSessions, send, sentBy, type Dial } from '../support/fake-session.js';

interface Harness {
  readonly sync: AgentSync;
  readonly view: ServiceView;
  readonly local: LocalServices;
  readonly federation: FederationView;
  readonly sessions: FakeSessions;
  readonly dial: Dial;
  call(url: string, signal?: AbortSignal): Promise<JsonAnswer>;
  push(service: string, version: number, instances: Instance[]): Promise<void>;
  peers(...peers: PeerDatacenter[]): Promise<void>;
}

const inst = (id: string, node: string, zone: string, service = 'web'): Instance =>
  makeInstance({ id, service, nodeId: `id-${node}`, node, zone, region: zone === '' ? '' : 'r1' });

const peer = (name: string, services: string[], linked = true, ageMs = 0): PeerDatacenter => ({
  name,
  linked,
  ageMs,
  services,
});

/** An agent of `dc1` (node `self`, in `zone`) connected to a fake session. */
async function agent(t: TestContext, zone = 'a'): Promise<Harness> {
  const node: NodeIdentity = { nodeId: 'id-self', node: 'self', address: '10.0.0.1', zone, region: 'r1' };
  const local = new LocalServices(new VersionClock());
  const sessions = new FakeSessions();
  const view = new ServiceView(node.nodeId, {
    onWatch: (s) => {
      liveSync.subscribe(s);
    },
    onWatchCatalog: () => undefined,
    localInstances: (s) => local.byName(s).map((r) => toInstance(r, node)),
    onChanged: () => undefined,
  });
  const liveSync = new AgentSync(local, view, node, {
    link: {
      urls: ['ws://s1/v1/agent-link'],
      token: 'secret',
      datacenter: 'dc1',
      connectTimeoutMs: 5000,
      maxFrameBytes: 1 << 20,
      backoff: { initialMs: 60_000, maxMs: 120_000, multiplier: 1, jitter: 0 },
      connect: sessions.connect,
    },
    fullSyncIntervalMs: 3_600_000,
    logger: silentLogger,
  });
  const federation = new FederationView('dc1');
  liveSync.onDatacenters((f, at) => federation.apply(f, at));
  const backend: ConsulBackend = {
    node,
    datacenter: 'dc1',
    view,
    local,
    firstReadWaitMs: 300,
    datacenters: new DatacenterReads(federation, view),
    checkRules: CONSUL_CHECK_RULES,
    register: () => Promise.resolve(),
    deregister: () => Promise.resolve(),
    upstream: () => liveSync.status(),
    subscriptionRefusal: (s) => liveSync.subscriptionRefusal(s),
  };
  const router = new JsonRouter();
  addConsulRoutes(router, backend);
  liveSync.start();
  const dial = await sessions.accept();
  t.after(async () => {
    liveSync.stop();
    await settle();
  });
  return {
    sync: liveSync,
    view,
    local,
    federation,
    sessions,
    dial,
    call: async (url, signal = new AbortController().signal) => {
      const u = new URL(url, 'http://agent');
      const r = await router.handle({ method: 'GET', path: u.pathname, query: u.searchParams, signal });
      return r.text !== undefined && r.headers?.['content-type'] === 'application/json'
        ? { ...r, body: JSON.parse(r.text) as unknown }
        : r;
    },
    push: async (service, version, instances) => {
      view.ensure(service);
      await send(dial, { type: 'push', service, version, complete: true, instances });
    },
    peers: async (...peers) => {
      const frame: Datacenters = { type: 'datacenters', local: 'dc1', peers };
      await send(dial, frame);
    },
  };
}

type Entry = { Node: { Node: string; Datacenter: string; Meta: Record<string, string> } };
/** Node names of a health answer (`Node.Node`) or a catalog one (`Node`). */
const nodes = (r: JsonAnswer): string[] =>
  (r.body as (Entry | { Node: string })[]).map((e) => (typeof e.Node === 'string' ? e.Node : e.Node.Node));
const dcs = (r: JsonAnswer): string[] => (r.body as Entry[]).map((e) => e.Node.Datacenter);

test('zones consul - the hello names the data center; a 4015 refusal is kept and shown in health', async (t) => {
  const h = await agent(t);
  assert.equal((sentBy(h.dial)[0] as { datacenter?: string }).datacenter, 'dc1');
  await h.sessions.close(4015, 'wrong_datacenter: this control plane is dc2, the agent says dc1');
  assert.equal(h.sync.state, 'backoff');
  assert.equal(h.sync.fatalClose?.code, 4015);
  const health = healthView(h.sync, h.local, h.view, h.federation) as {
    status: string;
    upstream: { refused?: { code: number; reason: string } };
  };
  assert.equal(health.status, 'degraded');
  assert.equal(health.upstream.refused?.code, 4015);
  assert.match(health.upstream.refused?.reason ?? '', /dc2.*dc1/);
  // The longest backoff (60 s here) before the next dial: no hammering.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(h.sessions.dials.length, 1);
});

test('zones consul - Datacenter, Node.Meta and NodeMeta carry the data center, zone and region', async (t) => {
  const h = await agent(t);
  await h.push('web', 1, [inst('w1', 'n1', 'a'), inst('w2', 'n2', '')]);
  const health = await h.call('/v1/health/service/web');
  assert.deepEqual(dcs(health), ['dc1', 'dc1']);
  assert.deepEqual(
    (health.body as Entry[]).map((e) => e.Node.Meta),
    [{ zone: 'a', region: 'r1' }, {}],
  );
  const catalog = await h.call('/v1/catalog/service/web');
  assert.deepEqual(
    (catalog.body as { NodeMeta: unknown; Datacenter: string }[]).map((e) => [e.Datacenter, e.NodeMeta]),
    [
      ['dc1', { zone: 'a', region: 'r1' }],
      ['dc1', {}],
    ],
  );
});

test('zones consul - ?dc of a known peer reads its copy (web@dc2); unknown is a 500 No path to datacenter', async (t) => {
  const h = await agent(t);
  await h.peers(peer('dc2', ['web']));
  const read = h.call('/v1/health/service/web?dc=dc2');
  await settle();
  const sub = sentBy(h.dial).find((f) => f.type === 'subscribe' && f.services[0]?.service === 'web@dc2');
  assert.ok(sub, 'web@dc2 subscribed upstream');
  await send(h.dial, {
    type: 'push',
    service: 'web@dc2',
    version: 7,
    complete: true,
    instances: [inst('r1', 'far', 'x')],
  });
  const r = await read;
  assert.equal(r.status, 200);
  assert.deepEqual(nodes(r), ['far']);
  assert.deepEqual(dcs(r), ['dc2']);
  assert.equal(r.headers?.['x-consul-knownleader'], 'true');
  // Its own name reads the local data center; an unknown name gets Consul's answer, not a list.
  await h.push('web', 1, [inst('w1', 'n1', 'a')]);
  assert.deepEqual(dcs(await h.call('/v1/health/service/web?dc=dc1')), ['dc1']);
  for (const url of [
    '/v1/health/service/web?dc=nope',
    '/v1/catalog/service/web?dc=nope',
    '/v1/catalog/services?dc=nope',
    '/v1/status/leader?dc=nope',
    '/v1/health/service/web?dc=dc3%40x',
  ]) {
    const bad = await h.call(url);
    assert.equal(bad.status, 500, url);
    assert.equal(bad.text, NO_PATH_TO_DATACENTER, url);
  }
});

test('zones consul - a peer whose link is down marks only its reads stale, with the age of its last sync', async (t) => {
  const h = await agent(t);
  await h.peers(peer('dc2', ['web'], false, 30_000));
  await h.push('web@dc2', 3, [inst('r1', 'far', 'x')]);
  await h.push('web', 1, [inst('w1', 'n1', 'a')]);
  const remote = await h.call('/v1/health/service/web?dc=dc2');
  assert.deepEqual(nodes(remote), ['far'], 'the last known copy is still served');
  assert.equal(remote.headers?.['x-consul-knownleader'], 'false');
  assert.equal(remote.headers?.['x-cache'], 'HIT');
  assert.ok(Number(remote.headers?.['age']) >= 30);
  const local = await h.call('/v1/health/service/web');
  assert.equal(local.headers?.['x-consul-knownleader'], 'true');
  assert.equal(local.headers?.['x-cache'], undefined);
  const global = await h.call('/v1/health/service/web?scope=global');
  assert.equal(global.headers?.['x-cache'], 'HIT', 'a stale part marks the merged answer');
  // Linked again: fresh.
  await h.peers(peer('dc2', ['web']));
  assert.equal((await h.call('/v1/health/service/web?dc=dc2')).headers?.['x-cache'], undefined);
  const status = syncStatusView(h.sync, h.local, h.view, h.federation) as {
    datacenters: { local: string; peers: { name: string; stale: boolean; services: string[] }[] };
    watched: { Service: string; Datacenter: string; Stale: boolean }[];
  };
  assert.deepEqual(status.datacenters.local, 'dc1');
  assert.deepEqual(
    status.datacenters.peers.map((p) => [p.name, p.stale, p.services]),
    [['dc2', false, ['web']]],
  );
  assert.deepEqual(status.watched.map((w) => [w.Service, w.Datacenter, w.Stale]).sort(), [
    ['web', 'dc1', false],
    ['web@dc2', 'dc2', false],
  ]);
});

test('zones consul - scope global merges the local service and every exporting peer, and wakes on a remote part', async (t) => {
  const h = await agent(t);
  await h.peers(peer('dc2', ['web']), peer('dc3', ['web']), peer('dc4', ['api']));
  await h.push('web', 1, [inst('w1', 'n1', 'a')]);
  await h.push('web@dc2', 1, [inst('r2', 'far2', 'x')]);
  await h.push('web@dc3', 1, [inst('r3', 'far3', 'y')]);
  const first = await h.call('/v1/health/service/web?scope=global');
  assert.deepEqual(dcs(first), ['dc1', 'dc2', 'dc3'], 'dc4 does not export web');
  assert.equal(first.headers?.['x-meshreg-scope'], 'global');
  assert.ok(!h.view.get('web@dc4'), 'nothing watched for a peer that does not export it');
  const index = Number(first.headers?.['x-consul-index']);
  let done = false;
  const blocked = h.call(`/v1/health/service/web?scope=global&index=${index}&wait=5s`).then((r) => {
    done = true;
    return r;
  });
  await settle();
  assert.equal(done, false, 'still blocking');
  await h.push('web@dc3', 2, [inst('r3', 'far3', 'y'), inst('r4', 'far4', 'y')]);
  const woken = await blocked;
  assert.ok(Number(woken.headers?.['x-consul-index']) > index);
  assert.deepEqual(nodes(woken), ['n1', 'far2', 'far3', 'far4']);
  // Pick one: a data center or every data center.
  const both = await h.call('/v1/health/service/web?dc=dc2&scope=global');
  assert.equal(both.status, 400);
  assert.match(JSON.stringify(both.body), /scope/);
});

test('zones consul - catalog/datacenters lists the own first, then peers; catalog/services?dc= lists the exports', async (t) => {
  const h = await agent(t);
  assert.deepEqual((await h.call('/v1/catalog/datacenters')).body, ['dc1']);
  await h.peers(peer('dc3', ['db']), peer('dc2', ['web', 'api']));
  assert.deepEqual((await h.call('/v1/catalog/datacenters')).body, ['dc1', 'dc2', 'dc3']);
  const services = await h.call('/v1/catalog/services?dc=dc2');
  assert.deepEqual(services.body, { api: [], web: [] });
  // Blocking on the peer's exports: wakes when the session reports a change.
  const index = Number(services.headers?.['x-consul-index']);
  const blocked = h.call(`/v1/catalog/services?dc=dc2&index=${index}&wait=5s`);
  await settle();
  await h.peers(peer('dc3', ['db']), peer('dc2', ['web']));
  const woken = await blocked;
  assert.deepEqual(woken.body, { web: [] });
  assert.ok(Number(woken.headers?.['x-consul-index']) > index);
});

test('zones consul - scope zone, node-meta and near=_agent choose and order by zone', async (t) => {
  const h = await agent(t, 'a');
  h.local.register({
    id: 'mine',
    name: 'web',
    tags: [],
    address: '10.0.0.1',
    port: 80,
    meta: {},
    weights: { passing: 1, warning: 1 },
    enableTagOverride: false,
  });
  await h.push('web', 1, [inst('w1', 'b1', 'b'), inst('w2', 'a1', 'a'), inst('w3', 'none', '')]);
  assert.deepEqual(nodes(await h.call('/v1/health/service/web')), ['a1', 'b1', 'none', 'self']);
  const zone = await h.call('/v1/health/service/web?scope=zone');
  assert.deepEqual(nodes(zone), ['a1', 'self'], 'only zone a; no zone is out');
  assert.equal(zone.headers?.['x-meshreg-scope'], 'zone');
  assert.deepEqual(nodes(await h.call('/v1/catalog/service/web?node-meta=zone:b')), ['b1']);
  assert.deepEqual(nodes(await h.call('/v1/health/service/web?node-meta=zone:a&node-meta=region:r1')), [
    'a1',
    'self',
  ]);
  assert.deepEqual(nodes(await h.call('/v1/health/service/web?node-meta=zone:a&node-meta=region:r2')), []);
  assert.deepEqual(nodes(await h.call('/v1/health/service/web?near=_agent')), ['self', 'a1', 'b1', 'none']);
  for (const [url, field] of [
    ['/v1/health/service/web?scope=planet', 'scope'],
    ['/v1/health/service/web?near=b1', 'near'],
    ['/v1/catalog/service/web?node-meta=zone', 'node-meta'],
    ['/v1/catalog/service/web?node-meta=:a', 'node-meta'],
  ] as const) {
    const r = await h.call(url);
    assert.equal(r.status, 400, url);
    assert.equal((r.body as { error: { fields: { path: string }[] } }).error.fields[0]?.path, field, url);
  }
});

test('zones consul - scope zone on an agent without a zone is a 400 naming MESHREG_ZONE', async (t) => {
  const h = await agent(t, '');
  const r = await h.call('/v1/health/service/web?scope=zone');
  assert.equal(r.status, 400);
  assert.match(JSON.stringify(r.body), /MESHREG_ZONE/);
});

test('zones consul - the federated data centers and their copies come back from disk, not linked', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zones-cache-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'view-cache.jsonl');
  const hooks = {
    onWatch: () => undefined,
    onWatchCatalog: () => undefined,
    localInstances: () => [],
    onChanged: () => undefined,
  };
  const view = new ServiceView('id-self', hooks);
  const federation = new FederationView('dc1');
  const cache = new ViewCache(file, view, silentLogger, 0, federation);
  const now = Date.now();
  federation.apply({ type: 'datacenters', local: 'dc1', peers: [peer('dc2', ['web'], true, 5000)] }, now);
  cache.federationChanged();
  view.ensure('web@dc2');
  view.applyPush({
    type: 'push',
    service: 'web@dc2',
    version: 4,
    complete: true,
    instances: [inst('r', 'far', '')],
  });
  cache.changed('web@dc2');
  await cache.flush();

  const again = new ServiceView('id-self', hooks);
  const restored = new FederationView('dc1');
  assert.equal(await new ViewCache(file, again, silentLogger, 0, restored).restore(), 1);
  assert.deepEqual(restored.known(), ['dc1', 'dc2']);
  assert.equal(restored.peer('dc2')?.linked, false, 'not linked until the session says so');
  assert.equal(restored.peer('dc2')?.syncedAt, now - 5000);
  assert.deepEqual(restored.exporting('web'), ['dc2']);
  assert.equal(again.get('web@dc2')?.version, 4);
});

test('zones consul - any dc, scope, near and node-meta gives 200, 400 or 500 with a JSON or Consul text body', async (t) => {
  const h = await agent(t);
  await h.peers(peer('dc2', ['web']));
  await h.push('web', 1, [inst('w1', 'n1', 'a')]);
  await h.push('web@dc2', 1, [inst('r1', 'far', 'b')]);
  h.view.ensureCatalog();
  await send(h.dial, { type: 'catalog', version: 1, complete: true, services: { web: [] } });
  const value = fc.oneof(
    fc.constantFrom('', 'dc1', 'dc2', 'nope', 'zone', 'datacenter', 'global', '_agent', 'zone:a', ':', 'a:'),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
  );
  const param = fc.tuple(fc.constantFrom('dc', 'scope', 'near', 'node-meta'), value);
  const paths = [
    '/v1/health/service/web',
    '/v1/catalog/service/web',
    '/v1/catalog/services',
    '/v1/status/peers',
  ];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...paths), fc.array(param, { maxLength: 5 }), async (p, params) => {
      const q = new URLSearchParams(params);
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within 2 s: ${p}?${q.toString()}`));
        }, 2000);
      });
      const r = await Promise.race([h.call(`${p}?${q.toString()}`), hang]).finally(() => {
        clearTimeout(timer);
      });
      assert.ok([200, 400, 500].includes(r.status), `${r.status} for ${p}?${q.toString()}`);
      if (r.status === 500) assert.equal(r.text, NO_PATH_TO_DATACENTER);
      else assert.ok(r.body !== undefined || r.text !== undefined);
      if (r.status === 400) assert.match(JSON.stringify(r.body), /"path":"(dc|scope|near|node-meta)"/);
    }),
    { numRuns: 300 },
  );
});
