/**
 * The operator switches on a real cluster (meta, two data servers and two sessions as separate
 * processes, an agent on the first session, a protocol-level subscriber on each session): pushes
 * stop and resume, blacklists refuse with `forbidden`, a drained session hands its agent to the
 * other session and exits, a drained data server hands its slots over and exits. Nothing is lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { admin, httpBase } from '../support/admin.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { RawSubscriber } from '../support/raw-subscriber.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'switch-token';
const ADMIN = 'switch-admin';
const ENV = {
  MESHREG_TOKEN: TOKEN,
  MESHREG_ADMIN_TOKEN: ADMIN,
  MESHREG_SLOT_COUNT: '16',
  MESHREG_META_WARMUP_MS: '500',
  MESHREG_DATA_WARMUP_MS: '200',
};

describe('switches', () => {
  const procs: Started[] = [];
  const byName = new Map<string, Started>();
  const subs: RawSubscriber[] = [];
  let cleanup: () => Promise<void> = () => Promise.resolve();
  const meta = (): string => httpBase(byName.get('meta')?.addresses['meta'] ?? '');
  const agent = (): string => byName.get('agent')?.addresses['agent'] ?? '';
  const sessionUrl = (n: string): string => byName.get(n)?.addresses['session'] ?? '';
  const start = async (name: string, command: string, env: Record<string, string>): Promise<Started> => {
    const p = await startMeshreg(command, { ...ENV, ...env });
    procs.push(p);
    byName.set(name, p);
    return p;
  };
  const post = async (path: string, body: unknown): Promise<void> => {
    const r = await admin('POST', `${meta()}${path}`, ADMIN, body);
    assert.ok(r.status < 300, `${path}: ${r.status} ${r.text}`);
  };
  /** Waits until every session applies the switches meta holds now. */
  const applied = async (): Promise<void> => {
    const want = ((await admin('GET', `${meta()}/admin/switches`, ADMIN)).body as { version: number })
      .version;
    for (const s of ['s1', 's2']) {
      if (byName.get(s)?.child.exitCode !== null) continue;
      await waitFor(`${s} applies switches v${want}`, async () => {
        const r = await admin('GET', `${httpBase(sessionUrl(s))}/admin/switches`, ADMIN);
        return (r.body as { version: number }).version === want;
      });
    }
  };
  /** Once a subscriber saw the service, its list never went empty again. */
  const neverEmptied = (sub: RawSubscriber | undefined): boolean => {
    const obs = sub?.observations ?? [];
    const first = obs.findIndex((o) => o.visible > 0);
    return first >= 0 && obs.slice(first).every((o) => o.visible > 0);
  };
  const agentCount = async (service: string): Promise<number> =>
    ((await http('GET', `${agent()}/v1/health/service/${service}`)).body as unknown[]).length;
  const register = async (name: string, id: string): Promise<void> => {
    const r = await http('PUT', `${agent()}/v1/agent/service/register`, { Name: name, ID: id, Port: 80 });
    assert.equal(r.status, 200);
  };

  before(async () => {
    const m = await start('meta', 'server', { MESHREG_ROLES: 'meta' });
    const metaUrl = m.addresses['meta'] ?? '';
    for (const id of ['data-1', 'data-2'])
      await start(id, 'server', { MESHREG_ROLES: 'data', MESHREG_DATA_ID: id, MESHREG_META_URL: metaUrl });
    for (const id of ['s1', 's2'])
      await start(id, 'server', {
        MESHREG_ROLES: 'session',
        MESHREG_SESSION_ID: id,
        MESHREG_META_URL: metaUrl,
      });
    await waitFor(
      'slots led by both data servers',
      async () => {
        const r = await admin('GET', `${meta()}/admin/slots`, ADMIN);
        return Object.keys((r.body as { leaders: Record<string, number> }).leaders).length === 2;
      },
      10_000,
    );
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    await start('agent', 'agent', {
      MESHREG_AGENT_UPSTREAM: sessionUrl('s1'),
      MESHREG_AGENT_DATA_DIR: tmp.dir,
      MESHREG_AGENT_FULL_SYNC_INTERVAL_MS: '500',
      MESHREG_NODE_NAME: 'host-a',
    });
    for (const s of ['s1', 's2']) subs.push(new RawSubscriber(sessionUrl(s), TOKEN, ['web']));
    await register('web', 'web-1');
    await waitFor('both subscribers see web-1', () => subs.every((s) => s.count('web') === 1), 10_000);
  });

  after(async () => {
    for (const s of subs) s.close();
    for (const p of procs.reverse()) await p.stop();
    await cleanup();
  });

  test('switches - pushes stop, subscribers keep their list, and resume with the current state', async () => {
    await post('/admin/switches/push', { stopped: true });
    await applied();
    const seen = subs.map((s) => s.observations.length);
    await register('web', 'web-2');
    await register('web', 'web-3');
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(
      subs.map((s) => s.observations.length),
      seen,
      'no push while stopped',
    );
    assert.ok(
      subs.every((s) => s.count('web') === 1),
      'subscribers keep their last list',
    );
    await post('/admin/switches/push', { stopped: false });
    await waitFor('subscribers get the current state', () => subs.every((s) => s.count('web') === 3));
    for (const s of subs) {
      const mine = s.observations.slice(seen[subs.indexOf(s)]);
      assert.equal(mine.length, 1, 'one push of the current state, not one per change');
    }
  });

  test('switches - blacklisted names are refused with forbidden', async () => {
    await post('/admin/switches/publish-blacklist', { add: ['secret'] });
    await post('/admin/switches/subscribe-blacklist', { add: ['hidden'] });
    await applied();
    await register('secret', 'secret-1');
    const status = await waitFor('the registration is refused', async () => {
      const r = await http('GET', `${agent()}/v1/meshreg/sync-status`);
      const svc = (
        r.body as { services: { ID: string; Refused?: { code: string; message: string } }[] }
      ).services.find((x) => x.ID === 'secret-1');
      return svc?.Refused;
    });
    assert.equal(status.code, 'forbidden');
    assert.match(status.message, /blacklisted/);
    const read = await http('GET', `${agent()}/v1/health/service/hidden`);
    assert.equal(read.status, 403);
    assert.equal((read.body as { error: { code: string } }).error.code, 'forbidden');
    await post('/admin/switches/publish-blacklist', { remove: ['secret'] });
    await waitFor('the registration lands once the name is allowed again', async () => {
      const r = await http('GET', `${agent()}/v1/meshreg/sync-status`);
      return (r.body as { services: { ID: string; InSync: boolean }[] }).services.find(
        (x) => x.ID === 'secret-1',
      )?.InSync;
    });
  });

  test('switches - a drained session hands its agent to the other session and exits', async () => {
    const members = (await admin('GET', `${meta()}/admin/members`, ADMIN)).body as {
      members: { id: string; role: string }[];
    };
    const s1 = members.members.find((x) => x.id.startsWith('s1#'));
    assert.ok(s1 !== undefined);
    await post(`/admin/members/${encodeURIComponent(s1.id)}/drain`, {});
    const code = await byName.get('s1')?.exited;
    assert.equal(code, 0, 'the drained session exits cleanly');
    await waitFor('the agent is on s2', async () => {
      const r = await http('GET', `${agent()}/v1/status/leader`);
      return sessionUrl('s2').includes(r.body as string) && r.body !== '';
    });
    await waitFor('the agent re-synced', async () => {
      const r = await http('GET', `${agent()}/v1/meshreg/sync-status`);
      return (r.body as { services: { InSync: boolean }[] }).services.every((x) => x.InSync);
    });
    const s2sub = subs[1];
    assert.equal(s2sub?.count('web'), 3, 'nothing lost');
    assert.ok(neverEmptied(s2sub), 'the subscriber never lost its list');
    assert.equal(await agentCount('web'), 3);
  });

  test('switches - a drained data server hands over its slots, then exits; nothing lost', async () => {
    await post('/admin/members/data-1/drain', {});
    const code = await byName.get('data-1')?.exited;
    assert.equal(code, 0);
    const slots = (await admin('GET', `${meta()}/admin/slots`, ADMIN)).body as {
      leaders: Record<string, number>;
    };
    assert.deepEqual(Object.keys(slots.leaders), ['data-2']);
    await waitFor(
      'every service still served',
      async () => {
        for (const name of ['web', 'secret']) {
          const s = (await admin('GET', `${meta()}/admin/services/${name}`, ADMIN)).body as {
            replicas: { http: string }[];
          };
          const d = await admin('GET', `${s.replicas[0]?.http ?? ''}/admin/datums/${name}`, ADMIN);
          const datum = d.body as { state: string; instances: unknown[] };
          if (datum.state !== 'ready' || datum.instances.length !== (name === 'web' ? 3 : 1)) return false;
        }
        return true;
      },
      10_000,
    );
    const s2sub = subs[1];
    assert.ok(neverEmptied(s2sub), 'the subscriber never lost its list');
    assert.equal(s2sub?.count('web'), 3);
  });
});

