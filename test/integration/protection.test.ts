/**
 * Protection mode with real processes: a `meshreg server` and agents that really die (kill -9).
 * A third of the agents at once is more than the session may remove (15 %, at least one): one goes,
 * the others are held (still listed), `/health` is degraded and the metric says so; an operator
 * release then removes exactly the dead agents' instances. And the recovery path: held agents that
 * come back (same node, restarted) end the mode with nothing removed.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { admin, httpBase, scrape, value } from '../support/admin.js';
import { ctl } from '../support/ctl.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'protection-secret-token';
const ADMIN = 'protection-admin-token';
const SERVICE = 'guarded';
const PER_AGENT = 2;
const STARTUP_MS = 45_000;

interface Cluster {
  readonly server: Started;
  readonly agents: Started[];
  /** Starts (or restarts, with the same data folder and so the same node) agent `i`. */
  start(i: number): Promise<Started>;
}

async function cluster(t: TestContext, count: number, env: Record<string, string> = {}): Promise<Cluster> {
  const server = await startMeshreg('server', { MESHREG_TOKEN: TOKEN, MESHREG_ADMIN_TOKEN: ADMIN, ...env });
  t.after(() => server.stop());
  const dirs = await Promise.all(Array.from({ length: count }, () => tempDir()));
  t.after(() => Promise.all(dirs.map((d) => d.cleanup())));
  const agents: Started[] = [];
  const start = async (i: number): Promise<Started> => {
    const agent = await startMeshreg(
      'agent',
      {
        MESHREG_TOKEN: TOKEN,
        MESHREG_AGENT_UPSTREAM: server.addresses['session'] ?? '',
        MESHREG_NODE_NAME: `host-${i}`,
        MESHREG_AGENT_DATA_DIR: dirs[i]?.dir ?? '',
      },
      STARTUP_MS,
    );
    t.after(() => agent.stop('SIGKILL'));
    agents[i] = agent;
    return agent;
  };
  // One at a time: the machine is shared, and seven processes starting at once can be slow.
  for (let i = 0; i < count; i++) await start(i);
  for (const [i, a] of agents.entries()) {
    for (let k = 0; k < PER_AGENT; k++) {
      const r = await http('PUT', `${a.addresses['agent'] ?? ''}/v1/agent/service/register`, {
        Name: SERVICE,
        ID: `h${i}-${k}`,
        Port: 9000 + k,
      });
      assert.equal(r.status, 200);
    }
  }
  return { server, agents, start };
}

/** The instance IDs the agent lists for the service, sorted. */
async function listed(agent: Started): Promise<string[]> {
  const r = await http('GET', `${agent.addresses['agent'] ?? ''}/v1/health/service/${SERVICE}`);
  const ids = (r.body as { Service: { ID: string } }[]).map((e) => e.Service.ID);
  return ids.sort((a, b) => a.localeCompare(b));
}

const idsOf = (hosts: readonly number[]): string[] =>
  hosts
    .flatMap((i) => Array.from({ length: PER_AGENT }, (_, k) => `h${i}-${k}`))
    .sort((a, b) => a.localeCompare(b));

const sessionHttp = (c: Cluster): string => httpBase(c.server.addresses['session'] ?? '');

async function sessionHealth(c: Cluster): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await http('GET', `${sessionHttp(c)}/health`);
  return { status: r.status, body: r.body as Record<string, unknown> };
}

