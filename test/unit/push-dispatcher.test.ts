import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { DataServer } from '../../control-plane/data/data-server.js';
import { DataRouter } from '../../control-plane/session/data-router.js';
import { PushDispatcher, type PushTarget } from '../../control-plane/session/push-dispatcher.js';
import type { Push } from '../../proto/agent-link.js';
import type { ErrorCode } from '../../proto/errors.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { VersionClock } from '../../proto/version.js';
import { makeInstance, settle } from '../support/fixtures.js';

const COALESCE_MS = 20;
const ACK_TIMEOUT_MS = 100;
const SWEEP_MS = ACK_TIMEOUT_MS / 2;
const MAX_RETRIES = 2;

class FakeTarget implements PushTarget {
  readonly texts: string[] = [];
  /** When set, writes are held (a socket with a backlog) until `release()`. */
  hold = false;
  readonly #held: (() => void)[] = [];
  readonly failures: { code: ErrorCode; reason: string }[] = [];
  constructor(readonly id: string) {}
  /** Takes each frame at once, like a socket with room to spare. */
  send(frame: Buffer, written?: () => void): void {
    this.texts.push(frame.toString('utf8'));
    if (this.hold) this.#held.push(() => written?.());
    else written?.();
  }
  release(): void {
    this.hold = false;
    for (const w of this.#held.splice(0)) w();
  }
  fail(code: ErrorCode, reason: string): void {
    this.failures.push({ code, reason });
  }
  get pushes(): Push[] {
    return this.texts.map((t) => JSON.parse(t) as Push);
  }
  get versions(): number[] {
    return this.pushes.map((p) => p.version);
  }
}

interface Harness {
  readonly server: DataServer;
  readonly dispatcher: PushDispatcher;
  /** Publishes and lets the change travel: data notification, coalescing window, fetch, send. */
  publish(instance: Instance, version: number): Promise<void>;
  /** Lets immediates and promise chains run without moving the clock. */
  flush(): Promise<void>;
  /** Moves the mocked clock, then lets what it started finish. */
  advance(ms: number): Promise<void>;
  version(key: string): Promise<number>;
}

function harness(t: TestContext): Harness {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: Date.UTC(2025, 0, 1) });
  // The dispatcher measures ack age with performance.now(); tie it to the mocked clock.
  t.mock.method(performance, 'now', () => Date.now());
  const server = new DataServer({
    id: 'data-1',
    warmupMs: 0,
    catalogDebounceMs: 3_600_000,
    slotCount: 1,
    logger: silentLogger,
    clock: new VersionClock(() => Date.now()),
  });
  const table = {
    epoch: 1,
    slotCount: 1,
    slots: [{ id: 0, leader: 'data-1', leaderEpoch: 1, followers: [] }],
  };
  server.applyTable(table);
  server.finishMigration([0], []);
  const router = new DataRouter();
  router.addServer(server);
  router.applyTable(table);
  const dispatcher = new PushDispatcher('session-1', router, {
    ackClock: () => performance.now(),
    coalesceMs: COALESCE_MS,
    ackTimeoutMs: ACK_TIMEOUT_MS,
    maxRetries: MAX_RETRIES,
    reconcileIntervalMs: 3_600_000,
    logger: silentLogger,
  });
  t.after(() => {
    dispatcher.close();
    server.close();
  });
  const advance = async (ms: number): Promise<void> => {
    t.mock.timers.tick(ms);
    await settle();
  };
  const owners = new Map<string, string>();
  return {
    server,
    dispatcher,
    flush: () => settle(),
    advance,
    publish: async (instance, version) => {
      const owner = owners.get(instance.id) ?? 'conn-1';
      owners.set(instance.id, owner);
      await server.publish(owner, [{ registrationId: registrationId(instance), instance, version }], 1);
      await settle();
    },
    version: async (key) => (await server.versions([key])).get(key) ?? -1,
  };
}

const web1 = makeInstance({ id: 'web-1', service: 'web' });
const web2 = makeInstance({ id: 'web-2', service: 'web' });

test('push dispatcher - a new subscriber gets the current datum at once, then one frame per version', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const target = new FakeTarget('a');
  h.dispatcher.subscribe(target, 'web', undefined);
  await h.flush();
  const v1 = await h.version('web');
  assert.deepEqual(target.versions, [v1], 'no coalescing wait for a new subscriber');
  assert.deepEqual(target.pushes[0]?.instances, [web1]);
  assert.equal(target.pushes[0]?.complete, true);
  h.dispatcher.ack(target, 'web', v1);

  await h.publish(web2, 1);
  assert.deepEqual(target.versions, [v1], 'a change waits for the coalescing window');
  await h.advance(COALESCE_MS);
  const v2 = await h.version('web');
  assert.ok(v2 > v1);
  assert.deepEqual(target.versions, [v1, v2]);
  assert.deepEqual(
    target.pushes.map((p) => p.instances.map((i) => i.id)),
    [['web-1'], ['web-1', 'web-2']],
  );
  h.dispatcher.ack(target, 'web', v2);
  await h.advance(1000);
  assert.deepEqual(target.versions, [v1, v2], 'nothing more once acknowledged');
  assert.deepEqual(target.failures, []);
});

