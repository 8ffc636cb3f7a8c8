import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { DataServer } from '../../control-plane/data/data-server.js';
import { DataRouter } from '../../control-plane/session/data-router.js';
import { PushDispatcher, type PushTarget } from '../../control-plane/session/push-dispatcher.js';
import type { Push } from '../../proto/agent-link.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { silentLogger } from '../../proto/runtime/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { VersionClock, versionTimeMs } from '../../proto/version.js';
import { makeInstance, settle } from '../support/fixtures.js';

const COALESCE_MS = 20;
const SKEW_MS = 30_000;
const T0 = Date.UTC(2025, 0, 1);

/** Records the pushes of one subscriber and acknowledges each at once. */
class AckingTarget implements PushTarget {
  readonly pushes: Push[] = [];
  constructor(
    readonly id: string,
    readonly ack: (version: number) => void,
  ) {}
  send(frame: Buffer, written?: () => void): void {
    const push = JSON.parse(frame.toString('utf8')) as Push;
    this.pushes.push(push);
    written?.();
    this.ack(push.version);
  }
  fail(): void {
    assert.fail('the subscriber is never failed');
  }
}

function table(epoch: number, leader: string, followers: string[] = []): SlotTable {
  return { epoch, slotCount: 1, slots: [{ id: 0, leader, leaderEpoch: epoch, followers }] };
}

function dataServer(t: TestContext, id: string, clock: VersionClock): DataServer {
  const s = new DataServer({
    id,
    warmupMs: 0,
    catalogDebounceMs: 3_600_000,
    slotCount: 1,
    logger: silentLogger,
    clock,
    liveNow: () => 0,
  });
  t.after(() => {
    s.close();
  });
  return s;
}

const item = (i: Instance, version: number) => ({ registrationId: registrationId(i), instance: i, version });

test('clock skew - a data server whose version clock jumps 30 s back and forth still pushes every change', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: T0 });
  t.mock.method(performance, 'now', () => Date.now());
  let skewMs = 0;
  const server = dataServer(t, 'data-1', new VersionClock(() => Date.now() + skewMs));
  server.applyTable(table(1, 'data-1'));
  server.finishMigration([0], []);
  const router = new DataRouter();
  router.addServer(server);
  router.applyTable(table(1, 'data-1'));
  const dispatcher = new PushDispatcher('session-1', router, {
    ackClock: () => performance.now(),
    coalesceMs: COALESCE_MS,
    ackTimeoutMs: 1000,
    maxRetries: 2,
    reconcileIntervalMs: 3_600_000,
    logger: silentLogger,
  });
  t.after(() => {
    dispatcher.close();
  });
  const target: AckingTarget = new AckingTarget('agent-1', (v) => {
    dispatcher.ack(target, 'web', v);
  });
  /** Lets a change travel: data notification, coalescing window, fetch, push. */
  const pushed = async (): Promise<void> => {
    await settle();
    t.mock.timers.tick(COALESCE_MS);
    await settle();
  };
  const web = makeInstance({ id: 'web-1', service: 'web' });
  await server.publish('conn-1', [item(web, 1)], 1);
  dispatcher.subscribe(target, 'web', undefined);
  await settle();

  // Each step moves the clock, then changes the port: the subscriber must see every port, in order.
  const steps = [-SKEW_MS, SKEW_MS, -SKEW_MS, 0];
  for (const [i, skew] of steps.entries()) {
    skewMs = skew;
    t.mock.timers.tick(5);
    const outcome = await server.publish('conn-1', [item({ ...web, port: 9000 + i }, 2 + i)], 1);
    assert.deepEqual(outcome.value, ['applied']);
    await pushed();
  }
  // The instance goes, and then comes back: both reach the subscriber too.
  skewMs = -SKEW_MS;
  await server.unpublish([{ key: 'web', registrationId: registrationId(web), version: 10 }], 1);
  await pushed();
  await server.publish('conn-1', [item({ ...web, port: 7000 }, 11)], 1);
  await pushed();

  const seen = target.pushes.map((p) => p.instances?.map((x) => x.port) ?? 'delta');
  assert.deepEqual(seen, [[8080], [9000], [9001], [9002], [9003], [], [7000]]);
  const versions = target.pushes.map((p) => p.version);
  for (let i = 1; i < versions.length; i++)
    assert.ok((versions[i] ?? 0) > (versions[i - 1] ?? 0), `push ${i} has a greater version`);
  // The forward jump went into the versions; going back did not pull them back below it.
  assert.ok(versionTimeMs(versions.at(-1) ?? 0) >= T0 + SKEW_MS);
});

test('clock skew - a follower whose clock is 30 s behind takes over above the versions it missed', (t) => {
  // One monotonic clock for both processes; the leader's wall clock follows it, the follower's lags.
  let mono = 0;
  const monotonic = (): number => mono;
  const leader = dataServer(t, 'data-1', new VersionClock(() => T0 + mono, monotonic));
  const follower = dataServer(t, 'data-2', new VersionClock(() => T0 - SKEW_MS + mono, monotonic));
  leader.applyTable(table(1, 'data-1', ['data-2']));
  leader.finishMigration([0], []);
  follower.applyTable(table(1, 'data-1', ['data-2']));
  follower.loadReplica([]);
  let linkUp = true;
  leader.replicationSink = (op) => {
    if (linkUp) follower.applyReplica(op);
  };
  const web = makeInstance({ id: 'web-1', service: 'web' });
  for (let v = 1; v <= 3; v++) {
    mono += 1;
    if (v === 3) linkUp = false; // the last change never reaches the follower
    void leader.publish('conn-1', [item({ ...web, port: 9000 + v }, v)], 1);
  }
  const missed = leader.store.version('web') ?? 0;
  assert.ok((follower.store.version('web') ?? 0) < missed, 'the follower is behind');

  // The leader dies a few milliseconds later; the follower leads and rebuilds from the sessions.
  mono += 5;
  follower.applyTable(table(2, 'data-2'));
  follower.finishMigration([0], [{ ...item({ ...web, port: 9003 }, 3), owner: 'conn-1' }]);
  const taken = follower.store.version('web') ?? 0;
  assert.ok(taken > missed, `takeover version ${taken} is above the missed ${missed}`);
  void follower.publish('conn-1', [item({ ...web, port: 9004 }, 4)], 2);
  assert.ok((follower.store.version('web') ?? 0) > taken);
});

test('clock skew - a version clock keeps pace with versions it observed from a faster clock', () => {
  let mono = 0;
  const slow = new VersionClock(
    () => T0 - SKEW_MS + mono,
    () => mono,
  );
  const fast = new VersionClock(
    () => T0 + mono,
    () => mono,
  );
  slow.observe(fast.next());
  mono += 10;
  const fromFast = fast.next();
  const fromSlow = slow.next();
  assert.ok(fromSlow >= fromFast, 'the slow clock advanced at the rate of time from what it observed');
  // An older observation changes nothing.
  slow.observe(1);
  assert.ok(slow.next() > fromSlow);
});
