/**
 * Data centers end to end, as an application sees them through its agent: three complete control
 * planes (`meshreg server` with MESHREG_DATACENTER dc1, dc2, dc3) federated dc1 ⇄ dc2 ⇄ dc3, and real
 * agents (two in dc1, in zones a and b; one in dc2; one in dc3) read over their Consul HTTP API.
 *
 * Exports: dc1 exports `web` to dc2 (not `secret`); dc2 exports its own `web` to dc1 and to dc3; dc3
 * exports nothing. So dc3 may see dc2's `web` but never dc1's (no relay), and the link loss test kills
 * dc1 with SIGKILL, then brings it back on the same ports.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { header, http, type JsonResponse } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = randomBytes(12).toString('hex');
const DIGEST_MS = 1000;

interface Dc {
  readonly name: string;
  readonly peers: readonly string[];
  readonly exports: string;
  readonly ports: { session: number; meta: number; data: number };
  server?: Started;
}

interface HealthEntry {
  readonly Node: {
    readonly Node: string;
    readonly Datacenter: string;
    readonly Meta: Record<string, string>;
  };
  readonly Service: { readonly ID: string; readonly Service: string };
}

const ids = (r: JsonResponse): string[] =>
  (r.body as HealthEntry[]).map((e) => e.Service.ID).sort((a, b) => a.localeCompare(b));

describe('federation between data centers', () => {
  const dcs = new Map<string, Dc>();
  const agents = new Map<string, Started>();
  const cleanups: (() => Promise<void>)[] = [];
  let tokenFile = '';

  const dc = (name: string): Dc => {
    const d = dcs.get(name);
    if (d === undefined) throw new Error(`no ${name}`);
    return d;
  };
  const base = (agent: string): string => agents.get(agent)?.addresses['agent'] ?? '';
  const get = (agent: string, p: string): Promise<JsonResponse> => http('GET', `${base(agent)}${p}`);

  const startServer = async (d: Dc): Promise<Started> => {
    d.server = await startMeshreg(
      'server',
      {
        MESHREG_TOKEN: TOKEN,
        MESHREG_DATACENTER: d.name,
        MESHREG_SESSION_PORT: String(d.ports.session),
        MESHREG_META_PORT: String(d.ports.meta),
        MESHREG_DATA_PORT: String(d.ports.data),
        MESHREG_FEDERATION_PEERS: d.peers.map((p) => `${p}=ws://127.0.0.1:${dc(p).ports.session}`).join(';'),
        MESHREG_FEDERATION_TOKEN_FILE: tokenFile,
        MESHREG_FEDERATION_EXPORTS: d.exports,
        MESHREG_FEDERATION_DIGEST_MS: String(DIGEST_MS),
        MESHREG_LINK_RETRY_INITIAL_MS: '50',
        MESHREG_LINK_RETRY_MAX_MS: '300',
      },
      30_000,
    );
    return d.server;
  };

  const startAgent = async (name: string, d: Dc, zone: string, datacenter = d.name): Promise<Started> => {
    const dir = await tempDir();
    cleanups.push(dir.cleanup);
    const a = await startMeshreg('agent', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_AGENT_UPSTREAM: `127.0.0.1:${d.ports.session}`,
      MESHREG_NODE_NAME: name,
      MESHREG_DATACENTER: datacenter,
      MESHREG_ZONE: zone,
      MESHREG_REGION: `${d.name}-region`,
      MESHREG_AGENT_DATA_DIR: dir.dir,
      MESHREG_AGENT_VIEW_CACHE_WRITE_MS: '20',
    });
    agents.set(name, a);
    return a;
  };

  const register = async (agent: string, service: string, id: string, port: number): Promise<void> => {
    const r = await http('PUT', `${base(agent)}/v1/agent/service/register`, {
      Name: service,
      ID: id,
      Address: '127.0.0.1',
      Port: port,
    });
    assert.equal(r.status, 200, r.text);
  };

  before(async () => {
    const dir = await tempDir();
    cleanups.push(dir.cleanup);
    tokenFile = path.join(dir.dir, 'federation-token');
    await writeFile(tokenFile, randomBytes(16).toString('hex'), { mode: 0o600 });
    const ports = async (): Promise<Dc['ports']> => ({
      session: await freePort(),
      meta: await freePort(),
      data: await freePort(),
    });
    dcs.set('dc1', { name: 'dc1', peers: ['dc2'], exports: 'dc2=web', ports: await ports() });
    dcs.set('dc2', { name: 'dc2', peers: ['dc1', 'dc3'], exports: 'dc1=web;dc3=web', ports: await ports() });
    dcs.set('dc3', { name: 'dc3', peers: ['dc2'], exports: '', ports: await ports() });
    await Promise.all([...dcs.values()].map((d) => startServer(d)));
    await Promise.all([
      startAgent('a1', dc('dc1'), 'a'),
      startAgent('a2', dc('dc1'), 'b'),
      startAgent('b1', dc('dc2'), 'a'),
      startAgent('c1', dc('dc3'), 'a'),
    ]);
    await register('a1', 'web', 'web-a1', 8001);
    await register('a2', 'web', 'web-a2', 8002);
    await register('a1', 'secret', 'secret-a1', 8003);
    await register('b1', 'web', 'web-b1', 8004);
    await waitFor(
      'web in both zones at a1',
      async () => ids(await get('a1', '/v1/health/service/web')).length === 2,
    );
  });

  after(async () => {
    await Promise.all([...agents.values()].map((a) => a.stop()));
    await Promise.all([...dcs.values()].map((d) => d.server?.stop() ?? Promise.resolve(0)));
    await Promise.all(cleanups.map((c) => c()));
  });

  test('zones - scope zone answers only the caller zone, datacenter both; entries carry the real data center and zone', async () => {
    const zone = await get('a1', '/v1/health/service/web?scope=zone');
    assert.equal(zone.status, 200, zone.text);
    assert.deepEqual(ids(zone), ['web-a1']);
    const inB = await get('a2', '/v1/health/service/web?scope=zone');
    assert.deepEqual(ids(inB), ['web-a2']);
    const all = await get('a1', '/v1/health/service/web?scope=datacenter');
    assert.deepEqual(ids(all), ['web-a1', 'web-a2']);
    assert.deepEqual(
      ids(await get('a1', '/v1/health/service/web')),
      ['web-a1', 'web-a2'],
      'datacenter is the default',
    );
    for (const e of all.body as HealthEntry[]) {
      assert.equal(e.Node.Datacenter, 'dc1');
      assert.equal(e.Node.Meta['zone'], e.Service.ID === 'web-a1' ? 'a' : 'b');
      assert.equal(e.Node.Meta['region'], 'dc1-region');
    }
    const filtered = await get('a2', '/v1/health/service/web?node-meta=zone:a');
    assert.deepEqual(ids(filtered), ['web-a1']);
  });

  test('federation - an exported service shows in dc2 under ?dc=dc1 within 2 s of its registration, and only there', async () => {
    // The app in dc2 watches dc1's web first (a blocking client would), then dc1 registers.
    await waitFor(
      'dc1 web at b1',
      async () => ids(await get('b1', '/v1/health/service/web?dc=dc1')).length === 2,
    );
    const t0 = performance.now();
    await register('a2', 'web', 'web-a2-new', 8005);
    await waitFor(
      'the new instance at b1',
      async () => ids(await get('b1', '/v1/health/service/web?dc=dc1')).includes('web-a2-new'),
      5000,
      10,
    );
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `visible in dc2 after ${ms.toFixed(0)} ms`);
    const remote = await get('b1', '/v1/health/service/web?dc=dc1');
    for (const e of remote.body as HealthEntry[]) assert.equal(e.Node.Datacenter, 'dc1');
    assert.equal(header(remote, 'x-consul-knownleader'), 'true');
    // Remote data is only for those who ask: dc2's own list holds dc2's instances only.
    assert.deepEqual(ids(await get('b1', '/v1/health/service/web')), ['web-b1']);
    const cat = await get('b1', '/v1/catalog/services?dc=dc1');
    assert.equal(cat.status, 200, cat.text);
    assert.ok('web' in (cat.body as Record<string, unknown>));
  });

  test('federation - an unexported service never appears in another data center, not even after digest rounds', async () => {
    const first = await get('b1', '/v1/health/service/secret?dc=dc1');
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.body, []);
    await new Promise((r) => setTimeout(r, DIGEST_MS * 2.5));
    assert.deepEqual((await get('b1', '/v1/health/service/secret?dc=dc1')).body, []);
    const cat = await get('b1', '/v1/catalog/services?dc=dc1');
    assert.ok(!('secret' in (cat.body as Record<string, unknown>)), cat.text);
    // And its own data center sees it, of course.
    assert.deepEqual(ids(await get('a2', '/v1/health/service/secret')), ['secret-a1']);
  });

  test('federation - nothing is relayed: dc3 sees what dc2 exports of its own, never dc1 data', async () => {
    await waitFor(
      'dc2 web at c1',
      async () => ids(await get('c1', '/v1/health/service/web?dc=dc2')).length === 1,
    );
    await new Promise((r) => setTimeout(r, DIGEST_MS * 1.5));
    const viaDc2 = await get('c1', '/v1/health/service/web?dc=dc2');
    assert.deepEqual(ids(viaDc2), ['web-b1'], 'dc2 exports its own web only');
    const dc1 = await get('c1', '/v1/health/service/web?dc=dc1');
    assert.equal(dc1.status, 500, 'dc3 has no path to dc1');
    assert.equal(dc1.text.trim(), 'No path to datacenter');
    const global = await get('c1', '/v1/health/service/web?scope=global');
    assert.deepEqual(ids(global), ['web-b1']);
  });

  test("data centers - ?dc=unknown is Consul's error, and /v1/catalog/datacenters lists the known ones", async () => {
    const r = await get('b1', '/v1/health/service/web?dc=nowhere');
    assert.equal(r.status, 500);
    assert.equal(r.text.trim(), 'No path to datacenter');
    const c = await get('b1', '/v1/catalog/service/web?dc=nowhere');
    assert.equal(c.status, 500);
    const list = await get('b1', '/v1/catalog/datacenters');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, ['dc2', 'dc1', 'dc3']);
    assert.deepEqual((await get('a1', '/v1/catalog/datacenters')).body, ['dc1', 'dc2']);
  });

  test('data centers - scope global at dc1 adds the copies of dc2, each entry with its own data center', async () => {
    await waitFor('dc2 web at a1', async () =>
      ids(await get('a1', '/v1/health/service/web?scope=global')).includes('web-b1'),
    );
    const r = await get('a1', '/v1/health/service/web?scope=global');
    const byId = new Map((r.body as HealthEntry[]).map((e) => [e.Service.ID, e.Node.Datacenter]));
    assert.equal(byId.get('web-b1'), 'dc2');
    assert.equal(byId.get('web-a1'), 'dc1');
    const bad = await get('a1', '/v1/health/service/web?scope=planet');
    assert.equal(bad.status, 400);
    assert.match(bad.text, /scope/);
  });

  test('xDS - an Envoy in dc1 zone a gets its zone at priority 0, zone b at 1, and dc2 at 2 with scope global only', async () => {
    interface Group {
      readonly locality: { readonly region?: string; readonly zone?: string };
      readonly priority?: number;
      readonly lb_endpoints: unknown[];
    }
    const layout = async (metadata: Record<string, string>): Promise<string[]> => {
      const r = await http('POST', `${base('a1')}/v3/discovery:endpoints`, {
        node: { id: 'envoy-a', locality: { region: 'dc1-region', zone: 'a' }, metadata },
        resource_names: ['web'],
      });
      assert.equal(r.status, 200, r.text);
      const groups = (r.body as { resources: { endpoints: Group[] }[] }).resources[0]?.endpoints ?? [];
      return groups
        .map((g) => `${g.locality.region ?? ''}/${g.locality.zone ?? ''}:${String(g.priority ?? 0)}`)
        .sort();
    };
    await waitFor('dc2 at priority 2', async () =>
      (await layout({ 'meshreg.scope': 'global' })).includes('dc2/a:2'),
    );
    assert.deepEqual(await layout({ 'meshreg.scope': 'global' }), [
      'dc1-region/a:0',
      'dc1-region/b:1',
      'dc2/a:2',
    ]);
    assert.deepEqual(
      await layout({}),
      ['dc1-region/a:0', 'dc1-region/b:1'],
      'datacenter scope: no remote data',
    );
    assert.deepEqual(await layout({ 'meshreg.scope': 'zone' }), ['dc1-region/a:0']);
  });

  test('data centers - an agent of another data center is refused by the session with 4015', async () => {
    const stray = await startAgent('stray', dc('dc1'), 'a', 'dc9');
    await waitFor('the refusal in its logs', () => /wrong_datacenter|4015/.test(stray.logs()), 10_000);
    const r = await get('a1', '/v1/health/service/web');
    assert.ok(!(r.body as HealthEntry[]).some((e) => e.Node.Node === 'stray'));
    await stray.stop();
    agents.delete('stray');
  });

  test('link loss - dc1 killed: dc2 keeps serving its last copy marked stale, its own data untouched; a change made meanwhile converges after the link is back', async () => {
    const d1 = dc('dc1');
    const before = ids(await get('b1', '/v1/health/service/web?dc=dc1'));
    assert.ok(before.length >= 2, before.join(','));
    await d1.server?.stop('SIGKILL');
    // dc2 notices the link is gone and marks dc1's copies stale, keeping them.
    await waitFor(
      'stale marks on dc1 reads at b1',
      async () =>
        header(await get('b1', '/v1/health/service/web?dc=dc1'), 'x-consul-knownleader') === 'false',
      15_000,
      100,
    );
    const stale = await get('b1', '/v1/health/service/web?dc=dc1');
    assert.equal(stale.status, 200);
    assert.deepEqual(ids(stale), before, 'nothing emptied by the link loss');
    assert.equal(header(stale, 'x-cache'), 'HIT');
    assert.match(header(stale, 'age'), /^\d+$/);
    const status = await get('b1', '/v1/meshreg/sync-status');
    const peers =
      (status.body as { datacenters?: { peers?: { name: string; stale: boolean }[] } }).datacenters?.peers ??
      [];
    assert.equal(peers.find((p) => p.name === 'dc1')?.stale, true, status.text);
    // dc2's own data and reads are untouched.
    const local = await get('b1', '/v1/health/service/web');
    assert.deepEqual(ids(local), ['web-b1']);
    assert.equal(header(local, 'x-consul-knownleader'), 'true');
    // dc1's agent keeps its host's registrations and accepts a new one while its control plane is down.
    await register('a1', 'web', 'web-late', 8006);
    await new Promise((r) => setTimeout(r, DIGEST_MS));
    assert.deepEqual(ids(await get('b1', '/v1/health/service/web?dc=dc1')), before, 'still the last copy');

    await startServer(d1);
    const back = performance.now();
    // dc1's agents re-send; dc2's importer reconnects; the digest (or a notice) brings web-late.
    await waitFor(
      'web-late at b1',
      async () => ids(await get('b1', '/v1/health/service/web?dc=dc1')).includes('web-late'),
      15_000,
      50,
    );
    const ms = performance.now() - back;
    const fresh = await get('b1', '/v1/health/service/web?dc=dc1');
    assert.equal(header(fresh, 'x-consul-knownleader'), 'true');
    // Reconnecting (link retry ≤ 300 ms, agents' backoff ≤ 500 ms, the data warm-up) plus one digest interval.
    assert.ok(ms < DIGEST_MS + 4000, `converged ${ms.toFixed(0)} ms after dc1 was back`);
  });
});
