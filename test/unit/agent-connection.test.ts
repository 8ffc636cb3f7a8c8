import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { AgentConnection } from '../../control-plane/session/agent-connection.js';
import { PROTOCOL_VERSION, type AgentFrame, type Hello } from '../../proto/agent-link.js';
import { ERROR_TABLE } from '../../proto/errors.js';
import { frameText } from '../../proto/runtime/link-socket.js';
import { FakeConnectionHost, memoryTransport } from '../support/fake-connection-host.js';
import { makeInstance } from '../support/fixtures.js';
import { socketPair, type MemorySocket } from '../support/socket-pair.js';
import { waitFor } from '../support/wait.js';

interface Received {
  readonly type: string;
  readonly [field: string]: unknown;
}

interface Harness {
  readonly agent: MemorySocket;
  readonly conn: AgentConnection;
  readonly host: FakeConnectionHost;
  readonly frameLimits: readonly number[];
  /** Every frame the agent end received, parsed, in order. */
  readonly received: Received[];
  send(frame: AgentFrame): void;
  /** The agent's end saw the close: its code and reason. */
  closed(): Promise<{ code: number; reason: string }>;
}

function connect(t: TestContext, host = new FakeConnectionHost()): Harness {
  const { a: agent, b: server } = socketPair();
  agent.open();
  const transport = memoryTransport(server);
  const conn = new AgentConnection('conn-1', transport, '127.0.0.1', 4321, host);
  const received: Received[] = [];
  agent.on('message', (data) => {
    received.push(JSON.parse(frameText(data)) as Received);
  });
  t.after(() => {
    agent.terminate();
  });
  return {
    agent,
    conn,
    host,
    frameLimits: transport.frameLimits,
    received,
    send: (frame) => {
      agent.send(JSON.stringify(frame));
    },
    closed: () => waitFor('the connection to close', () => agent.closedWith),
  };
}

function hello(overrides: Partial<Hello> = {}): Hello {
  return {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    nodeId: 'node-id-1',
    nodeName: 'node-1',
    token: 'secret',
    ...overrides,
  };
}

async function ready(t: TestContext, host?: FakeConnectionHost): Promise<Harness> {
  const h = connect(t, host);
  h.send(hello());
  await waitFor('the welcome', () => h.received.length === 1);
  return h;
}

const types = (h: Harness): string[] => h.received.map((f) => f.type);

const web1 = makeInstance({ id: 'web-1', service: 'web' });
const web2 = makeInstance({ id: 'web-2', service: 'web' });

test('agent connection - a hello is answered with a welcome, then the full frame limit applies', async (t) => {
  const h = await ready(t);
  assert.deepEqual(h.received, [
    {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      sessionId: 'session-test',
      sessions: h.host.sessions(),
      pingIntervalMs: h.host.limits.pingIntervalMs,
    },
  ]);
  assert.equal(h.conn.state, 'ready');
  assert.equal(h.conn.nodeId, 'node-id-1');
  assert.deepEqual(h.host.calls, ['adopt']);
  assert.deepEqual(h.frameLimits, [h.host.maxFrameBytes]);
});

test('agent connection - a first frame other than hello closes with 4000', async (t) => {
  const h = connect(t);
  h.send({ type: 'ping', sentAt: 1 });
  const closed = await h.closed();
  assert.equal(closed.code, 4000);
  assert.match(closed.reason, /^invalid_frame: expected hello, got ping/);
  assert.deepEqual(h.received, []);
  assert.deepEqual(h.host.calls, ['closed']);
  assert.deepEqual(h.frameLimits, [], 'the small hello limit stays');
});

test('agent connection - a wrong or missing token closes with the unauthorized code', async (t) => {
  for (const token of ['wrong', '']) {
    const h = connect(t);
    h.send(hello({ token }));
    const closed = await h.closed();
    assert.equal(closed.code, ERROR_TABLE.unauthorized.ws);
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, `unauthorized: ${token === '' ? 'missing token' : 'wrong token'}`);
    assert.deepEqual(h.received, []);
    assert.deepEqual(h.host.calls, ['closed']);
  }
});

test('agent connection - another protocol version closes with 4002', async (t) => {
  const h = connect(t);
  h.send(hello({ protocolVersion: PROTOCOL_VERSION + 1 }));
  const closed = await h.closed();
  assert.equal(closed.code, ERROR_TABLE.unsupported_protocol.ws);
  assert.equal(closed.code, 4002);
  assert.match(closed.reason, /^unsupported_protocol: /);
  assert.deepEqual(h.host.calls, ['closed']);
});

test('agent connection - protocols 1 and 2 are both accepted, each welcomed with its own version', async (t) => {
  for (const protocolVersion of [1, 2]) {
    const h = connect(t);
    h.send(hello({ protocolVersion, nodeId: `node-${protocolVersion}` }));
    await waitFor('the welcome', () => h.received.length === 1);
    assert.equal(h.received[0]?.['protocolVersion'], protocolVersion);
    assert.equal(h.conn.protocolVersion, protocolVersion);
    assert.equal(h.conn.deltas, protocolVersion >= 2, 'only protocol 2 may be sent deltas');
  }
});

test('agent connection - an acks frame acknowledges each item, like as many ack frames', async (t) => {
  const h = await ready(t);
  h.send({
    type: 'acks',
    acks: [
      { service: 'web', version: 3 },
      { service: 'db', version: 9 },
    ],
  });
  await waitFor('the acks', () => h.host.calls.length === 3);
  assert.deepEqual(h.host.calls, ['adopt', 'ack web@3', 'ack db@9']);
});