test('push dispatcher - changes within the coalescing window go out as one frame', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const target = new FakeTarget('a');
  h.dispatcher.subscribe(target, 'web', undefined);
  await h.flush();
  h.dispatcher.ack(target, 'web', await h.version('web'));
  await h.publish(web2, 1);
  await h.advance(COALESCE_MS / 2);
  await h.publish({ ...web2, port: 9999 }, 2);
  await h.advance(COALESCE_MS / 2 - 1);
  assert.equal(target.texts.length, 1);
  await h.advance(1);
  assert.equal(target.texts.length, 2, 'both changes in one frame');
  assert.equal(target.versions[1], await h.version('web'));
  assert.deepEqual(
    target.pushes[1]?.instances.map((i) => i.port),
    [8080, 9999],
  );
});

test('push dispatcher - every subscriber gets the same frame, encoded once', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const a = new FakeTarget('a');
  const b = new FakeTarget('b');
  h.dispatcher.subscribe(a, 'web', undefined);
  h.dispatcher.subscribe(b, 'web', undefined);
  await h.flush();
  await h.publish(web2, 1);
  await h.advance(COALESCE_MS);
  assert.equal(a.texts.length, 2);
  assert.deepEqual(a.texts, b.texts);
  assert.equal(h.dispatcher.stats.pushes, 4);
});

test('push dispatcher - never pushes a version at or below what the subscriber holds', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const v0 = await h.version('web');
  const current = new FakeTarget('current');
  const ahead = new FakeTarget('ahead');
  const behind = new FakeTarget('behind');
  h.dispatcher.subscribe(current, 'web', v0);
  h.dispatcher.subscribe(ahead, 'web', v0 + 2);
  h.dispatcher.subscribe(behind, 'web', v0 - 1);
  await h.flush();
  assert.deepEqual(current.versions, [], 'holds the current version already');
  assert.deepEqual(ahead.versions, []);
  assert.deepEqual(behind.versions, [v0]);

  const seen: number[] = [v0];
  for (let port = 1; port <= 3; port++) {
    await h.publish({ ...web1, port }, port + 1);
    await h.advance(COALESCE_MS);
    seen.push(await h.version('web'));
    for (const target of [current, ahead, behind]) {
      const last = target.versions.at(-1);
      if (last !== undefined) h.dispatcher.ack(target, 'web', last);
    }
  }
  assert.deepEqual(current.versions, seen.slice(1));
  assert.deepEqual(behind.versions, seen);
  assert.deepEqual(
    ahead.versions,
    seen.filter((v) => v > v0 + 2),
  );
  for (const target of [current, ahead, behind]) {
    const vs = target.versions;
    for (let i = 1; i < vs.length; i++) assert.ok((vs[i] ?? 0) > (vs[i - 1] ?? 0), `${target.id} grows`);
  }
});

test('push dispatcher - an unacknowledged push is re-sent after the ack timeout, then the target fails', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const target = new FakeTarget('a');
  h.dispatcher.subscribe(target, 'web', undefined);
  await h.flush();
  const timeline: string[] = [];
  for (let elapsed = SWEEP_MS; elapsed <= 8 * SWEEP_MS; elapsed += SWEEP_MS) {
    await h.advance(SWEEP_MS);
    timeline.push(`${elapsed}ms: ${target.texts.length} sent, ${target.failures.length} failed`);
  }
  assert.deepEqual(timeline, [
    '50ms: 1 sent, 0 failed',
    '100ms: 2 sent, 0 failed',
    '150ms: 2 sent, 0 failed',
    '200ms: 3 sent, 0 failed',
    '250ms: 3 sent, 0 failed',
    '300ms: 3 sent, 1 failed',
    '350ms: 3 sent, 1 failed',
    '400ms: 3 sent, 1 failed',
  ]);
  assert.equal(new Set(target.texts).size, 1, 'the same frame is re-sent');
  assert.equal(target.failures[0]?.code, 'ack_timeout');
  assert.equal(h.dispatcher.stats.retries, MAX_RETRIES);
  assert.equal(h.dispatcher.stats.failures, 1);
});

test('push dispatcher - the ack clock starts when the socket has written the push, not when it was queued', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const target = new FakeTarget('a');
  target.hold = true;
  h.dispatcher.subscribe(target, 'web', undefined);
  await h.flush();
  await h.advance(5 * ACK_TIMEOUT_MS);
  assert.equal(target.texts.length, 1, 'a push still queued is neither re-sent nor failed');
  assert.deepEqual(target.failures, []);
  target.release();
  await h.advance(ACK_TIMEOUT_MS + SWEEP_MS);
  assert.equal(target.texts.length, 2, 'once written, an unacknowledged push is re-sent after the timeout');
});

