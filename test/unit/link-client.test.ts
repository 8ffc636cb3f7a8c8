/**
 * The outgoing server link's state machine, driven over in-memory socket pairs with mock timers:
 * the sequence of states of a good connection, a refused hello, failures across a URL list, stop,
 * and the backoff reset after a good hello.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { HELLO_METHOD, type LinkHello } from '../../proto/rpc.js';
import { MeshregError } from '../../proto/errors.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { readControlPlaneConfig } from '../../control-plane/config.js';
import { LinkClient, type LinkClientState } from '../../control-plane/link/link-client.js';
import { PROCESS_NONCE } from '../../control-plane/link/local-process.js';
import { RpcPeer } from '../../control-plane/link/rpc-peer.js';
import { socketPair, type MemorySocket } from '../support/socket-pair.js';

const HELLO: LinkHello = { role: 'data', id: 'd1', url: 'ws://d1', protocolVersion: 1, token: 't' };
const RETRY = { initialMs: 100, maxMs: 1000 };

/** What the far end does with the next connection attempt. */
type Answer = 'accept' | 'refuse' | 'unreachable';

interface Harness {
  readonly client: LinkClient;
  readonly states: LinkClientState[];
  /** URLs dialled, in order. */
  readonly dialled: string[];
  /** The far ends of the sockets opened so far. */
  readonly servers: MemorySocket[];
  readonly answers: Answer[];
}

function harness(t: TestContext, url = 'ws://a,ws://b', random = () => 0.5): Harness {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const states: LinkClientState[] = [];
  const dialled: string[] = [];
  const servers: MemorySocket[] = [];
  const answers: Answer[] = [];
  const logger = silentLogger;
  const client = new LinkClient(
    {
      url,
      hello: HELLO,
      callTimeoutMs: 60_000,
      maxFrameBytes: 1 << 20,
      retry: RETRY,
      logger,
      random,
      connect: (to) => {
        dialled.push(to);
        const { a, b } = socketPair();
        const answer = answers.shift() ?? 'accept';
        servers.push(b);
        if (answer === 'unreachable') {
          setImmediate(() => {
            a.fail(new Error('connect ECONNREFUSED'));
            a.terminate();
          });
          return a;
        }
        const server = new RpcPeer(b, { callTimeoutMs: 60_000, logger, pageBytes: 1 << 19 });
        server.handle(HELLO_METHOD, () => {
          if (answer === 'refuse') throw new MeshregError('unauthorized', 'wrong cluster token');
          return {};
        });
        setImmediate(() => {
          a.open();
        });
        return a;
      },
    },
    {
      setup: () => undefined,
      state: (s) => states.push(s),
    },
  );
  t.after(() => {
    client.stop();
  });
  return { client, states, dialled, servers, answers };
}

