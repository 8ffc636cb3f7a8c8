/**
 * Backpressure on the agent link, end to end in memory: a session's `AgentConnection` and an agent's
 * `AgentSync` joined by a socket pair. The session asks to slow down; the agent keeps the link,
 * extends its liveness and holds its own non-urgent sends; a reader that stops reading is closed
 * with `slow_consumer` (4014) once its queue passes the limit.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { LocalServices, type ServiceDefinition } from '../../agent/local/local-services.js';
import { Liveness } from '../../agent/upstream/liveness.js';
import { AgentSync } from '../../agent/upstream/sync.js';
import type { SocketFactory } from '../../agent/upstream/connection.js';
import { ServiceView } from '../../agent/view/service-view.js';
import { AgentConnection } from '../../control-plane/session/agent-connection.js';
import { MAX_SLOW_DOWN_MS, PROTOCOL_VERSION, type Hello } from '../../proto/agent-link.js';
import { ERROR_TABLE } from '../../proto/errors.js';
import { frameText } from '../../proto/runtime/link-socket.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { VersionClock } from '../../proto/version.js';
import { FakeConnectionHost, memoryTransport } from '../support/fake-connection-host.js';
import { makeInstance, settle } from '../support/fixtures.js';
import { socketPair, type MemorySocket } from '../support/socket-pair.js';
import { waitFor } from '../support/wait.js';

const NODE = { nodeId: 'node-id-1', node: 'node-1', address: '10.0.0.1', zone: '', region: '' };

function def(id: string): ServiceDefinition {
  return {
    id,
    name: 'web',
    tags: [],
    address: '10.0.0.1',
    port: 8080,
    meta: {},
    weights: { passing: 1, warning: 1 },
    enableTagOverride: false,
  };
}

interface Linked {
  readonly sync: AgentSync;
  readonly local: LocalServices;
  readonly view: ServiceView;
  readonly host: FakeConnectionHost;
  /** The session's end of each connection the agent opened, in order. */
  readonly conns: AgentConnection[];
  /** The session's end of each connection (to send what a real session would not). */
  readonly sockets: MemorySocket[];
}

/** A real agent sync linked to a real session connection over an in-memory socket pair. */
function linked(t: TestContext, host = new FakeConnectionHost(), random = (): number => 0): Linked {
  const conns: AgentConnection[] = [];
  const sockets: MemorySocket[] = [];
  const connect: SocketFactory = () => {
    const { a, b } = socketPair();
    conns.push(new AgentConnection(`conn-${conns.length}`, memoryTransport(b), '127.0.0.1', 1, host));
    sockets.push(b);
    setImmediate(() => {
      a.open();
    });
    return a;
  };
  const local = new LocalServices(new VersionClock());
  const view = new ServiceView(NODE.nodeId, {
    onWatch: () => undefined,
    onWatchCatalog: () => undefined,
    localInstances: () => [],
    onChanged: () => undefined,
  });
  const sync = new AgentSync(local, view, NODE, {
    link: {
      urls: ['ws://session/v1/agent-link'],
      token: 'secret',
      connectTimeoutMs: 5000,
      maxFrameBytes: 1 << 20,
      backoff: { initialMs: 50, maxMs: 50, multiplier: 1, jitter: 0 },
      connect,
    },
    fullSyncIntervalMs: 3_600_000,
    logger: silentLogger,
    // No jitter by default: the pause is exactly what the session asked.
    random,
  });
  t.after(async () => {
    sync.stop();
    for (const c of conns) c.fail('shutting_down', 'test over');
    await settle();
  });
  return { sync, local, view, host, conns, sockets };
}

const publishes = (host: FakeConnectionHost): number =>
  host.calls.filter((c) => c === 'publish:start').length;

test('backpressure - slow_down round trip: the agent keeps the link and holds its local changes for the pause', async (t) => {
  const l = linked(t);
  l.sync.start();
  await waitFor('the link to open', () => l.sync.state === 'open');
  const conn = l.conns[0];
  assert.ok(conn !== undefined);
  assert.equal(conn.protocolVersion, PROTOCOL_VERSION);

  assert.equal(conn.slowDown(400, 'loop lag 900 ms'), true);
  await waitFor('the slow_down to arrive', () => l.sync.counters.slowDowns === 1);
  assert.equal(l.sync.deferring, true);

  const asked = Date.now();
  l.local.register(def('web-1'));
  l.local.register(def('web-2'));
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(publishes(l.host), 0, 'held while told to slow down');
  assert.equal(l.sync.state, 'open', 'the link stays up');

  await waitFor('the held batch to go out', () => publishes(l.host) === 1);
  assert.ok(Date.now() - asked >= 350, `sent after the pause (${Date.now() - asked} ms)`);
  await waitFor('both confirmed', () => l.local.list().every((r) => r.synced));
  assert.equal(l.sync.deferring, false);
  assert.equal(l.conns.length, 1, 'no reconnect');
});

