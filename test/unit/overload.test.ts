/**
 * The session's overload guard (when it asks agents to slow down, and what `/health` says), and the
 * bounds of everything a `slow_down` frame can make an agent do: a hostile session cannot stretch a
 * timer or a pause past {@link MAX_SLOW_DOWN_MS}.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import {
  OverloadGuard,
  overloadReason,
  type OverloadTarget,
  type OverloadThresholds,
} from '../../control-plane/session/overload.js';
import { MAX_SLOW_DOWN_MS, decodeSessionFrame } from '../../proto/agent-link.js';
import { silentLogger } from '../../proto/runtime/log.js';

const T: OverloadThresholds = {
  lagMs: 60_000,
  pendingWrites: 100,
  pushPending: 100,
  queuedBytes: 1000,
  retryAfterMs: 1000,
};

class Target implements OverloadTarget {
  readonly asked: string[] = [];
  constructor(
    public queuedBytes: number,
    readonly understands = true,
  ) {}
  slowDown(retryAfterMs: number, reason: string): boolean {
    if (!this.understands) return false;
    this.asked.push(`${retryAfterMs} ${reason}`);
    return true;
  }
}

function guard(t: TestContext, targets: Target[], queues = { pendingWrites: 0, pushPending: 0 }) {
  const g = new OverloadGuard('s1', T, silentLogger, {
    connections: () => targets,
    pendingWrites: () => queues.pendingWrites,
    pushPending: () => queues.pushPending,
  });
  t.after(() => {
    g.stop();
  });
  return g;
}

test('overload - the reason names every threshold passed, and nothing below them', () => {
  const calm = { lagMs: 10, pendingWrites: 100, pushPending: 100, queuedBytes: 1000 };
  assert.equal(overloadReason(calm, T), undefined);
  assert.equal(
    overloadReason({ lagMs: 70_000.4, pendingWrites: 101, pushPending: 5, queuedBytes: 2000 }, T),
    'loop lag 70000 ms, 101 writes pending, 2000 bytes queued for agents',
  );
  assert.equal(overloadReason({ ...calm, pushPending: 101 }, T), '101 pushes unacknowledged');
});

test('overload - past a queue threshold the session asks its agents to slow down, at most once per half pause', (t) => {
  const queues = { pendingWrites: 0, pushPending: 0 };
  const modern = new Target(0);
  const old = new Target(0, false);
  const g = guard(t, [modern, old], queues);
  const t0 = performance.now();
  g.check(t0);
  assert.deepEqual(g.health(), {
    overload: { overloaded: false, lagMs: 0, queuedBytes: 0, slowDownsSent: 0, slowConsumerCloses: 0 },
  });

  queues.pendingWrites = 500;
  g.check(t0 + 10);
  assert.deepEqual(modern.asked, ['1000 500 writes pending']);
  assert.equal(g.counts.slowDownsSent, 1, 'the protocol-2 agent was not counted');
  const h = g.health();
  assert.equal(h['status'], 'degraded');
  assert.equal(h['reason'], 'overloaded: 500 writes pending');

  g.check(t0 + 20);
  g.check(t0 + 400);
  assert.equal(modern.asked.length, 1, 'not again within half a pause');
  g.check(t0 + 520);
  assert.equal(modern.asked.length, 2);

  // Recovered: the state holds for one pause after the last sample over a threshold, then clears.
  queues.pendingWrites = 0;
  g.check(t0 + 600);
  assert.equal(g.reason, '500 writes pending');
  g.check(t0 + 1530);
  assert.equal(g.reason, undefined);
  assert.equal(g.health()['status'], undefined);
  g.check(t0 + 3000);
  assert.equal(modern.asked.length, 2, 'no slow_down once recovered');
});

test('overload - bytes queued for agents are summed over connections', (t) => {
  const a = new Target(600);
  const b = new Target(600);
  const g = guard(t, [a, b]);
  g.check(performance.now());
  assert.equal(g.reason, '1200 bytes queued for agents');
  assert.equal(g.status().queuedBytes, 1200);
});

test('overload - a late check is loop lag', (t) => {
  const g = new OverloadGuard('s1', { ...T, lagMs: 500 }, silentLogger, {
    connections: () => [],
    pendingWrites: () => 0,
    pushPending: () => 0,
  });
  t.after(() => {
    g.stop();
  });
  const t0 = performance.now();
  g.check(t0 + 3000);
  assert.match(g.reason ?? '', /^loop lag \d+ ms$/);
});

test('overload - every retryAfterMs a slow_down can carry is clamped to 0..MAX_SLOW_DOWN_MS or refused', () => {
  const hostile = fc.oneof(
    fc.integer(),
    fc.integer({ min: MAX_SLOW_DOWN_MS, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(1e12, 1e300, -1, Infinity, Number.NaN, 0.5, '1000', null),
    fc.double(),
    fc.anything(),
  );
  fc.assert(
    fc.property(hostile, fc.string({ maxLength: 400 }), (retryAfterMs, reason) => {
      const d = decodeSessionFrame({ type: 'slow_down', retryAfterMs, reason });
      if (!d.ok) return;
      assert.equal(d.value.type, 'slow_down');
      if (d.value.type !== 'slow_down') return;
      assert.ok(Number.isSafeInteger(d.value.retryAfterMs));
      assert.ok(d.value.retryAfterMs >= 0 && d.value.retryAfterMs <= MAX_SLOW_DOWN_MS);
      assert.ok(d.value.reason.length <= 256);
    }),
    { numRuns: 500 },
  );
  const huge = decodeSessionFrame({ type: 'slow_down', retryAfterMs: 1e12, reason: 'x' });
  assert.ok(huge.ok && huge.value.type === 'slow_down');
  assert.equal(huge.value.retryAfterMs, MAX_SLOW_DOWN_MS);
});