describe('client-off', () => {
  test('switches - a client-off address loses its registrations and cannot re-register until reopened', async (t) => {
    const tmp = await tempDir();
    const dev = await startMeshreg('dev', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_AGENT_DATA_DIR: tmp.dir,
    });
    t.after(async () => {
      await dev.stop();
      await tmp.cleanup();
    });
    const agentUrl = dev.addresses['agent'] ?? '';
    const metaBase = httpBase(dev.addresses['meta'] ?? '');
    const dataBase = httpBase(dev.addresses['data'] ?? '');
    const held = async (name: string): Promise<number> =>
      ((await admin('GET', `${dataBase}/admin/datums/${name}`, ADMIN)).body as { instances: unknown[] })
        .instances.length;
    await http('PUT', `${agentUrl}/v1/agent/service/register`, { Name: 'api', Port: 1 });
    await waitFor('api registered', async () => (await held('api')) === 1);
    const off = await admin('POST', `${metaBase}/admin/switches/client-off`, ADMIN, { add: ['127.0.0.1'] });
    assert.equal(off.status, 200);
    await waitFor('its registration withdrawn at once', async () => (await held('api')) === 0);
    await http('PUT', `${agentUrl}/v1/agent/service/register`, { Name: 'late', Port: 2 });
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(await held('late'), 0, 'a switched-off agent cannot register');
    const status = await http('GET', `${agentUrl}/v1/meshreg/sync-status`);
    assert.equal((status.body as { connected: boolean }).connected, false);
    const on = await admin('POST', `${metaBase}/admin/switches/client-off`, ADMIN, { remove: ['127.0.0.1'] });
    assert.equal(on.status, 200);
    await waitFor(
      'both registrations back after reopening',
      async () => (await held('api')) === 1 && (await held('late')) === 1,
      10_000,
    );
  });
});