/** A linked agent that was told to slow down for a minute. */
async function slowedDown(t: TestContext): Promise<Linked> {
  const l = linked(t);
  l.sync.start();
  await waitFor('the link to open', () => l.sync.state === 'open');
  l.conns[0]?.slowDown(60_000, 'test');
  await waitFor('the slow_down to arrive', () => l.sync.deferring);
  return l;
}

test('backpressure - acks and subscriptions are not held while told to slow down', async (t) => {
  const l = await slowedDown(t);
  l.view.ensure('web');
  l.sync.subscribe('web');
  await waitFor('the subscription to reach the session', () =>
    l.host.calls.some((c) => c.startsWith('subscribe web')),
  );
  l.sockets[0]?.send(
    JSON.stringify({ type: 'push', service: 'web', version: 7, complete: true, instances: [] }),
  );
  await waitFor('the ack to reach the session', () => l.host.calls.includes('ack web@7'));
  assert.equal(l.sync.deferring, true, 'still told to slow down');
});

test('backpressure - a new connection is not held by the slow_down of the previous one', async (t) => {
  const l = await slowedDown(t);
  l.conns[0]?.fail('shutting_down', 'session stopping');
  await waitFor('a second connection', () => l.conns.length === 2 && l.sync.state === 'open');
  assert.equal(l.sync.deferring, false);
  l.local.register(def('web-1'));
  await waitFor('the change to go out at once', () => publishes(l.host) === 1);
});

test('backpressure - a hostile retryAfterMs of 1e12 holds the agent for at most 1.5 x MAX_SLOW_DOWN_MS and keeps the link', async (t) => {
  const l = linked(t, new FakeConnectionHost(), () => 0.999_999);
  l.sync.start();
  await waitFor('the link to open', () => l.sync.state === 'open');
  l.sockets[0]?.send(JSON.stringify({ type: 'slow_down', retryAfterMs: 1e12, reason: 'hostile' }));
  await waitFor('the slow_down to arrive', () => l.sync.counters.slowDowns === 1);
  const heldMs = l.sync.deferredUntilMs - Date.now();
  assert.ok(heldMs > MAX_SLOW_DOWN_MS && heldMs <= 1.5 * MAX_SLOW_DOWN_MS, `held ${heldMs} ms`);
  assert.equal(l.sync.state, 'open');
});

function hello(protocolVersion: number): Hello {
  return { type: 'hello', protocolVersion, nodeId: 'n1', nodeName: 'n1', token: 'secret' };
}

/** A session connection driven by a bare socket; returns both ends once the welcome arrived. */
async function bare(
  t: TestContext,
  protocolVersion: number,
  host = new FakeConnectionHost(),
): Promise<{ agent: MemorySocket; server: MemorySocket; conn: AgentConnection; types: string[] }> {
  const { a: agent, b: server } = socketPair();
  agent.open();
  const conn = new AgentConnection('conn-1', memoryTransport(server), '127.0.0.1', 1, host);
  const types: string[] = [];
  agent.on('message', (d) => types.push((JSON.parse(frameText(d)) as { type: string }).type));
  t.after(() => {
    agent.terminate();
  });
  agent.send(JSON.stringify(hello(protocolVersion)));
  await waitFor('the welcome', () => types.includes('welcome'));
  return { agent, server, conn, types };
}

test('backpressure - agents of protocol 1 and 2 are never sent slow_down (they would close on it)', async (t) => {
  for (const v of [1, 2]) {
    const b = await bare(t, v);
    assert.equal(b.conn.slowDown(1000, 'test'), false);
    await settle();
    assert.deepEqual(b.types, ['welcome'], `protocol ${v}`);
  }
});

