/**
 * Zones through the Consul API, with real processes: one `meshreg server` of data center `east`
 * and two agents in zones `a` and `b`, each registering `web`. Reads on the zone-a agent: scope
 * zone returns its zone only, datacenter both; `?node-meta=zone:a`; `?near=_agent`; `Datacenter` is
 * MESHREG_DATACENTER; `?dc=nope` is Consul's 500; `/v1/catalog/datacenters`; and hostile values of
 * the new parameters over real HTTP get a 400 naming the parameter or the 500 text.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, header, type JsonResponse } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'zones-consul-token';
const DC = 'east';

interface HealthEntry {
  Node: { Node: string; Datacenter: string; Meta: Record<string, string> };
  Service: { ID: string };
}

describe('zones consul', () => {
  let server: Started;
  const agents: Started[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let a = '';

  const nodes = (r: JsonResponse): string[] => (r.body as HealthEntry[]).map((e) => e.Node.Node);

  before(async () => {
    server = await startMeshreg('server', { MESHREG_TOKEN: TOKEN, MESHREG_DATACENTER: DC });
    for (const zone of ['a', 'b']) {
      const { dir, cleanup } = await tempDir();
      cleanups.push(cleanup);
      agents.push(
        await startMeshreg('agent', {
          MESHREG_TOKEN: TOKEN,
          MESHREG_AGENT_UPSTREAM: server.addresses['session'] ?? '',
          MESHREG_NODE_NAME: `node-${zone}`,
          MESHREG_AGENT_DATA_DIR: dir,
          MESHREG_DATACENTER: DC,
          MESHREG_ZONE: zone,
          MESHREG_REGION: 'r1',
        }),
      );
    }
    a = agents[0]?.addresses['agent'] ?? '';
    for (const [i, agent] of agents.entries()) {
      const put = await http('PUT', `${agent.addresses['agent'] ?? ''}/v1/agent/service/register`, {
        Name: 'web',
        ID: `web-${String(i)}`,
        Address: '127.0.0.1',
        Port: 8000 + i,
      });
      assert.equal(put.status, 200);
    }
    await waitFor(
      'both instances of web seen by the zone-a agent',
      async () => nodes(await http('GET', `${a}/v1/health/service/web`)).length === 2,
      15_000,
    );
  });

  after(async () => {
    await Promise.all(agents.map((x) => x.stop()));
    await server.stop();
    await Promise.all(cleanups.map((c) => c()));
  });

  test('zones consul - scope zone returns the caller zone only, datacenter (the default) every zone', async () => {
    const zone = await http('GET', `${a}/v1/health/service/web?scope=zone`);
    assert.equal(zone.status, 200);
    assert.deepEqual(nodes(zone), ['node-a']);
    assert.equal(header(zone, 'x-meshreg-scope'), 'zone');
    const dc = await http('GET', `${a}/v1/health/service/web?scope=datacenter`);
    assert.deepEqual(nodes(dc), ['node-a', 'node-b']);
    assert.deepEqual(nodes(await http('GET', `${a}/v1/health/service/web`)), ['node-a', 'node-b']);
  });

  test('zones consul - Datacenter is MESHREG_DATACENTER and Node.Meta carries zone and region', async () => {
    const r = await http('GET', `${a}/v1/health/service/web`);
    const entries = r.body as HealthEntry[];
    assert.deepEqual(
      entries.map((e) => [e.Node.Node, e.Node.Datacenter, e.Node.Meta]),
      [
        ['node-a', DC, { zone: 'a', region: 'r1' }],
        ['node-b', DC, { zone: 'b', region: 'r1' }],
      ],
    );
    const catalog = await http('GET', `${a}/v1/catalog/service/web`);
    assert.deepEqual(
      (catalog.body as { Datacenter: string; NodeMeta: Record<string, string> }[]).map((e) => [
        e.Datacenter,
        e.NodeMeta['zone'],
      ]),
      [
        [DC, 'a'],
        [DC, 'b'],
      ],
    );
  });

  test('zones consul - ?node-meta=zone:X filters on the node zone', async () => {
    const b = await http('GET', `${a}/v1/catalog/service/web?node-meta=zone:b`);
    assert.deepEqual(
      (b.body as { Node: string }[]).map((e) => e.Node),
      ['node-b'],
    );
    assert.deepEqual(nodes(await http('GET', `${a}/v1/health/service/web?node-meta=zone:a`)), ['node-a']);
    assert.deepEqual(nodes(await http('GET', `${a}/v1/health/service/web?node-meta=zone:c`)), []);
  });

  test('zones consul - ?near=_agent puts the agent own node first', async () => {
    const b = agents[1]?.addresses['agent'] ?? '';
    assert.deepEqual(nodes(await http('GET', `${b}/v1/health/service/web?near=_agent`)), [
      'node-b',
      'node-a',
    ]);
    assert.deepEqual(nodes(await http('GET', `${a}/v1/health/service/web?near=_agent`)), [
      'node-a',
      'node-b',
    ]);
  });

  test('zones consul - ?dc=nope is HTTP 500 No path to datacenter; the own dc reads as default', async () => {
    const nope = await http('GET', `${a}/v1/health/service/web?dc=nope`);
    assert.equal(nope.status, 500);
    assert.equal(nope.text, 'No path to datacenter');
    assert.equal((await http('GET', `${a}/v1/catalog/services?dc=nope`)).status, 500);
    assert.deepEqual(nodes(await http('GET', `${a}/v1/health/service/web?dc=${DC}`)), ['node-a', 'node-b']);
  });

  test('zones consul - /v1/catalog/datacenters lists the agent data center', async () => {
    const r = await http('GET', `${a}/v1/catalog/datacenters`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, [DC]);
    const status = await http('GET', `${a}/v1/meshreg/sync-status`);
    assert.deepEqual((status.body as { datacenters: { local: string } }).datacenters.local, DC);
  });

  test('zones consul - hostile dc, scope, near and node-meta over HTTP: a 400 naming it or the 500 text', async () => {
    const cases: [string, number, string][] = [
      ['scope=%00', 400, 'scope'],
      ['scope=GLOBAL', 400, 'scope'],
      ['near=node-b', 400, 'near'],
      [`node-meta=${'k'.repeat(600)}:v`, 400, 'node-meta'],
      ['node-meta=novalue', 400, 'node-meta'],
      [Array.from({ length: 65 }, () => 'node-meta=zone:a').join('&'), 400, 'node-meta'],
      [`dc=${'d'.repeat(5000)}`, 500, ''],
      ['dc=%C3%A9&near=_agent', 500, ''],
      ['dc=east&scope=global', 400, 'scope'],
    ];
    for (const [q, status, field] of cases) {
      const r = await http('GET', `${a}/v1/health/service/web?${q}`);
      assert.equal(r.status, status, q.slice(0, 80));
      if (status === 500) assert.equal(r.text, 'No path to datacenter');
      else assert.match(r.text, new RegExp(`"path":"${field}"`));
    }
    // Still serving.
    assert.equal((await http('GET', `${a}/v1/health/service/web`)).status, 200);
  });
});
