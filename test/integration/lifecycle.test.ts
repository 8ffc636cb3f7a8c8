/**
 * Graceful lifecycle with real processes: SIGTERM to an agent under load loses no acknowledged
 * registration (keep mode) or withdraws them all (deregister mode); SIGTERM to one of two sessions
 * moves its agents to the other with no list shrinking at a watcher; SIGTERM to one of two data
 * servers hands its slots over before exit; a process whose meta cannot answer still exits within
 * MESHREG_SHUTDOWN_TIMEOUT_MS. Every stopped process exits within its bound.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { admin, httpBase } from '../support/admin.js';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'lifecycle-token';
const ADMIN_TOKEN = 'lifecycle-admin-token';
/** The bound given to the processes under test; a stop must end well inside it. */
const SHUTDOWN_MS = 8_000;
const BOUND_ENV = { MESHREG_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS) };

/** Starts a process, stopped (SIGKILL if need be) and its folder removed after the test. */
async function start(t: TestContext, command: string, env: Record<string, string>): Promise<Started> {
  const p = await startMeshreg(command, { MESHREG_TOKEN: TOKEN, ...BOUND_ENV, ...env });
  t.after(() => p.stop('SIGKILL'));
  return p;
}

async function startAgent(
  t: TestContext,
  name: string,
  upstream: string,
  env: Record<string, string> = {},
  dir?: string,
): Promise<{ agent: Started; dir: string }> {
  let dataDir = dir;
  if (dataDir === undefined) {
    const tmp = await tempDir();
    t.after(tmp.cleanup);
    dataDir = tmp.dir;
  }
  const agent = await start(t, 'agent', {
    MESHREG_NODE_NAME: name,
    MESHREG_AGENT_UPSTREAM: upstream,
    MESHREG_AGENT_DATA_DIR: dataDir,
    ...env,
  });
  return { agent, dir: dataDir };
}

/** Sends SIGTERM and resolves with the exit code and how long the exit took. */
async function terminate(p: Started): Promise<{ code: number | string; ms: number }> {
  const started = Date.now();
  const code = await p.stop('SIGTERM');
  return { code, ms: Date.now() - started };
}

const ids = async (agent: Started, service: string): Promise<Set<string>> => {
  const r = await http('GET', `${agent.addresses['agent'] ?? ''}/v1/health/service/${service}`);
  return new Set((r.body as { Service: { ID: string } }[]).map((e) => e.Service.ID));
};

const register = (agent: Started, service: string, id: string, port: number) =>
  http('PUT', `${agent.addresses['agent'] ?? ''}/v1/agent/service/register`, {
    Name: service,
    ID: id,
    Port: port,
  });

/** Registers continuously from `clients` parallel loops until the agent stops answering. */
function registerUntilGone(agent: Started, service: string, clients: number): Promise<string[]> {
  const acked: string[] = [];
  let n = 0;
  const loop = async (): Promise<void> => {
    for (let i = 0; i < 100_000; i++) {
      const id = `${service}-${n++}`;
      try {
        const r = await register(agent, service, id, 10_000 + (n % 50_000));
        if (r.status === 200) acked.push(id);
      } catch {
        return;
      }
    }
  };
  return Promise.all(Array.from({ length: clients }, loop)).then(() => acked);
}

