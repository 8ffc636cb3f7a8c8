/**
 * Metrics after a known workload, and the admin API's guard: a real `meshreg dev` process, three
 * registrations and one protocol-level subscriber; then requests without, with a wrong, and with
 * the right token, and bad bodies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { admin, httpBase, scrape, value } from '../support/admin.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { RawSubscriber } from '../support/raw-subscriber.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'dev-token';
const ADMIN = 'admin-secret';

describe('metrics and admin api', () => {
  let dev: Started;
  let cleanup: () => Promise<void> = () => Promise.resolve();
  let sub: RawSubscriber | undefined;
  const agent = (): string => dev.addresses['agent'] ?? '';
  const session = (): string => httpBase(dev.addresses['session'] ?? '');
  const meta = (): string => httpBase(dev.addresses['meta'] ?? '');
  const data = (): string => httpBase(dev.addresses['data'] ?? '');

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    dev = await startMeshreg('dev', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_AGENT_DATA_DIR: tmp.dir,
    });
    // The counts below are exact: let the data server's warm-up (one version bump of everything) pass first.
    await waitFor('data warm-up over', async () => {
      const h = (await http('GET', `${data()}/health`)).body as { warming: boolean; migrating: number };
      return !h.warming && h.migrating === 0;
    });
  });

  after(async () => {
    sub?.close();
    await dev.stop();
    await cleanup();
  });

  test('metrics - counters after 3 registrations and 1 subscriber', async () => {
    for (const name of ['alpha', 'beta', 'gamma']) {
      const r = await http('PUT', `${agent()}/v1/agent/service/register`, { Name: name, Port: 8080 });
      assert.equal(r.status, 200);
    }
    await waitFor('3 publishers on the data server', async () => {
      return value(await scrape(`${data()}/metrics`), 'meshreg_data_publishers', { role: 'data' }) === 3;
    });
    sub = new RawSubscriber(dev.addresses['session'] ?? '', TOKEN, ['alpha']);
    await waitFor('the subscriber got alpha', () => sub?.count('alpha') === 1);
    const m = await waitFor('the push acknowledged', async () => {
      const s = await scrape(`${session()}/metrics`);
      return value(s, 'meshreg_push_pending') === 0 ? s : undefined;
    });
    assert.equal(value(m, 'meshreg_session_publishes_total'), 3);
    assert.equal(value(m, 'meshreg_session_publishers'), 3);
    assert.equal(value(m, 'meshreg_session_connections'), 2, 'the agent and the subscriber');
    assert.equal(value(m, 'meshreg_session_subscriptions'), 1);
    assert.equal(value(m, 'meshreg_push_sent_total'), 1);
    assert.equal(value(m, 'meshreg_push_failed_total'), 0);
    assert.equal(value(m, 'meshreg_data_datums', { role: 'data' }), 3);
    assert.equal(value(m, 'meshreg_data_publishes_total', { role: 'data' }), 3);
    assert.equal(value(m, 'meshreg_slot_table_leader_slots', { role: 'meta' }), 256);
    const a = await scrape(`${agent()}/v1/meshreg/metrics`);
    assert.equal(value(a, 'meshreg_agent_local_services'), 3);
    assert.equal(value(a, 'meshreg_agent_unsynced'), 0);
    assert.equal(value(a, 'meshreg_agent_confirms_total'), 3);
    assert.equal(value(a, 'meshreg_agent_upstream_state', { state: 'open' }), 1);
    assert.equal(value(a, 'meshreg_agent_cache_age_seconds'), 0);
  });

  test('metrics - a change pushed to the subscriber is one latency sample', async () => {
    const r = await http('PUT', `${agent()}/v1/agent/service/register`, {
      Name: 'alpha',
      ID: 'alpha-2',
      Port: 1,
    });
    assert.equal(r.status, 200);
    await waitFor('the subscriber got the second alpha', () => sub?.count('alpha') === 2);
    const m = await waitFor('two pushes counted', async () => {
      const s = await scrape(`${session()}/metrics`);
      return value(s, 'meshreg_push_sent_total') === 2 ? s : undefined;
    });
    assert.equal(value(m, 'meshreg_push_latency_ms_count'), 1);
  });

  test('admin api - refuses requests without the right token', async () => {
    const none = await http('GET', `${meta()}/admin/members`);
    assert.equal(none.status, 401);
    assert.deepEqual((none.body as { error: { code: string } }).error.code, 'unauthorized');
    const wrong = await admin('GET', `${meta()}/admin/members`, 'nope');
    assert.equal(wrong.status, 401);
    for (const base of [session(), data()]) {
      assert.equal((await http('GET', `${base}/admin/switches`)).status, 401);
    }
    const ok = await admin('GET', `${meta()}/admin/members`, ADMIN);
    assert.equal(ok.status, 200);
    const members = (ok.body as { members: { role: string; connected: boolean }[] }).members;
    assert.deepEqual(members.map((x) => x.role).sort(), ['data', 'session']);
    assert.ok(members.every((x) => x.connected));
  });

  test('admin api - bad input gets a 4xx naming the field', async () => {
    const push = await admin('POST', `${meta()}/admin/switches/push`, ADMIN, { stopped: 'yes' });
    assert.equal(push.status, 400);
    assert.match(push.text, /"path":"stopped"/);
    const bl = await admin('POST', `${meta()}/admin/switches/publish-blacklist`, ADMIN, {
      add: ['bad name!'],
    });
    assert.equal(bl.status, 400);
    assert.match(bl.text, /add\[0\]/);
    const json = await admin('POST', `${meta()}/admin/switches/client-off`, ADMIN, '{not json');
    assert.equal(json.status, 400);
    const svc = await admin('GET', `${data()}/admin/datums/${encodeURIComponent('no such!')}`, ADMIN);
    assert.equal(svc.status, 400);
    assert.match(svc.text, /"path":"service"/);
    const drain = await admin('POST', `${meta()}/admin/members/nobody/drain`, ADMIN);
    assert.equal(drain.status, 404);
    const last = (
      (await admin('GET', `${meta()}/admin/members`, ADMIN)).body as {
        members: { id: string; role: string }[];
      }
    ).members.find((x) => x.role === 'data');
    const refused = await admin(
      'POST',
      `${meta()}/admin/members/${encodeURIComponent(last?.id ?? '')}/drain`,
      ADMIN,
    );
    assert.equal(refused.status, 400, 'the last data server cannot be drained');
    assert.equal((await admin('GET', `${meta()}/admin/nothing`, ADMIN)).status, 404);
  });

  test('admin api - a service datum per replica', async () => {
    const s = await admin('GET', `${meta()}/admin/services/beta`, ADMIN);
    assert.equal(s.status, 200);
    const replicas = (s.body as { replicas: { role: string; http: string }[] }).replicas;
    assert.equal(replicas.length, 1);
    const d = await admin('GET', `${replicas[0]?.http ?? ''}/admin/datums/beta`, ADMIN);
    assert.equal(d.status, 200);
    const datum = d.body as { state: string; version: number; instances: unknown[] };
    assert.equal(datum.state, 'ready');
    assert.ok(datum.version > 0);
    assert.equal(datum.instances.length, 1);
  });
});

describe('admin api off', () => {
  test('admin api - without MESHREG_ADMIN_TOKEN it answers 403 and /metrics still works', async (t) => {
    const p = await startMeshreg('server', { MESHREG_TOKEN: TOKEN, MESHREG_ROLES: 'meta' });
    t.after(() => p.stop());
    const base = httpBase(p.addresses['meta'] ?? '');
    const r = await admin('GET', `${base}/admin/members`, 'anything');
    assert.equal(r.status, 403);
    assert.match(r.text, /MESHREG_ADMIN_TOKEN/);
    const m = await http('GET', `${base}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.text, /meshreg_slot_table_epoch/);
  });
});