describe('protection mode', () => {
  test('protection - a third of the agents die at once: one goes, the rest is held and reported; a release removes exactly the dead ones', async (t) => {
    const c = await cluster(t, 6);
    const watcher = c.agents[0] as Started;
    await waitFor(
      'every instance is listed',
      async () => (await listed(watcher)).length === 6 * PER_AGENT,
      10_000,
    );

    const dead = [4, 5];
    await Promise.all(dead.map((i) => (c.agents[i] as Started).stop('SIGKILL')));
    const health = await waitFor(
      'the session turns degraded',
      async () => {
        const h = await sessionHealth(c);
        return h.body['status'] === 'degraded' ? h : undefined;
      },
      10_000,
    );
    assert.equal(health.status, 503);
    assert.match(String(health.body['reason']), /protection mode: 1 connections held/);
    // 15 % of 6 connections is 0: the floor lets one go; the other is held.
    const during = await waitFor(
      'one dead agent removed, the other held',
      async () => {
        const ids = await listed(watcher);
        return ids.length === 5 * PER_AGENT ? ids : undefined;
      },
      10_000,
    );
    const live = idsOf([0, 1, 2, 3]);
    for (const id of live) assert.ok(during.includes(id), `live instance ${id} listed`);
    const heldIds = during.filter((id) => !live.includes(id));
    assert.equal(heldIds.length, PER_AGENT, `one dead agent's instances held: ${heldIds.join(', ')}`);
    const metrics = await scrape(`${sessionHttp(c)}/metrics`);
    assert.equal(value(metrics, 'meshreg_protection_active', { role: 'session' }), 1);
    assert.equal(value(metrics, 'meshreg_protection_held', { role: 'session' }), 1);
    assert.match(c.server.logs(), /protection mode: too many removals at once; holding them/);

    // Still held a while later: nothing is removed because time passes.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await listed(watcher), during);

    const env = { MESHREG_CTL_META: c.server.addresses['meta'] ?? '', MESHREG_ADMIN_TOKEN: ADMIN };
    const status = await ctl(['--json', 'protection'], env);
    assert.equal(status.code, 0, status.stderr);
    const roles = (JSON.parse(status.stdout) as { protection: { role: string; held: string[] }[] })
      .protection;
    assert.deepEqual(roles.map((r) => [r.role, r.held.length]).sort(), [
      ['data', 0],
      ['meta', 0],
      ['session', 1],
    ]);
    const released = await ctl(['protection', 'release'], env);
    assert.equal(released.code, 0, released.stderr);
    assert.match(released.stdout, /session/);
    await waitFor('exactly the dead agents are gone', async () => {
      const ids = await listed(watcher);
      return ids.length === live.length && ids.every((id, i) => id === live[i]);
    });
    const after = await sessionHealth(c);
    assert.equal(after.status, 200);
    assert.equal(after.body['status'], 'ok');
    const again = await admin('GET', `${sessionHttp(c)}/admin/protection`, ADMIN);
    assert.deepEqual((again.body as { held: string[]; released: number }).held, []);
    assert.equal((again.body as { released: number }).released, 1);
  });

  test('protection - held agents that come back end the mode with nothing removed', async (t) => {
    // No floor: any silent removal beyond 15 % is held, so one agent of three is held.
    const c = await cluster(t, 3, { MESHREG_PROTECTION_MIN_REMOVALS: '0' });
    const watcher = c.agents[0] as Started;
    await waitFor(
      'every instance is listed',
      async () => (await listed(watcher)).length === 3 * PER_AGENT,
      10_000,
    );
    await c.agents[2]?.stop('SIGKILL');
    await waitFor(
      'the session holds the dead agent',
      async () => (await sessionHealth(c)).status === 503,
      10_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await listed(watcher), idsOf([0, 1, 2]), 'the dead agent is still listed');

    await c.start(2);
    await waitFor('the mode ends by itself', async () => (await sessionHealth(c)).status === 200, 10_000);
    // The old connection ends like a replaced one; the instances stay, now from the new connection.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await listed(watcher), idsOf([0, 1, 2]));
    const p = await admin('GET', `${sessionHttp(c)}/admin/protection`, ADMIN);
    assert.deepEqual(p.body && (p.body as { active: boolean; released: number }).active, false);
    assert.equal((p.body as { released: number }).released, 0, 'nothing was released by hand');
    assert.match(c.server.logs(), /protection mode ended: every held item came back/);
  });
});