describe('lifecycle - agents', () => {
  // One server and one watching agent for the agent tests; a long client grace keeps a stopped
  // agent's registrations while it is away.
  let session = '';
  let watcher: Started;
  const cleanups: (() => Promise<unknown>)[] = [];
  before(async () => {
    const server = await startMeshreg('server', {
      MESHREG_TOKEN: TOKEN,
      ...BOUND_ENV,
      MESHREG_SESSION_CLIENT_GRACE_MS: '60000',
    });
    cleanups.push(() => server.stop('SIGKILL'));
    session = server.addresses['session'] ?? '';
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    watcher = await startMeshreg('agent', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_NODE_NAME: 'watching-host',
      MESHREG_AGENT_UPSTREAM: session,
      MESHREG_AGENT_DATA_DIR: tmp.dir,
    });
    cleanups.unshift(() => watcher.stop('SIGKILL'));
  });
  after(async () => {
    for (const c of cleanups) await c();
  });

  test('lifecycle - SIGTERM to an agent under load keeps every acknowledged registration', async (t) => {
    const { agent: loaded, dir } = await startAgent(t, 'loaded-host', session);

    const acked = registerUntilGone(loaded, 'load', 4);
    await waitFor('some registrations acknowledged', async () => (await ids(loaded, 'load')).size >= 40);
    const { code, ms } = await terminate(loaded);
    const done = await acked;
    assert.equal(code, 0, loaded.logs());
    assert.ok(ms < SHUTDOWN_MS, `exited after ${ms} ms`);
    assert.match(loaded.logs(), /"phase":"agent: shutdown mode keep"/);
    assert.ok(done.length >= 40, `${done.length} acknowledged`);

    // Meanwhile, another agent still sees every acknowledged registration.
    await waitFor(
      'every acknowledged registration visible at the watcher',
      async () => {
        const seen = await ids(watcher, 'load');
        return done.every((id) => seen.has(id));
      },
      10_000,
    );
    // And the restarted agent has every one of them from its disk.
    const { agent: back } = await startAgent(t, 'loaded-host', session, {}, dir);
    const services = (await http('GET', `${back.addresses['agent'] ?? ''}/v1/agent/services`)).body as Record<
      string,
      unknown
    >;
    const missing = done.filter((id) => services[id] === undefined);
    assert.deepEqual(missing, [], `lost after restart: ${missing.join(', ')}`);
  });

  test('lifecycle - an agent in deregister mode withdraws its registrations on SIGTERM', async (t) => {
    const { agent: leaving } = await startAgent(t, 'leaving-host', session, {
      MESHREG_AGENT_SHUTDOWN: 'deregister',
    });
    for (let i = 0; i < 20; i++)
      assert.equal((await register(leaving, 'gone', `gone-${i}`, 9000 + i)).status, 200);
    await waitFor('the watcher sees all 20', async () => (await ids(watcher, 'gone')).size === 20, 10_000);

    const { code, ms } = await terminate(leaving);
    assert.equal(code, 0, leaving.logs());
    assert.ok(ms < SHUTDOWN_MS, `exited after ${ms} ms`);
    // Withdrawn and confirmed before exit: not kept for the (60 s) client grace.
    await waitFor('the watcher sees none', async () => (await ids(watcher, 'gone')).size === 0, 3_000);
  });

  test('lifecycle - an agent in drain mode publishes its registrations as draining, then restarts with them', async (t) => {
    const drainMs = 1_500;
    const { agent: draining, dir } = await startAgent(t, 'draining-host', session, {
      MESHREG_AGENT_SHUTDOWN: 'drain',
      MESHREG_AGENT_DRAIN_MS: String(drainMs),
    });
    const passing = async (): Promise<number> =>
      (
        (await http('GET', `${watcher.addresses['agent'] ?? ''}/v1/health/service/drained?passing`))
          .body as unknown[]
      ).length;
    for (let i = 0; i < 10; i++)
      assert.equal((await register(draining, 'drained', `d-${i}`, 9000 + i)).status, 200);
    await waitFor('the watcher sees 10 passing', async () => (await passing()) === 10, 10_000);

    const stopping = terminate(draining);
    // While it drains: still listed, none passing, so traffic moves away.
    await waitFor('none passing at the watcher', async () => (await passing()) === 0, drainMs);
    assert.equal((await ids(watcher, 'drained')).size, 10);
    const { code, ms } = await stopping;
    assert.equal(code, 0, draining.logs());
    assert.ok(ms >= drainMs && ms < SHUTDOWN_MS, `exited after ${ms} ms`);
    // The disk kept them undrained: the restarted agent publishes them again.
    await startAgent(t, 'draining-host', session, { MESHREG_AGENT_SHUTDOWN: 'drain' }, dir);
    await waitFor('10 passing again after the restart', async () => (await passing()) === 10, 10_000);
  });
});

