/**
 * The console's admin endpoints against real processes: `meshreg server` with every role in one
 * process and two agents, then the roles in separate processes; and a meta in this process with a
 * read-only and a write token. What the console shows must be what the registry holds, writes need
 * a write token and a reason and land in the audit log, and refused writes change nothing.
 */
import assert from 'node:assert/strict';
import httpm from 'node:http';
import { after, before, describe, test } from 'node:test';
import type {
  ConsoleAudit,
  ConsoleOverview,
  ConsoleServiceDetail,
  ConsoleServicePage,
  ConsoleAgentPage,
} from '../../proto/console.js';
import { CONSOLE_ANSWERS } from '../../proto/console-link.js';
import { silentLogger } from '../../proto/runtime/log.js';
import type { Decoded } from '../../proto/validate.js';
import type { AdminAuth, AdminCaller } from '../../control-plane/admin/ops-http.js';
import { MetaNode } from '../../control-plane/meta/meta-node.js';
import { EmbeddedStore } from '../../control-plane/meta/meta-store.js';
import { httpBase } from '../support/admin.js';
import { http, header, type JsonResponse } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'console-agent-token';
const ADMIN = 'console-admin-token';

function decoded<T>(decode: (raw: unknown) => Decoded<T>, r: JsonResponse): T {
  assert.equal(r.status, 200, r.text);
  const d = decode(r.body);
  if (!d.ok) assert.fail(`answer does not decode: ${JSON.stringify(d.errors)}`);
  return d.value;
}

/** An open event stream and the `changed` events it received. */
interface Stream {
  readonly status: number;
  readonly events: { parts: string[]; version: number }[];
  close(): void;
}

