/**
 * The agent without its control plane: reads go on from the local view and the disk cache with
 * Consul's stale markers, registrations are accepted and synced when the control plane is back, an
 * agent restart restores the cache, and a corrupt cache file does not stop the agent.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { http, header } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'offline-token';

describe('agent offline', () => {
  let server: Started | undefined;
  let agentA: Started;
  let agentB: Started;
  let dirB = '';
  const cleanups: (() => Promise<void>)[] = [];
  const ports = { session: 0, meta: 0, data: 0 };

  const startServer = async (): Promise<Started> =>
    startMeshreg('server', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_SESSION_PORT: String(ports.session),
      MESHREG_META_PORT: String(ports.meta),
      MESHREG_DATA_PORT: String(ports.data),
      MESHREG_DATA_WARMUP_MS: '500',
    });
  const startAgent = (name: string, dir: string): Promise<Started> =>
    startMeshreg('agent', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_AGENT_UPSTREAM: `127.0.0.1:${ports.session}`,
      MESHREG_NODE_NAME: name,
      MESHREG_AGENT_DATA_DIR: dir,
      MESHREG_AGENT_VIEW_CACHE_WRITE_MS: '20',
    });
  const count = async (agent: Started, service: string): Promise<number> =>
    ((await http('GET', `${agent.addresses['agent'] ?? ''}/v1/health/service/${service}`)).body as unknown[])
      .length;

  before(async () => {
    ports.session = await freePort();
    ports.meta = await freePort();
    ports.data = await freePort();
    server = await startServer();
    const a = await tempDir();
    const b = await tempDir();
    cleanups.push(a.cleanup, b.cleanup);
    dirB = b.dir;
    agentA = await startAgent('a', a.dir);
    agentB = await startAgent('b', b.dir);
    await http('PUT', `${agentA.addresses['agent'] ?? ''}/v1/agent/service/register`, {
      Name: 'web',
      ID: 'web-1',
      Port: 80,
    });
    await waitFor('web at B', async () => (await count(agentB, 'web')) === 1);
  });

  after(async () => {
    await Promise.all([agentA.stop(), agentB.stop(), server?.stop()]);
    await Promise.all(cleanups.map((c) => c()));
  });

  test('offline - reads go on from the local view, marked stale the Consul way', async () => {
    await server?.stop('SIGKILL');
    server = undefined;
    const b = agentB.addresses['agent'] ?? '';
    await waitFor(
      'B notices',
      async () => header(await http('GET', `${b}/v1/health/service/web`), 'x-consul-knownleader') === 'false',
    );
    const r = await http('GET', `${b}/v1/health/service/web`);
    assert.equal(r.status, 200);
    assert.equal((r.body as unknown[]).length, 1, 'the list is not emptied by the outage');
    assert.equal(header(r, 'x-cache'), 'HIT');
    assert.match(header(r, 'age'), /^\d+$/);
    assert.equal(header(r, 'x-consul-knownleader'), 'false');
    const leader = await http('GET', `${b}/v1/status/leader`);
    assert.equal(leader.body, '');
  });

  test('offline - a registration is accepted and waits for the control plane', async () => {
    const a = agentA.addresses['agent'] ?? '';
    const r = await http('PUT', `${a}/v1/agent/service/register`, { Name: 'api', ID: 'api-1', Port: 81 });
    assert.equal(r.status, 200);
    const st = (await http('GET', `${a}/v1/meshreg/sync-status`)).body as {
      connected: boolean;
      services: { ID: string; InSync: boolean }[];
    };
    assert.equal(st.connected, false);
    assert.equal(st.services.find((s) => s.ID === 'api-1')?.InSync, false);
  });

  test('offline - an agent restart restores its cached views', async () => {
    await agentB.stop();
    agentB = await startAgent('b', dirB);
    const r = await http('GET', `${agentB.addresses['agent'] ?? ''}/v1/health/service/web`);
    assert.equal((r.body as unknown[]).length, 1);
    assert.equal(header(r, 'x-cache'), 'HIT');
  });

  test('offline - a corrupt cache file is set aside and the agent starts anyway', async () => {
    await agentB.stop();
    await writeFile(path.join(dirB, 'view-cache.jsonl'), '{"savedAt": 1, "services": [tru\n');
    agentB = await startAgent('b', dirB);
    assert.match(agentB.logs(), /view cache unreadable; set aside/);
    assert.ok((await readdir(dirB)).some((f) => f.startsWith('view-cache.jsonl.corrupt-')));
    const r = await http('GET', `${agentB.addresses['agent'] ?? ''}/v1/agent/services`);
    assert.equal(r.status, 200);
  });

  test('offline - when the control plane returns, what was registered meanwhile appears everywhere', async () => {
    server = await startServer();
    await waitFor('api at B', async () => (await count(agentB, 'api')) === 1, 15_000);
    await waitFor('web at B', async () => (await count(agentB, 'web')) === 1, 15_000);
    const st = (await http('GET', `${agentA.addresses['agent'] ?? ''}/v1/meshreg/sync-status`)).body as {
      services: { InSync: boolean }[];
    };
    assert.ok(st.services.every((s) => s.InSync));
    const r = await http('GET', `${agentB.addresses['agent'] ?? ''}/v1/health/service/api`);
    assert.equal(header(r, 'x-consul-knownleader'), 'true');
    assert.equal(header(r, 'x-cache'), '');
  });
});