test('backpressure - a reader that stops reading is closed with slow_consumer (4014) once its queue passes the limit', async (t) => {
  const host = new FakeConnectionHost('secret', { maxQueuedBytes: 64 * 1024 });
  const b = await bare(t, PROTOCOL_VERSION, host);
  b.server.hold();
  const frame = JSON.stringify({
    type: 'push',
    service: 'web',
    version: 1,
    complete: true,
    instances: [],
    pad: 'x'.repeat(1000),
  });
  let sent = 0;
  while (b.conn.state === 'ready' && sent < 1000) {
    b.conn.send(frame);
    sent++;
  }
  assert.equal(b.conn.state, 'closing');
  assert.equal(b.conn.failedWith, 'slow_consumer');
  assert.ok(sent > 60 && sent < 70, `closed once past 64 KiB (${sent} frames of ~1 KiB)`);
  b.conn.send(frame);
  assert.equal(
    b.server.sent.length,
    sent + 1,
    'nothing queued after the close (the welcome, then the pushes)',
  );
  // The reader reads again within the close timeout: it gets what was queued, then the close code.
  b.server.release();
  const closed = await waitFor('the close', () => b.agent.closedWith);
  assert.equal(closed.code, ERROR_TABLE.slow_consumer.ws);
  assert.equal(closed.code, 4014);
  assert.match(closed.reason, /^slow_consumer: /);
  await waitFor('the host told', () => host.calls.includes('closed'));
});

test('backpressure - writes waiting in the session queue count toward the limit', async (t) => {
  const host = new FakeConnectionHost('secret', { maxQueuedBytes: 64 * 1024 });
  host.holdWrites = true;
  const b = await bare(t, PROTOCOL_VERSION, host);
  for (let i = 0; i < 400 && b.conn.state === 'ready'; i++) {
    const instance = makeInstance({ id: `w${i}`, service: 'web', meta: { pad: 'y'.repeat(400) } });
    b.agent.send(JSON.stringify({ type: 'publish', registrations: [{ instance, version: i + 1 }] }));
    await settle(1);
  }
  await waitFor('the connection to close', () => b.conn.failedWith);
  assert.equal(b.conn.failedWith, 'slow_consumer');
});

test('backpressure - liveness is extended by a slow_down, and still fires after it', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 0 });
  const events: string[] = [];
  const l = new Liveness(
    { sendPing: () => undefined, disconnect: (r) => events.push(`disconnect@${Date.now()}: ${r}`) },
    100,
    300,
    () => Date.now(),
  );
  t.after(() => {
    l.stop();
  });
  t.mock.timers.tick(50);
  l.extend(1000);
  // Without the extension it would disconnect at 300; with it, silence counts from 1050.
  for (let i = 0; i < 130; i++) t.mock.timers.tick(10);
  assert.deepEqual(events, []);
  for (let i = 0; i < 30; i++) t.mock.timers.tick(10);
  assert.equal(events.length >= 1, true);
  assert.match(events[0] ?? '', /^disconnect@1400: nothing heard for 1400 ms$/);
});

const sleep = (ms: number): Promise<void> =>
  new Promise((r) => {
    setTimeout(r, ms);
  });

/** Blocks this process's event loop for `ms` (a stall: GC, a long task, SIGSTOP). */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // Busy: nothing else runs, as in a stalled session.
  }
}

test('backpressure - a session stalled past its idle timeout does not close an agent whose pings sat unread', async (t) => {
  const host = new FakeConnectionHost('secret', { idleTimeoutMs: 500, pingIntervalMs: 50 });
  const b = await bare(t, PROTOCOL_VERSION, host);
  const pinger = setInterval(() => {
    b.agent.send(JSON.stringify({ type: 'ping', sentAt: Date.now() }));
  }, 50);
  t.after(() => {
    clearInterval(pinger);
  });
  await sleep(200);
  // The session stalls for 1.5 s; the agent's pings pile up unread and are read only after the
  // session's idle check has run again (by wall time, 1.6 s of silence; by live time, far less).
  b.agent.hold();
  stall(1500);
  await sleep(150);
  b.agent.release();
  await sleep(300);
  assert.equal(b.conn.state, 'ready', `failed with ${String(b.conn.failedWith)}`);
});

test('backpressure - an agent that really goes silent is still closed after the idle timeout', async (t) => {
  const host = new FakeConnectionHost('secret', { idleTimeoutMs: 300, pingIntervalMs: 50 });
  const b = await bare(t, PROTOCOL_VERSION, host);
  await waitFor('the idle timeout', () => b.conn.failedWith, 2000);
  assert.equal(b.conn.failedWith, 'liveness_timeout');
});