/** Lets in-memory delivery (macrotasks) run until `done` holds; bounded. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(done(), `timed out waiting for ${what}`);
}

test('link client - idle, connecting, hello, open over a good hello', async (t) => {
  const h = harness(t);
  assert.equal(h.client.state, 'idle');
  h.client.start();
  await until(() => h.client.state === 'open', 'open');
  assert.deepEqual(h.states, ['connecting', 'hello', 'open']);
  assert.ok(h.client.peer !== undefined, 'the peer is offered once open');
  const said = asFrames(h.servers[0]?.peer).filter((f) => f.t === 'req');
  assert.deepEqual(
    said.map((f) => [f.method, f.params]),
    [['hello', { ...HELLO, process: PROCESS_NONCE }]],
    'one hello, the first request, with this process nonce',
  );
});

test('link client - a refused hello backs off for the computed delay, then connects again', async (t) => {
  // random 0.5 with jitter 0.5: the first delay is 100 - 50 + 0.5 * 50 = 75 ms.
  const h = harness(t);
  h.answers.push('refuse');
  h.client.start();
  await until(() => h.client.state === 'backoff', 'backoff');
  assert.deepEqual(h.states, ['connecting', 'hello', 'backoff']);
  assert.equal(h.client.peer, undefined);
  t.mock.timers.tick(74);
  assert.equal(h.client.state, 'backoff', 'not before the delay');
  t.mock.timers.tick(1);
  assert.equal(h.client.state, 'connecting');
  await until(() => h.client.state === 'open', 'open');
  assert.deepEqual(h.states, ['connecting', 'hello', 'backoff', 'connecting', 'hello', 'open']);
});

test('link client - failures cycle through the URLs of a comma list, the delay growing', async (t) => {
  const h = harness(t, 'ws://a,ws://b,ws://c', () => 0);
  h.answers.push('unreachable', 'unreachable', 'unreachable');
  h.client.start();
  // random 0: each delay is half its base: 50, 100, 200.
  for (const delay of [50, 100, 200]) {
    await until(() => h.client.state === 'backoff', 'backoff');
    t.mock.timers.tick(delay - 1);
    assert.equal(h.client.state, 'backoff', `still waiting ${String(delay)} ms`);
    t.mock.timers.tick(1);
  }
  await until(() => h.client.state === 'open', 'open');
  assert.deepEqual(h.dialled, ['ws://a', 'ws://b', 'ws://c', 'ws://a']);
  assert.deepEqual(h.states, [
    'connecting',
    'backoff',
    'connecting',
    'backoff',
    'connecting',
    'backoff',
    'connecting',
    'hello',
    'open',
  ]);
});

test('link client - stop closes for good: no attempt after it', async (t) => {
  const h = harness(t);
  h.answers.push('unreachable');
  h.client.start();
  await until(() => h.client.state === 'backoff', 'backoff');
  h.client.stop();
  t.mock.timers.tick(10_000);
  await until(() => true, 'a few turns');
  assert.deepEqual(h.states, ['connecting', 'backoff', 'closed']);
  assert.deepEqual(h.dialled, ['ws://a']);
});

test('link client - stop on an open link closes it as shutting down, and nothing reconnects', async (t) => {
  const open = harness(t);
  open.client.start();
  await until(() => open.client.state === 'open', 'open');
  open.client.stop();
  await until(() => open.servers[0]?.closedWith !== undefined, 'the far end closed');
  t.mock.timers.tick(10_000);
  assert.deepEqual(open.states, ['connecting', 'hello', 'open', 'closed']);
  assert.equal(open.servers[0]?.closedWith?.code, 1001, 'closed as shutting down');
  assert.equal(open.dialled.length, 1);
});

test('link client - the backoff resets after a good hello', async (t) => {
  const h = harness(t, 'ws://a', () => 0);
  h.answers.push('unreachable', 'unreachable', 'accept', 'unreachable');
  h.client.start();
  for (const delay of [50, 100]) {
    await until(() => h.client.state === 'backoff', 'backoff');
    t.mock.timers.tick(delay);
  }
  await until(() => h.client.state === 'open', 'open');
  // The link drops: the first delay again, not the third (200 ms).
  h.servers[2]?.close(1011, 'gone');
  await until(() => h.client.state === 'backoff', 'backoff after open');
  t.mock.timers.tick(49);
  assert.equal(h.client.state, 'backoff');
  t.mock.timers.tick(1);
  assert.equal(h.client.state, 'connecting');
  assert.deepEqual(h.states.slice(-4), ['hello', 'open', 'backoff', 'connecting']);
});

function asFrames(s: MemorySocket | undefined): { t?: string; method?: string; params?: unknown }[] {
  return (s?.sentFrames() ?? []) as { t?: string; method?: string; params?: unknown }[];
}

test('link client - its timings come from bounded settings; a cap below the first delay is refused, naming both', () => {
  const base = { MESHREG_TOKEN: 't' };
  const c = readControlPlaneConfig(
    { ...base, MESHREG_LINK_RETRY_INITIAL_MS: '20', MESHREG_LINK_RETRY_MAX_MS: '400' },
    { dev: false },
  );
  assert.deepEqual(c.link.retry, { initialMs: 20, maxMs: 400 });
  assert.equal(c.link.helloTimeoutMs, 5000);
  assert.throws(
    () =>
      readControlPlaneConfig(
        { ...base, MESHREG_LINK_RETRY_INITIAL_MS: '500', MESHREG_LINK_RETRY_MAX_MS: '400' },
        { dev: false },
      ),
    /MESHREG_LINK_RETRY_MAX_MS must not be below MESHREG_LINK_RETRY_INITIAL_MS/,
  );
});
