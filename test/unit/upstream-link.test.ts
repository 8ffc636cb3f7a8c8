import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { UpstreamLink, type LinkState } from '../../agent/upstream/connection.js';
import { PROTOCOL_VERSION, type SessionFrame, type Welcome } from '../../proto/agent-link.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { settle } from '../support/fixtures.js';
import { FakeSessions, send, sentBy } from '../support/fake-session.js';

const U1 = 'ws://s1/v1/agent-link';
const U2 = 'ws://s2/v1/agent-link';
const U3 = 'ws://s3/v1/agent-link';
const CONNECT_TIMEOUT_MS = 1000;
const INITIAL_MS = 100;
const MAX_MS = 1000;

interface Harness {
  readonly link: UpstreamLink;
  readonly sessions: FakeSessions;
  readonly states: LinkState[];
  readonly opened: Welcome[];
  readonly frames: SessionFrame[];
  /** Moves the mocked clock, then lets the in-memory sockets deliver. */
  advance(ms: number): Promise<void>;
}

function harness(t: TestContext, urls = [U1, U2]): Harness {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const sessions = new FakeSessions();
  const states: LinkState[] = [];
  const opened: Welcome[] = [];
  const frames: SessionFrame[] = [];
  const link = new UpstreamLink(
    {
      urls,
      nodeId: 'node-id-1',
      nodeName: 'node-1',
      token: 'secret',
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      maxFrameBytes: 1 << 20,
      // No jitter: each delay is exactly initial × 2^attempt, capped.
      backoff: { initialMs: INITIAL_MS, maxMs: MAX_MS, multiplier: 2, jitter: 0 },
      logger: silentLogger,
      connect: sessions.connect,
    },
    {
      onOpen: (w) => opened.push(w),
      onFrame: (f) => frames.push(f),
      onState: (s) => states.push(s),
    },
  );
  t.after(async () => {
    link.stop();
    // Let the sockets finish closing while this test's mocked timers are still in place: timer IDs
    // restart in the next test, so a late clearTimeout would cancel one of its timers.
    await settle();
  });
  return {
    link,
    sessions,
    states,
    opened,
    frames,
    advance: async (ms) => {
      t.mock.timers.tick(ms);
      await settle();
    },
  };
}

test('upstream link - idle → connecting → open → backoff → connecting → open → closed', async (t) => {
  const h = harness(t);
  assert.equal(h.link.state, 'idle');
  h.link.start();
  const first = await h.sessions.accept([], 'session-a');
  assert.deepEqual(sentBy(first), [
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      nodeId: 'node-id-1',
      nodeName: 'node-1',
      token: 'secret',
    },
  ]);
  assert.equal(h.link.sessionId, 'session-a');
  assert.deepEqual(h.states, ['connecting', 'open']);

  await h.sessions.close(1001, 'shutting_down: draining');
  assert.deepEqual(h.states, ['connecting', 'open', 'backoff']);
  assert.equal(h.link.sessionId, '', 'no session while not open');
  await h.advance(INITIAL_MS);
  const second = await h.sessions.accept([], 'session-b');
  assert.deepEqual(h.states, ['connecting', 'open', 'backoff', 'connecting', 'open']);
  assert.deepEqual(
    h.opened.map((w) => w.sessionId),
    ['session-a', 'session-b'],
  );
  assert.deepEqual(h.sessions.urls, [U1, U2], 'the next attempt goes to the next session');

  assert.equal(h.link.send({ type: 'ping', sentAt: 1 }), true);
  h.link.stop();
  await settle();
  assert.deepEqual(h.states, ['connecting', 'open', 'backoff', 'connecting', 'open', 'closed']);
  assert.deepEqual(second.session.closedWith, { code: 1000, reason: 'agent stopping' });
  assert.equal(h.link.send({ type: 'ping', sentAt: 2 }), false, 'nothing is sent once closed');
});

test('upstream link - a welcome that never comes ends in backoff, then the next session', async (t) => {
  const h = harness(t);
  h.link.start();
  const first = await h.sessions.open();
  assert.equal(sentBy(first)[0]?.type, 'hello');
  await h.advance(CONNECT_TIMEOUT_MS - 1);
  assert.deepEqual(h.states, ['connecting'], 'still waiting just before the timeout');
  await h.advance(1);
  assert.deepEqual(h.states, ['connecting', 'backoff']);
  assert.equal(first.session.closedWith?.code, 1006, 'the silent socket is cut off');
  await h.advance(INITIAL_MS);
  assert.deepEqual(h.states, ['connecting', 'backoff', 'connecting']);
  assert.deepEqual(h.sessions.urls, [U1, U2]);
  assert.deepEqual(h.opened, []);
});

test('upstream link - fails over across its sessions and those a welcome names, round robin', async (t) => {
  const h = harness(t);
  h.link.start();
  await h.sessions.accept([U1, U3]);
  await h.sessions.close(1011, 'internal');
  for (let i = 0; i < 3; i++) {
    // Any delay up to the cap is enough to reach the next attempt.
    await h.advance(MAX_MS);
    await h.sessions.close(1013, 'unavailable');
  }
  assert.deepEqual(h.sessions.urls, [U1, U2, U3, U1], 'U3 was learned from the welcome; no URL twice');
  assert.deepEqual(h.states, [
    'connecting',
    'open',
    ...Array.from({ length: 3 }, () => ['backoff', 'connecting'] as const).flat(),
    'backoff',
  ]);
});

test('upstream link - the backoff grows with each failure and resets after a good welcome', async (t) => {
  const h = harness(t);
  h.link.start();
  /** Fails the current attempt, then measures how long the link waits before dialling again. */
  const delayAfterRefusal = async (code: number): Promise<number> => {
    const dials = h.sessions.dials.length;
    await h.sessions.close(code, 'refused');
    let waited = 0;
    // Bounded: the cap is MAX_MS, checked in steps of 10 ms.
    while (h.sessions.dials.length === dials && waited <= MAX_MS) {
      await h.advance(10);
      waited += 10;
    }
    return waited;
  };
  assert.equal(await delayAfterRefusal(1013), INITIAL_MS);
  assert.equal(await delayAfterRefusal(1013), 2 * INITIAL_MS);
  assert.equal(await delayAfterRefusal(1013), 4 * INITIAL_MS);
  await h.sessions.accept();
  assert.equal(await delayAfterRefusal(1001), INITIAL_MS, 'a good welcome reset the backoff');
  // A refusal that retrying soon will not fix (a wrong token) waits the longest delay.
  assert.equal(await delayAfterRefusal(4001), MAX_MS);
});

test('upstream link - frames reach the owner only while open; a bad frame closes with 4000', async (t) => {
  const h = harness(t);
  h.link.start();
  const d = await h.sessions.accept();
  await send(d, { type: 'pong', sentAt: 5 });
  assert.deepEqual(h.frames, [{ type: 'pong', sentAt: 5 }]);
  d.session.send(JSON.stringify({ type: 'push', service: 'web' }));
  await settle();
  assert.equal(d.agent.closedWith?.code, 4000);
  assert.deepEqual(h.states, ['connecting', 'open', 'backoff']);
  assert.equal(h.frames.length, 1, 'the bad frame was not handed on');
});