function openStream(url: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = httpm.get(url, { headers }, (res) => {
      const events: Stream['events'] = [];
      let buf = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (frame.startsWith('event: changed') && data !== undefined)
            events.push(JSON.parse(data) as Stream['events'][number]);
        }
      });
      res.on('error', () => undefined);
      resolve({ status: res.statusCode ?? 0, events, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

const auth = (token: string): Record<string, string> => ({
  authorization: `Bearer ${token}`,
  'content-type': 'application/json',
});

async function startAgent(
  session: string,
  name: string,
  cleanups: (() => Promise<void>)[],
): Promise<Started> {
  const { dir, cleanup } = await tempDir();
  cleanups.push(cleanup);
  return startMeshreg('agent', {
    MESHREG_TOKEN: TOKEN,
    MESHREG_AGENT_UPSTREAM: session,
    MESHREG_NODE_NAME: name,
    MESHREG_AGENT_DATA_DIR: dir,
  });
}

describe('console-api - roles in one process', () => {
  let server: Started;
  let meta = '';
  const agents: Started[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const agentUrl = (i: number): string => agents[i]?.addresses['agent'] ?? '';

  before(async () => {
    server = await startMeshreg('server', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_CONSOLE_MAX_STREAMS: '3',
    });
    meta = httpBase(server.addresses['meta'] ?? '');
    const session = server.addresses['session'] ?? '';
    agents.push(await startAgent(session, 'node-a', cleanups), await startAgent(session, 'node-b', cleanups));
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await server.stop();
    await Promise.all(cleanups.map((c) => c()));
  });

  const overview = async (headers: Record<string, string> = {}): Promise<ConsoleOverview> =>
    decoded(
      CONSOLE_ANSWERS.overview,
      await http('GET', `${meta}/admin/console/overview`, undefined, headers),
    );

  test('console-api - the overview lists every member, the slot table and the caller', async () => {
    const o = await waitFor('both agents connected', async () => {
      const v = await overview();
      return v.agents.connected === 2 && v.slots.slotCount > 0 ? v : undefined;
    });
    assert.deepEqual(o.members.map((m) => m.role).sort(), ['data', 'meta', 'session']);
    assert.ok(o.members.every((m) => m.up && m.reachable));
    assert.equal(o.slots.servers.length, 1);
    assert.equal(o.slots.servers[0]?.led, o.slots.slotCount, 'the one data server leads every slot');
    assert.ok(o.slots.epoch > 0);
    assert.equal(o.leader.self, true);
    assert.deepEqual(o.you, { name: 'anonymous', access: 'read' }, 'loopback without a token reads');
    assert.deepEqual((await overview(auth(ADMIN))).you, { name: 'admin', access: 'write' });
    const wrong = await http('GET', `${meta}/admin/console/overview`, undefined, auth('wrong'));
    assert.equal(wrong.status, 401, 'a wrong token is refused, not read as anonymous');
  });

  test('console-api - a registration through the Consul API appears in the services within 2 s', async () => {
    const stream = await openStream(`${meta}/admin/console/events`);
    try {
      assert.equal(stream.status, 200);
      await new Promise((r) => setTimeout(r, 600)); // the stream's first look at the signals
      const t0 = Date.now();
      const reg = await http('PUT', `${agentUrl(0)}/v1/agent/service/register`, {
        Name: 'shop',
        ID: 'shop-1',
        Port: 8080,
        Tags: ['v1'],
      });
      assert.equal(reg.status, 200, reg.text);
      const page = await waitFor(
        'shop listed',
        async () => {
          const p = decoded<ConsoleServicePage>(
            CONSOLE_ANSWERS.services,
            await http('GET', `${meta}/admin/console/services?filter=sho`),
          );
          return p.total === 1 ? p : undefined;
        },
        2000,
      );
      assert.ok(Date.now() - t0 < 2000);
      assert.deepEqual(page.services[0], {
        name: 'shop',
        instances: 1,
        passing: 1,
        warning: 0,
        critical: 0,
        draining: 0,
        zones: [],
        tags: ['v1'],
      });
      await waitFor('a changed event naming services', () =>
        stream.events.some((e) => e.parts.includes('services')),
      );
    } finally {
      stream.close();
    }
  });

  test('console-api - a failing check shows critical in the service detail', async () => {
    await http('PUT', `${agentUrl(0)}/v1/agent/service/register`, {
      Name: 'pay',
      ID: 'pay-1',
      Port: 9000,
      Check: { TTL: '30s', Status: 'passing' },
    });
    await waitFor('pay passing', async () => (await detail('pay')).instances[0]?.health === 'passing');
    const fail = await http('PUT', `${agentUrl(0)}/v1/agent/check/fail/service:pay-1?note=disk%20full`);
    assert.equal(fail.status, 200, fail.text);
    const d = await waitFor('pay critical', async () => {
      const v = await detail('pay');
      return v.instances[0]?.health === 'critical' ? v : undefined;
    });
    const i = d.instances[0];
    assert.equal(i?.node, 'node-a');
    assert.equal(i?.address, '127.0.0.1');
    assert.equal(i?.port, 9000);
    assert.equal(i?.checks[0]?.status, 'critical');
    assert.equal(i?.checks[0]?.output, 'disk full');
    assert.equal(d.deregister, false);
    assert.match(d.deregisterNote, /drain/);
  });

  const detail = async (name: string): Promise<ConsoleServiceDetail> =>
    decoded(CONSOLE_ANSWERS.service, await http('GET', `${meta}/admin/console/services/${name}`));

  test('console-api - a subscriber shows with the version it acknowledged', async () => {
    const watch = await http('GET', `${agentUrl(1)}/v1/health/service/shop`);
    assert.equal(watch.status, 200);
    const d = await waitFor('node-b acked shop', async () => {
      const v = await detail('shop');
      const s = v.subscribers.find((x) => x.node === 'node-b');
      return s !== undefined && s.ackedVersion === v.version ? v : undefined;
    });
    assert.ok(d.version > 0);
    const agentsPage = decoded<ConsoleAgentPage>(
      CONSOLE_ANSWERS.agents,
      await http('GET', `${meta}/admin/console/agents`),
    );
    assert.deepEqual(
      agentsPage.agents.map((a) => [a.node, a.offline]),
      [
        ['node-a', false],
        ['node-b', false],
      ],
    );
    assert.ok((agentsPage.agents[0]?.registrations ?? 0) >= 1);
    assert.ok((agentsPage.agents[1]?.subscriptions ?? 0) >= 1);
  });

  test('console-api - without a write token every write is refused and nothing changes', async () => {
    const before = await overview();
    const writes: [string, unknown][] = [
      ['/admin/console/drain/node', { node: 'node-a', reason: 'x' }],
      ['/admin/console/drain/instance', { node: 'node-a', id: 'shop-1', reason: 'x' }],
      ['/admin/switches/push', { stopped: true, reason: 'x' }],
      ['/admin/switches/client-off', { add: ['node-a'], reason: 'x' }],
      ['/admin/switches/publish-blacklist', { add: ['shop'], reason: 'x' }],
      ['/admin/switches/subscribe-blacklist', { add: ['shop'], reason: 'x' }],
      [`/admin/members/${encodeURIComponent(before.members[1]?.id ?? '')}/drain`, { reason: 'x' }],
      ['/admin/protection/release', { reason: 'x' }],
    ];
    for (const [path, body] of writes) {
      const r = await http('POST', `${meta}${path}`, body, { 'content-type': 'application/json' });
      assert.equal(r.status, 401, `${path}: ${r.text}`);
    }
    const r = await http('POST', `${meta}/admin/console/drain/node`, { node: 'node-a' }, auth(ADMIN));
    assert.equal(r.status, 400);
    assert.deepEqual((r.body as { error: { fields: { path: string }[] } }).error.fields[0]?.path, 'reason');
    const afterwards = await overview();
    assert.deepEqual(afterwards.push, before.push);
    assert.deepEqual(afterwards.clientOff, before.clientOff);
    assert.deepEqual(afterwards.publishBlacklist, before.publishBlacklist);
    assert.deepEqual(afterwards.drained, { nodes: [], instances: [] });
    assert.ok(afterwards.members.every((m) => !m.draining));
    const audit = decoded<ConsoleAudit>(
      CONSOLE_ANSWERS.audit,
      await http('GET', `${meta}/admin/console/audit`),
    );
    assert.deepEqual(
      audit.records.map((x) => [x.action, x.result]),
      [['node.drain', 'invalid_argument']],
      'only the admitted (but bad) write is recorded',
    );
  });

  test('console-api - an instance drain with the write token is audited and leaves discovery', async () => {
    const passing = async (): Promise<number> =>
      ((await http('GET', `${agentUrl(1)}/v1/health/service/shop?passing`)).body as unknown[]).length;
    await waitFor('node-b sees shop passing', async () => (await passing()) === 1);
    const r = await http(
      'POST',
      `${meta}/admin/console/drain/instance`,
      { node: 'node-a', id: 'shop-1', reason: 'hardware swap' },
      auth(ADMIN),
    );
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { nodes: [], instances: ['node-a/shop-1'] });
    await waitFor('node-b no longer routes to shop-1', async () => (await passing()) === 0);
    const d = await detail('shop');
    assert.equal(d.instances.length, 1, 'still registered');
    assert.equal(d.instances[0]?.draining, true);
    assert.equal(d.instances[0]?.drainedBy, 'instance');
    const audit = decoded<ConsoleAudit>(
      CONSOLE_ANSWERS.audit,
      await http('GET', `${meta}/admin/console/audit`),
    );
    const rec = audit.records[0];
    assert.equal(rec?.who, 'admin');
    assert.equal(rec?.action, 'instance.drain');
    assert.equal(rec?.target, 'node-a/shop-1');
    assert.equal(rec?.reason, 'hardware swap');
    assert.equal(rec?.result, 'ok');
    // Restored: back in discovery.
    const undo = { node: 'node-a', id: 'shop-1', drained: false, reason: 'swapped' };
    assert.equal((await http('POST', `${meta}/admin/console/drain/instance`, undo, auth(ADMIN))).status, 200);
    await waitFor('shop-1 routed to again', async () => (await passing()) === 1);
    // An existing write route is audited too, its reason optional.
    await http('POST', `${meta}/admin/switches/push`, { stopped: false }, auth(ADMIN));
    const last = decoded<ConsoleAudit>(
      CONSOLE_ANSWERS.audit,
      await http('GET', `${meta}/admin/console/audit?limit=1`),
    );
    assert.deepEqual(
      last.records.map((x) => [x.who, x.action, x.reason, x.result]),
      [['admin', 'push.resume', '', 'ok']],
    );
  });

  test('console-api - the event stream is bounded and answers only loopback or a token', async () => {
    const streams = await Promise.all([1, 2, 3].map(() => openStream(`${meta}/admin/console/events`)));
    try {
      assert.deepEqual(
        streams.map((s) => s.status),
        [200, 200, 200],
      );
      const extra = await http('GET', `${meta}/admin/console/events`);
      assert.equal(extra.status, 429);
      assert.equal((extra.body as { error: { code: string } }).error.code, 'limit_exceeded');
      const wrong = await http('GET', `${meta}/admin/console/events`, undefined, auth('nope'));
      assert.equal(wrong.status, 401);
    } finally {
      for (const s of streams) s.close();
    }
    await waitFor('a stream free again', async () => {
      const s = await openStream(`${meta}/admin/console/events`);
      s.close();
      return s.status === 200;
    });
  });

  test('console-api - /ui is served with security headers, and path tricks never leave it', async () => {
    const redirect = await http('GET', `${meta}/ui`);
    assert.equal(redirect.status, 301);
    assert.equal(header(redirect, 'location'), '/ui/');
    const page = await http('GET', `${meta}/ui/`);
    // Built by the console's own build step; without it the page says so with a 503.
    assert.ok(page.status === 200 || page.status === 503, String(page.status));
    assert.equal(header(page, 'content-security-policy'), "default-src 'self'");
    assert.equal(header(page, 'x-content-type-options'), 'nosniff');
    assert.equal(header(page, 'x-frame-options'), 'DENY');
    assert.equal(header(page, 'referrer-policy'), 'no-referrer');
    for (const trick of [
      '/ui/%2e%2e/%2e%2e/package.json',
      '/ui/..%2fpackage.json',
      '/ui/.env',
      '/ui/x/../../etc/passwd',
    ]) {
      const r = await http('GET', `${meta}${trick}`);
      assert.ok(!r.text.includes('"dependencies"') && !r.text.includes('root:'), trick);
      assert.ok([301, 400, 404, 503, 200].includes(r.status), `${trick}: ${r.status}`);
      if (r.status === 200) assert.match(header(r, 'content-type'), /text\/html/, `${trick} is the app page`);
    }
  });
});

describe('console-api - roles in separate processes', () => {
  const procs: Started[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let meta = '';
  let data: Started;

  before(async () => {
    const m = await startMeshreg('server', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_ROLES: 'meta',
    });
    procs.push(m);
    meta = httpBase(m.addresses['meta'] ?? '');
    const link = { MESHREG_TOKEN: TOKEN, MESHREG_META_URL: m.addresses['meta'] ?? '' };
    data = await startMeshreg('server', { ...link, MESHREG_ROLES: 'data', MESHREG_DATA_ID: 'data-1' });
    procs.push(data);
    const sessions = await Promise.all(
      ['s1', 's2'].map((id) =>
        startMeshreg('server', { ...link, MESHREG_ROLES: 'session', MESHREG_SESSION_ID: id }),
      ),
    );
    procs.push(...sessions);
    procs.push(await startAgent(sessions[0]?.addresses['session'] ?? '', 'far-a', cleanups));
    procs.push(await startAgent(sessions[1]?.addresses['session'] ?? '', 'far-b', cleanups));
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all(cleanups.map((c) => c()));
  });

  test('console-api - meta gathers agents and services from every session and data server', async () => {
    const o = await waitFor(
      'both sessions report their agent',
      async () => {
        const v = decoded<ConsoleOverview>(
          CONSOLE_ANSWERS.overview,
          await http('GET', `${meta}/admin/console/overview`),
        );
        return v.agents.connected === 2 && v.slots.slotCount > 0 ? v : undefined;
      },
      10_000,
    );
    assert.deepEqual(o.members.map((m) => `${m.role}:${m.reachable}`).sort(), [
      'data:true',
      'meta:true',
      'session:true',
      'session:true',
    ]);
    const agentsPage = decoded<ConsoleAgentPage>(
      CONSOLE_ANSWERS.agents,
      await http('GET', `${meta}/admin/console/agents`),
    );
    assert.deepEqual(
      agentsPage.agents.map((a) => [a.node, a.session.split('#')[0]]),
      [
        ['far-a', 's1'],
        ['far-b', 's2'],
      ],
    );
    const agentB = procs.find((p) => p.addresses['agent'] !== undefined && p === procs[procs.length - 1]);
    await http('PUT', `${agentB?.addresses['agent'] ?? ''}/v1/agent/service/register`, {
      Name: 'far',
      Port: 1,
    });
    await waitFor('far listed', async () => {
      const p = (await http('GET', `${meta}/admin/console/services?filter=far`)).body as ConsoleServicePage;
      return p.total === 1;
    });
  });

  test('console-api - a member that is down shows as such instead of holding the answer up', async () => {
    await data.stop('SIGKILL');
    const t0 = Date.now();
    const o = await waitFor('data shown down', async () => {
      const v = (await http('GET', `${meta}/admin/console/overview`)).body as ConsoleOverview;
      const d = v.members.find((m) => m.role === 'data');
      return d !== undefined && (!d.up || !d.reachable) ? v : undefined;
    });
    assert.ok(Date.now() - t0 < 5000, 'answered well before the lease ran out');
    assert.equal(o.members.filter((m) => m.role === 'session' && m.reachable).length, 2);
    const started = Date.now();
    const page = (await http('GET', `${meta}/admin/console/services`)).body as ConsoleServicePage;
    assert.ok(Date.now() - started < 3000, 'bounded');
    assert.deepEqual(page.unreachable, ['data-1']);
  });
});

describe('console-api - read and write tokens', () => {
  let node: MetaNode;
  let base = '';
  const callers: Record<string, AdminCaller> = {
    'read-secret': { name: 'dashboard', access: 'read' },
    'write-secret': { name: 'oncall', access: 'write' },
  };
  const policy: AdminAuth = { enabled: () => true, authenticate: (t) => callers[t] };

  before(async () => {
    node = new MetaNode({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      maxFrameBytes: 1024 * 1024,
      maxHelloBytes: 16 * 1024,
      callTimeoutMs: 2000,
      helloTimeoutMs: 2000,
      ops: { adminAuth: policy, adminRemote: false, scrape: undefined },
      leaseMs: 3000,
      warmupMs: 100,
      arrangeIntervalMs: 200,
      slotCount: 16,
      followers: 0,
      maxLeaderMoves: 16,
      logger: silentLogger,
      store: () => new EmbeddedStore(),
    });
    await node.start();
    base = `http://${node.address}`;
  });

  after(async () => {
    await node.stop();
  });

  test('console-api - a read-only token reads and cannot write; a write token writes as its name', async () => {
    const o = (await http('GET', `${base}/admin/console/overview`, undefined, auth('read-secret')))
      .body as ConsoleOverview;
    assert.deepEqual(o.you, { name: 'dashboard', access: 'read' });
    const body = { node: 'n1', reason: 'r' };
    const refused = await http('POST', `${base}/admin/console/drain/node`, body, auth('read-secret'));
    assert.equal(refused.status, 403);
    const ok = await http('POST', `${base}/admin/console/drain/node`, body, auth('write-secret'));
    assert.equal(ok.status, 200, ok.text);
    const audit = (await http('GET', `${base}/admin/console/audit`, undefined, auth('read-secret')))
      .body as ConsoleAudit;
    assert.deepEqual(
      audit.records.map((r) => [r.who, r.action, r.target, r.reason, r.result]),
      [['oncall', 'node.drain', 'n1', 'r', 'ok']],
    );
  });
});
