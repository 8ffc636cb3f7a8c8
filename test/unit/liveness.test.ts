import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Liveness, type LivenessPeer } from '../../agent/upstream/liveness.js';

const START = Date.UTC(2025, 0, 1);

interface Setup {
  readonly events: string[];
  readonly liveness: Liveness;
  readonly tick: (ms: number) => void;
}

function setup(t: TestContext): Setup {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: START });
  const events: string[] = [];
  const at = (): number => Date.now() - START;
  const peer: LivenessPeer = {
    sendPing: () => events.push(`ping@${at()}`),
    disconnect: (reason) => events.push(`disconnect@${at()}: ${reason}`),
  };
  // Record when the interval is cleared. Node 20's mock timers re-arm an interval cleared from its own
  // callback (real timers do not), so the tests read events up to the first disconnect and check that
  // the interval was cleared right before it.
  const mockedClear = clearInterval;
  t.mock.method(globalThis, 'clearInterval', (h: Parameters<typeof clearInterval>[0]) => {
    events.push(`stop@${at()}`);
    mockedClear(h);
  });
  const liveness = new Liveness(peer, 100, 350, () => Date.now());
  t.after(() => {
    liveness.stop();
  });
  // Small steps: the mocked clock moves to the end of one tick() before the timers due in it run.
  const tick = (ms: number): void => {
    for (let left = ms; left > 0; left -= 10) t.mock.timers.tick(Math.min(10, left));
  };
  return { events, liveness, tick };
}

/** Events up to and including the first disconnect. */
function untilDisconnect(events: readonly string[]): string[] {
  const i = events.findIndex((e) => e.startsWith('disconnect@'));
  return i === -1 ? [...events] : events.slice(0, i + 1);
}

test('liveness - pings every interval, then disconnects once when nothing is heard', (t) => {
  const { events, tick } = setup(t);
  tick(1000);
  assert.deepEqual(untilDisconnect(events), [
    'ping@100',
    'ping@200',
    'ping@300',
    'stop@400',
    'disconnect@400: nothing heard for 400 ms',
  ]);
});

test('liveness - hearing from the peer postpones the disconnect', (t) => {
  const { events, liveness, tick } = setup(t);
  tick(250);
  liveness.heard();
  tick(750);
  assert.deepEqual(untilDisconnect(events), [
    'ping@100',
    'ping@200',
    'ping@300',
    'ping@400',
    'ping@500',
    'stop@600',
    'disconnect@600: nothing heard for 350 ms',
  ]);
});

test('liveness - a peer that keeps talking is never disconnected', (t) => {
  const { events, liveness, tick } = setup(t);
  for (let i = 0; i < 20; i++) {
    tick(90);
    liveness.heard();
  }
  assert.equal(events.length, 18);
  assert.ok(events.every((e) => e.startsWith('ping@')));
});

test('liveness - stop ends pings and checks', (t) => {
  const { events, liveness, tick } = setup(t);
  tick(150);
  liveness.stop();
  tick(1000);
  assert.deepEqual(events, ['ping@100', 'stop@150']);
});
