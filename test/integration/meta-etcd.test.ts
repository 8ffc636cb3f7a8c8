/**
 * Meta on etcd: three meta processes on one real etcd, two data servers, a session and two agents.
 * kill -9 the meta leader: another takes over within a bound, the table epoch keeps growing from where
 * it was, and registrations and pushes go on meanwhile. Then etcd itself freezes: the cluster keeps
 * serving, metas report degraded; when etcd is back, coordination resumes (a new data server gets slots).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'etcd-token';
/** Leadership lapses with its lease: TTL, plus the campaign's retry and one arrange round. */
const LEADER_TTL_S = 2;
const TAKEOVER_BOUND_MS = LEADER_TTL_S * 1000 + 3000;

interface MetaHealth {
  status: string;
  leader: boolean;
  epoch: number;
  slotTable?: { slots: { leader: string }[] };
}

const healthUrl = (ws: string): string => ws.replace('ws://', 'http://').replace(/\/v1\/.*$/, '/health');

describe('meta on etcd', () => {
  let etcd: TestEtcd;
  const metas: Started[] = [];
  const procs: Started[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let agentA = '';
  let agentB = '';
  let metaUrls = '';

  const env = (): Record<string, string> => ({
    MESHREG_TOKEN: TOKEN,
    MESHREG_META_STORE: 'etcd',
    MESHREG_ETCD_ENDPOINTS: etcd.endpoint,
    MESHREG_ETCD_LEASE_TTL_S: String(LEADER_TTL_S),
    MESHREG_META_WARMUP_MS: '300',
    MESHREG_META_LEASE_MS: '3000',
    MESHREG_SLOT_COUNT: '32',
    MESHREG_SLOT_MAX_LEADER_MOVES: '32',
  });
  const health = async (m: Started): Promise<MetaHealth | undefined> => {
    try {
      return (await http('GET', healthUrl(m.addresses['meta'] ?? ''))).body as MetaHealth;
    } catch {
      return undefined;
    }
  };
  const leaders = async (): Promise<Started[]> => {
    const out: Started[] = [];
    for (const m of metas) if ((await health(m))?.leader === true) out.push(m);
    return out;
  };
  const startData = async (id: string): Promise<Started> => {
    const p = await startMeshreg('server', {
      ...env(),
      MESHREG_ROLES: 'data',
      MESHREG_DATA_ID: id,
      MESHREG_META_URL: metaUrls,
    });
    procs.push(p);
    return p;
  };
  const count = async (agent: string, service: string): Promise<number> =>
    ((await http('GET', `${agent}/v1/health/service/${service}`)).body as unknown[]).length;

  before(async () => {
    etcd = await startEtcd();
    for (let i = 0; i < 3; i++) metas.push(await startMeshreg('server', { ...env(), MESHREG_ROLES: 'meta' }));
    procs.push(...metas);
    metaUrls = metas.map((m) => m.addresses['meta'] ?? '').join(',');
    await startData('data-1');
    await startData('data-2');
    const session = await startMeshreg('server', {
      ...env(),
      MESHREG_ROLES: 'session',
      MESHREG_META_URL: metaUrls,
    });
    procs.push(session);
    for (const name of ['a', 'b']) {
      const { dir, cleanup } = await tempDir();
      cleanups.push(cleanup);
      const p = await startMeshreg('agent', {
        MESHREG_TOKEN: TOKEN,
        MESHREG_AGENT_UPSTREAM: session.addresses['session'] ?? '',
        MESHREG_NODE_NAME: name,
        MESHREG_AGENT_DATA_DIR: dir,
      });
      procs.push(p);
      if (name === 'a') agentA = p.addresses['agent'] ?? '';
      else agentB = p.addresses['agent'] ?? '';
    }
    await waitFor(
      'one leader and a table over both data servers',
      async () => {
        const l = await leaders();
        const h = l[0] === undefined ? undefined : await health(l[0]);
        return (
          l.length === 1 &&
          (h?.slotTable?.slots.every((s) => s.leader === 'data-1' || s.leader === 'data-2') ?? false)
        );
      },
      20_000,
    );
    await http('PUT', `${agentA}/v1/agent/service/register`, { Name: 'web', ID: 'web-1', Port: 80 });
    await waitFor('web at B', async () => (await count(agentB, 'web')) === 1, 10_000);
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await etcd.stop();
    await Promise.all(cleanups.map((c) => c()));
  });

  test('etcd - kill -9 of the meta leader: another takes over in bounded time, epochs keep growing, service goes on', async () => {
    const [old] = await leaders();
    assert.ok(old !== undefined);
    const epochBefore = (await health(old))?.epoch ?? 0;
    await old.stop('SIGKILL');
    metas.splice(metas.indexOf(old), 1);
    const killedAt = Date.now();
    // Registrations and pushes do not need meta.
    await http('PUT', `${agentA}/v1/agent/service/register`, { Name: 'api', ID: 'api-1', Port: 81 });
    await waitFor('api at B during the takeover', async () => (await count(agentB, 'api')) === 1, 5000);
    await waitFor('a new leader', async () => (await leaders()).length === 1, TAKEOVER_BOUND_MS);
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs <= TAKEOVER_BOUND_MS, `takeover took ${tookMs} ms`);
    const [leader] = await leaders();
    assert.ok(leader !== undefined);
    assert.equal(
      (await health(leader))?.epoch,
      epochBefore,
      'the new leader continues from the stored table',
    );
    // A change of membership makes the new leader write the next table: its epoch is larger.
    await startData('data-3');
    await waitFor(
      'data-3 leads slots under a larger epoch',
      async () => {
        const h = await health(leader);
        return (
          (h?.epoch ?? 0) > epochBefore && (h?.slotTable?.slots.some((s) => s.leader === 'data-3') ?? false)
        );
      },
      15_000,
    );
  });

  test('etcd - with etcd frozen the cluster keeps serving and metas say degraded; then coordination resumes', async () => {
    etcd.pause();
    try {
      await waitFor(
        'metas report degraded',
        async () => {
          const hs = await Promise.all(metas.map((m) => health(m)));
          return hs.every((h) => h?.status === 'degraded');
        },
        10_000,
      );
      const res = await http('GET', healthUrl(metas[0]?.addresses['meta'] ?? ''));
      assert.equal(res.status, 503);
      await http('PUT', `${agentA}/v1/agent/service/register`, { Name: 'db', ID: 'db-1', Port: 82 });
      await waitFor('db at B while etcd is frozen', async () => (await count(agentB, 'db')) === 1, 5000);
    } finally {
      etcd.resume();
    }
    await waitFor(
      'metas healthy again',
      async () => {
        const hs = await Promise.all(metas.map((m) => health(m)));
        return hs.every((h) => h?.status === 'ok');
      },
      15_000,
    );
    await startData('data-4');
    await waitFor(
      'data-4 gets slots: coordination resumed',
      async () => {
        const l = await leaders();
        const h = l[0] === undefined ? undefined : await health(l[0]);
        return h?.slotTable?.slots.some((s) => s.leader === 'data-4') ?? false;
      },
      20_000,
    );
    assert.equal(await count(agentB, 'web'), 1, 'nothing was lost');
  });
});