test('push dispatcher - an ack stops the retries; an ack of an older version does not', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const target = new FakeTarget('a');
  h.dispatcher.subscribe(target, 'web', undefined);
  await h.flush();
  const v1 = await h.version('web');
  await h.publish(web2, 1);
  await h.advance(COALESCE_MS);
  const v2 = await h.version('web');
  assert.deepEqual(target.versions, [v1, v2]);
  h.dispatcher.ack(target, 'web', v1);
  await h.advance(ACK_TIMEOUT_MS + SWEEP_MS);
  assert.deepEqual(target.versions, [v1, v2, v2], 'still waiting for the newer version');
  h.dispatcher.ack(target, 'web', v2);
  await h.advance(10 * ACK_TIMEOUT_MS);
  assert.deepEqual(target.versions, [v1, v2, v2]);
  assert.deepEqual(target.failures, []);
});

test('push dispatcher - unsubscribe stops pushes and retries', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const target = new FakeTarget('a');
  const other = new FakeTarget('b');
  h.dispatcher.subscribe(target, 'web', undefined);
  h.dispatcher.subscribe(other, 'web', undefined);
  await h.flush();
  h.dispatcher.unsubscribe(target, 'web');
  h.dispatcher.ack(other, 'web', await h.version('web'));
  await h.publish(web2, 1);
  await h.advance(10 * ACK_TIMEOUT_MS);
  assert.equal(target.texts.length, 1, 'no push after unsubscribe, and no retry of the last one');
  assert.deepEqual(target.failures, []);
  assert.equal(other.texts.length >= 2, true, 'the other subscriber still gets pushes');
  assert.equal(h.dispatcher.stats.subscriptions, 1);
});

test('push dispatcher - removeTarget drops every subscription of a closed connection', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const target = new FakeTarget('a');
  h.dispatcher.subscribe(target, 'web', undefined);
  h.dispatcher.subscribe(target, 'db', undefined);
  await h.flush();
  h.dispatcher.removeTarget(target, ['web', 'db']);
  const sent = target.texts.length;
  await h.publish(web2, 1);
  await h.advance(10 * ACK_TIMEOUT_MS);
  assert.equal(target.texts.length, sent);
  assert.deepEqual(target.failures, []);
  assert.equal(h.dispatcher.stats.subscriptions, 0);
});

test('push dispatcher - subscribing again replaces the subscription and its pending push', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  const target = new FakeTarget('a');
  h.dispatcher.subscribe(target, 'web', undefined);
  await h.flush();
  const v1 = await h.version('web');
  // The agent repeats its subscription, saying it holds v1, and acknowledges the push it got.
  h.dispatcher.subscribe(target, 'web', v1);
  await h.flush();
  h.dispatcher.ack(target, 'web', v1);
  await h.advance(10 * ACK_TIMEOUT_MS);
  assert.deepEqual(target.versions, [v1], 'no re-send of an acknowledged push');
  assert.deepEqual(target.failures, []);
  assert.equal(h.dispatcher.stats.subscriptions, 1);
});

test('push dispatcher - the catalog is its own subscription: pushed at once, never awaited, apart from any service', async (t) => {
  const h = harness(t);
  await h.publish(web1, 1);
  await h.publish(makeInstance({ id: 'cat-1', service: 'catalog' }), 1);
  const target = new FakeTarget('a');
  h.dispatcher.subscribeCatalog(target, undefined);
  // A service may be called anything, "catalog" included: it is a separate subscription.
  h.dispatcher.subscribe(target, 'catalog', undefined);
  await h.flush();
  const frames = target.texts.map((s) => JSON.parse(s) as { type: string; service?: string });
  assert.deepEqual(frames.map((f) => f.type).sort(), ['catalog', 'push']);
  assert.equal(frames.find((f) => f.type === 'push')?.service, 'catalog');
  assert.equal(h.dispatcher.stats.subscriptions, 2);
  assert.equal(h.dispatcher.unacknowledged, 1, 'only the service push waits for an ack');

  h.dispatcher.ack(target, 'catalog', await h.version('catalog'));
  await h.advance(10 * ACK_TIMEOUT_MS);
  assert.equal(target.texts.length, 2, 'the catalog push is not re-sent without an ack');
  assert.deepEqual(target.failures, []);

  // Subscribing to the catalog again with the version held sends nothing new.
  const held = (
    JSON.parse(target.texts.find((s) => s.includes('"type":"catalog"')) ?? '{}') as {
      version: number;
    }
  ).version;
  h.dispatcher.subscribeCatalog(target, held);
  await h.flush();
  assert.equal(target.texts.length, 2);
  assert.equal(h.dispatcher.stats.subscriptions, 2, 'a repeated catalog subscription is not new');

  h.dispatcher.removeTarget(target, ['catalog']);
  assert.equal(h.dispatcher.stats.subscriptions, 0, 'the closed connection left the catalog too');
});