test('agent connection - a refusal by the host closes with its code after the token check', async (t) => {
  const host = new FakeConnectionHost();
  host.refusal = { code: 'shutting_down', reason: 'draining' };
  const h = connect(t, host);
  h.send(hello());
  const closed = await h.closed();
  assert.deepEqual(closed, { code: ERROR_TABLE.shutting_down.ws, reason: 'shutting_down: draining' });
  assert.deepEqual(h.host.calls, ['closed']);
});

test('agent connection - binary and non-JSON frames close with 4000', async (t) => {
  for (const [data, isBinary] of [
    [Buffer.from('{}'), true],
    [Buffer.from('{not json'), false],
  ] as const) {
    const h = await ready(t);
    h.agent.peer?.receive(data, isBinary);
    const closed = await h.closed();
    assert.equal(closed.code, 4000);
    assert.match(closed.reason, /^invalid_frame: /);
  }
});

test('agent connection - a burst of frames over the rate limit closes with the rate_limited code', async (t) => {
  const burst = 5;
  // A refill this slow adds no token during the test, however loaded the machine.
  const host = new FakeConnectionHost('secret', { maxFramesPerSec: 0.01, frameBurst: burst });
  const h = await ready(t, host);
  for (let i = 0; i < 20; i++) h.send({ type: 'ping', sentAt: i });
  const closed = await h.closed();
  assert.equal(closed.code, ERROR_TABLE.rate_limited.ws);
  assert.equal(closed.code, 4004);
  assert.match(closed.reason, /^rate_limited: more than 0.01 frames\/s/);
  // The hello took one token: the next burst - 1 pings were answered, then the connection closed.
  assert.deepEqual(types(h), ['welcome', ...Array<string>(burst - 1).fill('pong')]);
  assert.deepEqual(
    h.received.slice(1).map((f) => f['sentAt']),
    [0, 1, 2, 3],
  );
});

test('agent connection - a ping and an ack sent after an unanswered publish are handled before it is confirmed', async (t) => {
  const h = await ready(t);
  h.host.holdWrites = true;
  h.send({ type: 'publish', registrations: [{ instance: web1, version: 1 }] });
  h.send({ type: 'ping', sentAt: 42 });
  h.send({ type: 'ack', service: 'web', version: 3 });
  await waitFor('the pong', () => h.received.length === 2);
  await waitFor('the ack', () => h.host.calls.includes('ack web@3'));
  assert.deepEqual(types(h), ['welcome', 'pong']);
  assert.equal(h.received[1]?.['sentAt'], 42);
  assert.deepEqual(h.host.calls, ['adopt', 'publish:start', 'ack web@3']);

  h.host.releaseWrites();
  await waitFor('the confirm', () => h.received.length === 3);
  assert.deepEqual(types(h), ['welcome', 'pong', 'confirm']);
  assert.deepEqual(h.host.calls, ['adopt', 'publish:start', 'ack web@3', 'publish:done']);
});

test('agent connection - writes keep their order: one at a time, confirmed in the order sent', async (t) => {
  const h = await ready(t);
  h.host.holdWrites = true;
  h.send({ type: 'publish', registrations: [{ instance: web1, version: 1 }] });
  h.send({ type: 'unpublish', registrations: [{ id: 'web-1', service: 'web', version: 2 }] });
  h.send({ type: 'publish', registrations: [{ instance: web2, version: 1 }] });
  h.send({ type: 'subscribe', services: [{ service: 'db', knownVersion: 7 }] });
  h.send({ type: 'catalogSubscribe' });
  await waitFor('the subscriptions', () => h.host.calls.length === 4);
  // Subscriptions do not wait for writes; the second write has not started.
  assert.deepEqual(h.host.calls, ['adopt', 'publish:start', 'subscribe db@7', 'subscribeCatalog@undefined']);
  assert.deepEqual([...h.conn.subscriptions], ['db']);

  h.host.releaseWrites();
  await waitFor('three confirms', () => h.received.length === 4);
  assert.deepEqual(h.host.calls.slice(4), [
    'publish:done',
    'unpublish:start',
    'unpublish:done',
    'publish:start',
    'publish:done',
  ]);
  const confirmed = h.received.slice(1).map((f) => (f['results'] as { op: string; id: string }[])[0]);
  assert.deepEqual(confirmed, [
    { op: 'publish', id: 'web-1', version: 1 },
    { op: 'unpublish', id: 'web-1', version: 2 },
    { op: 'publish', id: 'web-2', version: 1 },
  ]);
});

test('agent connection - a write still waiting when the connection fails is not confirmed', async (t) => {
  const h = await ready(t);
  h.host.holdWrites = true;
  h.send({ type: 'publish', registrations: [{ instance: web1, version: 1 }] });
  h.send({ type: 'publish', registrations: [{ instance: web2, version: 1 }] });
  await waitFor('the first write', () => h.host.calls.includes('publish:start'));
  h.conn.fail('replaced', 'a newer connection took over');
  const closed = await h.closed();
  assert.equal(closed.code, ERROR_TABLE.replaced.ws);
  h.host.releaseWrites();
  await waitFor('the first write to end', () => h.host.calls.includes('publish:done'));
  // The queued second publish is dropped: the agent re-sends its state on its next connection.
  assert.deepEqual(h.host.calls, ['adopt', 'publish:start', 'closed', 'publish:done']);
  assert.deepEqual(types(h), ['welcome']);
});