describe('lifecycle - servers', () => {
  test('lifecycle - SIGTERM to one of two sessions moves its agents, no watcher list shrinks', async (t) => {
    const core = await start(t, 'server', { MESHREG_ROLES: 'meta,data' });
    const metaUrl = core.addresses['meta'] ?? '';
    const s1 = await start(t, 'server', { MESHREG_ROLES: 'session', MESHREG_META_URL: metaUrl });
    const s2 = await start(t, 'server', { MESHREG_ROLES: 'session', MESHREG_META_URL: metaUrl });
    const first = s1.addresses['session'] ?? '';
    const upstream = `${first},${s2.addresses['session'] ?? ''}`;
    const { agent: publisher } = await startAgent(t, 'publishing-host', upstream);
    const { agent: watcher } = await startAgent(t, 'watching-host', upstream);
    const onFirst = async (a: Started): Promise<string> => {
      const h = (await http('GET', `${a.addresses['agent'] ?? ''}/v1/meshreg/health`)).body as {
        upstream: { session: string; connected: boolean };
      };
      return h.upstream.connected ? h.upstream.session : '';
    };
    const firstHost = new URL(first).host;
    await waitFor('both agents on the first session', async () =>
      (await onFirst(publisher)) === firstHost && (await onFirst(watcher)) === firstHost ? true : undefined,
    );
    for (let i = 0; i < 20; i++)
      assert.equal((await register(publisher, 'moving', `m-${i}`, 9000 + i)).status, 200);
    await waitFor('the watcher sees all 20', async () => (await ids(watcher, 'moving')).size === 20, 10_000);

    const counters = async (): Promise<{ pushesApplied: number }> =>
      (
        (await http('GET', `${watcher.addresses['agent'] ?? ''}/v1/meshreg/sync-status`)).body as {
          counters: { pushesApplied: number };
        }
      ).counters;
    const pushesBefore = (await counters()).pushesApplied;
    // The watcher's list, read continuously through the hand-over.
    const sizes: number[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        sizes.push((await ids(watcher, 'moving')).size);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const { code, ms } = await terminate(s1);
    assert.equal(code, 0, s1.logs());
    assert.ok(ms < SHUTDOWN_MS, `exited after ${ms} ms`);
    assert.match(s1.logs(), /"outcome":"drained"/);
    const secondHost = new URL(s2.addresses['session'] ?? '').host;
    await waitFor('both agents on the second session', async () =>
      (await onFirst(publisher)) === secondHost && (await onFirst(watcher)) === secondHost ? true : undefined,
    );
    // Some time on the new session: a late removal of the moved publisher would show here.
    await new Promise((r) => setTimeout(r, 1500));
    watching = false;
    await watch;
    assert.ok(sizes.length > 10, `${sizes.length} reads`);
    // Resumed by version on the new session: nothing unchanged was pushed again.
    assert.equal((await counters()).pushesApplied, pushesBefore);
    assert.ok(
      sizes.every((n) => n === 20),
      `the list changed: ${[...new Set(sizes)].join(',')}`,
    );
  });

  test('lifecycle - SIGTERM to one of two data servers hands its slots over before exit', async (t) => {
    const slots = { MESHREG_SLOT_COUNT: '32', MESHREG_SLOT_MAX_LEADER_MOVES: '32' };
    const core = await start(t, 'server', {
      ...slots,
      MESHREG_ROLES: 'meta,session',
      MESHREG_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    const metaUrl = core.addresses['meta'] ?? '';
    const data = { ...slots, MESHREG_ROLES: 'data', MESHREG_META_URL: metaUrl };
    const d1 = await start(t, 'server', { ...data, MESHREG_DATA_ID: 'data-one' });
    await start(t, 'server', { ...data, MESHREG_DATA_ID: 'data-two' });
    const slotsUrl = `${httpBase(metaUrl)}/admin/slots`;
    const leaders = async (): Promise<Record<string, number>> =>
      ((await admin('GET', slotsUrl, ADMIN_TOKEN)).body as { leaders: Record<string, number> }).leaders;
    await waitFor(
      'both data servers lead slots',
      async () => Object.keys(await leaders()).length === 2,
      10_000,
    );

    const { agent } = await startAgent(t, 'data-host', core.addresses['session'] ?? '');
    const services = Array.from({ length: 16 }, (_, i) => `held-${i}`);
    for (const [i, s] of services.entries())
      assert.equal((await register(agent, s, `${s}-a`, 9000 + i)).status, 200);
    const allListed = async (): Promise<boolean> => {
      for (const s of services) if ((await ids(agent, s)).size !== 1) return false;
      return true;
    };
    await waitFor('every service listed', allListed, 10_000);

    const { code, ms } = await terminate(d1);
    assert.equal(code, 0, d1.logs());
    assert.ok(ms < SHUTDOWN_MS, `exited after ${ms} ms`);
    assert.match(d1.logs(), /"outcome":"drained"/);
    // Handed over before the exit: the other server leads everything at once.
    assert.deepEqual(await leaders(), { 'data-two': 32 });
    assert.ok(await allListed(), 'an instance went missing');
  });

  test('lifecycle - a data server whose meta cannot answer still exits within the bound', async (t) => {
    const core = await start(t, 'server', { MESHREG_ROLES: 'meta,session' });
    const bound = 2_500;
    const data = await start(t, 'server', {
      MESHREG_ROLES: 'data',
      MESHREG_META_URL: core.addresses['meta'] ?? '',
      MESHREG_SHUTDOWN_TIMEOUT_MS: String(bound),
      MESHREG_LINK_CALL_TIMEOUT_MS: '30000',
    });
    await waitFor('the data server joined meta', async () => {
      const h = (await http('GET', `${httpBase(data.addresses['data'] ?? '')}/health`)).body as {
        metaConnected: boolean;
      };
      return h.metaConnected;
    });
    // Meta frozen: its sockets stay open, nothing answers.
    core.child.kill('SIGSTOP');
    t.after(() => core.child.kill('SIGCONT'));
    const { code, ms } = await terminate(data);
    assert.ok(ms < bound + 1_000, `exited after ${ms} ms (bound ${bound} ms)`);
    // The hand-over gave up in its share of the bound; whatever still waited on the frozen peer
    // was cut off by the bound, which exits 1 naming it.
    assert.match(data.logs(), /"phase":"data: hand slots over","durationMs":\d+\}/);
    if (code !== 0) {
      assert.equal(code, 1);
      assert.match(data.logs(), /"shutdown timed out; exiting with work pending".*"pending":\[\{"phase":"/);
    }
  });
});
