/**
 * `meshreg ctl` against a real dev process: tables for people, JSON for scripts, clear failures; and
 * against a canned server, how it reports answers it cannot decode.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cannedAdmin, ctl } from '../support/ctl.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const ADMIN = 'ctl-admin';

describe('ctl', () => {
  let dev: Started;
  let cleanup: () => Promise<void> = () => Promise.resolve();
  let env: Record<string, string> = {};

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    dev = await startMeshreg('dev', { MESHREG_ADMIN_TOKEN: ADMIN, MESHREG_AGENT_DATA_DIR: tmp.dir });
    env = { MESHREG_CTL_META: dev.addresses['meta'] ?? '', MESHREG_ADMIN_TOKEN: ADMIN };
    await http('PUT', `${dev.addresses['agent'] ?? ''}/v1/agent/service/register`, { Name: 'web', Port: 80 });
  });

  after(async () => {
    await dev.stop();
    await cleanup();
  });

  test('ctl - --help lists the commands', async () => {
    const r = await ctl(['--help'], env);
    assert.equal(r.code, 0);
    for (const c of [
      'members',
      'slots',
      'service',
      'connections',
      'push stop',
      'client-off',
      'blacklist',
      'drain',
      'overview',
      'service-detail',
      'agents',
      'audit',
      'drain-node',
      '--reason',
    ])
      assert.ok(r.stdout.includes(c), c);
  });

  test('ctl - members as a table and as JSON', async () => {
    const table = await ctl(['members'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+ROLE\s+CONNECTED/);
    assert.match(table.stdout, /\bdata\b/);
    const json = await ctl(['--json', 'members'], env);
    const body = JSON.parse(json.stdout) as { members: { role: string }[] };
    assert.deepEqual(body.members.map((m) => m.role).sort(), ['data', 'session']);
  });

  test('ctl - a service on each replica, and the connections of each session', async () => {
    const svc = await waitFor('web on its replica', async () => {
      const r = await ctl(['--json', 'service', 'web'], env);
      const b = JSON.parse(r.stdout) as { replicas: { role: string; instances: number }[] };
      return b.replicas[0]?.instances === 1 ? b : undefined;
    });
    assert.equal(svc.replicas[0]?.role, 'leader');
    const conns = await ctl(['connections'], env);
    assert.match(conns.stdout, /127\.0\.0\.1/);
  });

  test('ctl - switches round trip', async () => {
    const stop = await ctl(['--json', 'push', 'stop', '--allow', '10.0.0.7'], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(JSON.parse(stop.stdout), {
      ...JSON.parse(stop.stdout),
      pushStopped: true,
      pushAllow: ['10.0.0.7'],
    });
    const resume = await ctl(['--json', 'push', 'resume'], env);
    assert.equal((JSON.parse(resume.stdout) as { pushStopped: boolean }).pushStopped, false);
    const bl = await ctl(['blacklist', 'publish', 'add', 'legacy'], env);
    assert.match(bl.stdout, /publishBlacklist\s+legacy/);
  });

  test('ctl - failures are clear and exit non-zero', async () => {
    const noToken = await ctl(['members'], { ...env, MESHREG_ADMIN_TOKEN: '' });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /401 unauthorized/);
    const usage = await ctl(['blacklist', 'nope'], env);
    assert.equal(usage.code, 2);
    const bad = await ctl(['blacklist', 'publish', 'add', 'not a name'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /add\[0\]/);
  });

  test('ctl - the console views: overview, services, service-detail, agents', async () => {
    const o = await ctl(['overview'], env);
    assert.equal(o.code, 0, o.stderr);
    assert.match(o.stdout, /^you: admin \(write\)/m);
    assert.match(o.stdout, /^ID\s+ROLE\s+UP/m);
    assert.match(o.stdout, /^agents: 1 connected, 0 offline$/m);
    const json = JSON.parse((await ctl(['--json', 'overview'], env)).stdout) as {
      members: { role: string }[];
    };
    assert.deepEqual(json.members.map((m) => m.role).sort(), ['data', 'meta', 'session']);
    const services = await waitFor('web in the console list', async () => {
      const r = await ctl(['services', '--filter', 'we'], env);
      return /^web\s+1\s+1\s+0\s+0/m.test(r.stdout) ? r : undefined;
    });
    assert.match(services.stdout, /^1 services/);
    const bad = await ctl(['services', '--limit', '9999'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /limit: must be an integer 1\.\.500/);
    const detail = await ctl(['service-detail', 'web'], env);
    assert.equal(detail.code, 0, detail.stderr);
    assert.match(detail.stdout, /^service web, version \d+/);
    assert.match(detail.stdout, /:80\s+passing\s+false/);
    const agents = await ctl(['--json', 'agents'], env);
    const page = JSON.parse(agents.stdout) as { total: number; agents: { offline: boolean }[] };
    assert.equal(page.total, 1);
    assert.equal(page.agents[0]?.offline, false);
  });

  test('ctl - writes carry --reason into the audit log; console drains require it', async () => {
    const missing = await ctl(['drain-node', 'some-node'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--reason/);
    const drained = await ctl(['drain-node', 'some-node', '--reason', 'kernel upgrade'], env);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /drained nodes: some-node/);
    const restored = await ctl(['undrain-node', 'some-node', '--reason', 'done'], env);
    assert.match(restored.stdout, /drained nodes: \(none\)/);
    assert.equal((await ctl(['client-on', '10.9.9.9', '--reason', 'cleanup'], env)).code, 0);
    const audit = JSON.parse((await ctl(['--json', 'audit', '--limit', '3'], env)).stdout) as {
      records: { who: string; action: string; target: string; reason: string }[];
    };
    assert.deepEqual(
      audit.records.map((r) => [r.who, r.action, r.target, r.reason]),
      [
        ['admin', 'client-off.edit', '-10.9.9.9', 'cleanup'],
        ['admin', 'node.drain', 'some-node (restore)', 'done'],
        ['admin', 'node.drain', 'some-node', 'kernel upgrade'],
      ],
    );
    const table = await ctl(['audit'], env);
    assert.match(table.stdout, /^AT\s+WHO\s+ACTION\s+TARGET\s+REASON\s+RESULT/);
  });

  test('ctl - an error answer prints its status and code and exits 1', async () => {
    const drain = await ctl(['drain', 'no-such-member'], env);
    assert.equal(drain.code, 1);
    assert.equal(drain.stdout, '');
    assert.match(drain.stderr, /\/drain: 404 not_found: no member "no-such-member"/);
    const svc = await ctl(['service', 'not a name'], env);
    assert.equal(svc.code, 1);
    assert.match(svc.stderr, /: 400 invalid_argument: service: must be a service name/);
  });
});

const MEMBER = {
  id: 'data-a',
  role: 'data',
  url: 'ws://127.0.0.1:1/v1/data-link',
  http: 'http://127.0.0.1:1',
  connected: true,
  leaseLeftMs: 100,
  draining: false,
};
const DATUM = { dataId: 'a', slot: 1, state: 'ready', epoch: 1, key: 'web', version: 7, instances: [] };

describe('ctl against a server that answers wrongly', () => {
  test('ctl - an answer it cannot decode is an error naming the field, or the status and text', async (t) => {
    const admin = await cannedAdmin({
      '/admin/members': {
        status: 200,
        text: JSON.stringify({ members: [{ ...MEMBER, role: 'meta', leaseLeftMs: 'soon' }] }),
      },
      '/admin/slots': { status: 200, text: 'epoch 3' },
      '/admin/switches': { status: 502, text: '<html>Bad Gateway</html>' },
      '/admin/members/data-a/drain': {
        status: 409,
        text: JSON.stringify({ error: { code: 'teapot', message: 'short and stout' } }),
      },
    });
    t.after(admin.close);
    const env = { MESHREG_CTL_META: admin.url, MESHREG_ADMIN_TOKEN: 'canned' };
    const members = await ctl(['members'], env);
    assert.equal(members.code, 1);
    assert.equal(members.stdout, '');
    assert.match(
      members.stderr,
      /GET \S+\/admin\/members: unexpected answer: members\[0\]\.role: must be one of data, session; members\[0\]\.leaseLeftMs: /,
    );
    const slots = await ctl(['slots'], env);
    assert.equal(slots.code, 1);
    assert.match(slots.stderr, /\/admin\/slots: 200: not JSON: epoch 3/);
    const switches = await ctl(['switches'], env);
    assert.equal(switches.code, 1);
    assert.match(switches.stderr, /\/admin\/switches: 502: <html>Bad Gateway<\/html>/);
    // An error code this ctl does not know is not trusted: the answer is shown as it came.
    const drain = await ctl(['drain', 'data-a'], env);
    assert.equal(drain.code, 1);
    assert.match(drain.stderr, /\/drain: 409: \{"error":\{"code":"teapot"/);
  });

  test('ctl - a replica that answers wrongly is reported in its row and the others still print', async (t) => {
    const admin = await cannedAdmin({
      '/admin/services/web': {
        status: 200,
        text: JSON.stringify({
          service: 'web',
          slot: 1,
          epoch: 1,
          replicas: [
            { id: 'a', role: 'leader', http: '{base}/a' },
            { id: 'b', role: 'follower', http: '{base}/b' },
          ],
        }),
      },
      '/a/admin/datums/web': { status: 200, text: JSON.stringify(DATUM) },
      '/b/admin/datums/web': { status: 200, text: JSON.stringify({ ...DATUM, version: 'new' }) },
    });
    t.after(admin.close);
    const env = { MESHREG_CTL_META: admin.url, MESHREG_ADMIN_TOKEN: 'canned' };
    const json = await ctl(['--json', 'service', 'web'], env);
    assert.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout) as {
      replicas: { replica: string; version?: number; error?: string }[];
    };
    assert.deepEqual(
      body.replicas.map((r) => [r.replica, r.version]),
      [
        ['a', 7],
        ['b', undefined],
      ],
    );
    assert.match(body.replicas[1]?.error ?? '', /unexpected answer: version: must be an integer/);
    const table = await ctl(['service', 'web'], env);
    assert.match(table.stdout, /^a\s+leader\s+ready\s+7\s+0\s*$/m);
    assert.match(table.stdout, /^b\s+follower\s+.*unexpected answer: version/m);
  });
});
