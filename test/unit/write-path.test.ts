import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { DataRouter } from '../../control-plane/session/data-router.js';
import { WritePath } from '../../control-plane/session/write-path.js';
import { Protection } from '../../control-plane/link/protection.js';
import type { ConfirmResult, Registration, Withdrawal } from '../../proto/agent-link.js';
import { MeshregError } from '../../proto/errors.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { createLogger } from '../../proto/runtime/log.js';
import { slotOf } from '../../proto/slot-table.js';
import { FakeData } from '../support/fake-data.js';
import { makeInstance, settle } from '../support/fixtures.js';

const SLOTS = 16;
const GRACE_MS = 10_000;
const RETRY_MS = 500;
const NODE = 'node-b';

interface Harness {
  readonly writes: WritePath;
  readonly router: DataRouter;
  /** d1 leads every slot but db's, which d2 leads. */
  readonly d1: FakeData;
  readonly d2: FakeData;
  /** Late confirmations, per connection, in order. */
  readonly confirms: { conn: string; results: readonly ConfirmResult[] }[];
  /** Messages logged at error level. */
  readonly errors: string[];
  /** Applies a new table of this epoch (same leaders) and runs what it triggers in a session. */
  newTable(epoch: number): Promise<void>;
  tick(ms: number): Promise<void>;
}

/** A grace timer in wall time, so the mocked `setTimeout` drives it. */
function wallTimeout(fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms);
  return () => {
    clearTimeout(timer);
  };
}

function harness(
  t: TestContext,
  opts: { maxCallBytes?: number; table?: boolean; protection?: Protection } = {},
): Harness {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  const router = new DataRouter();
  const d1 = new FakeData('d1');
  const d2 = new FakeData('d2');
  router.addServer(d1);
  router.addServer(d2);
  const dbSlot = slotOf('db', SLOTS);
  const slots = Array.from({ length: SLOTS }, (_, id) => ({
    id,
    leader: id === dbSlot ? 'd2' : 'd1',
    leaderEpoch: 1,
    followers: [],
  }));
  if (opts.table !== false) router.applyTable({ epoch: 1, slotCount: SLOTS, slots });
  const confirms: Harness['confirms'] = [];
  const errors: string[] = [];
  const logger = createLogger('error', {}, (line) => {
    errors.push(String((JSON.parse(line) as { msg: unknown }).msg));
  });
  const writes = new WritePath(router, {
    graceMs: GRACE_MS,
    retryIntervalMs: RETRY_MS,
    maxCallBytes: opts.maxCallBytes ?? 1_000_000,
    logger,
    confirm: (conn, frame) => confirms.push({ conn, results: frame.results }),
    graceTimer: wallTimeout,
    protection: opts.protection,
  });
  t.after(() => {
    writes.close();
  });
  writes.open('c1', NODE);
  return {
    writes,
    router,
    d1,
    d2,
    confirms,
    errors,
    newTable: async (epoch) => {
      router.applyTable({ epoch, slotCount: SLOTS, slots });
      // What the session server does on a new table.
      await writes.retry();
    },
    tick: async (ms) => {
      t.mock.timers.tick(ms);
      await settle();
    },
  };
}

const web = (n: number, extra: Partial<Instance> = {}): Instance =>
  makeInstance({ id: `web-${n}`, service: 'web', nodeId: NODE, ...extra });
const db = (n: number): Instance => makeInstance({ id: `db-${n}`, service: 'db', nodeId: NODE });
const reg = (instance: Instance, version = 1): Registration => ({ instance, version });
const withdrawal = (i: Instance, version = 2): Withdrawal => ({ id: i.id, service: i.service, version });
const confirmed = (op: 'publish' | 'unpublish', i: Instance, version = 1): ConfirmResult => ({
  op,
  id: i.id,
  version,
});

test('write path - publish confirms applied, unchanged, owner-changed and stale items in one call', async (t) => {
  const h = harness(t);
  h.d1.held.set(registrationId(web(2)), { owner: 'c1', version: 1, key: 'web' });
  h.d1.held.set(registrationId(web(3)), { owner: 'c0', version: 1, key: 'web' });
  h.d1.held.set(registrationId(web(4)), { owner: 'c1', version: 9, key: 'web' });
  const results = await h.writes.publish('c1', [reg(web(1)), reg(web(2)), reg(web(3)), reg(web(4))]);
  assert.deepEqual(
    results,
    [1, 2, 3, 4].map((n) => confirmed('publish', web(n))),
  );
  const calls = h.d1.callsOf('publish');
  assert.equal(calls.length, 1, 'one call to the leader');
  assert.deepEqual(
    calls[0]?.items.map((i) => i.instance.id),
    ['web-1', 'web-2', 'web-3', 'web-4'],
  );
  assert.equal(calls[0]?.owner, 'c1');
  assert.equal(calls[0]?.epoch, 1);
  assert.equal(h.writes.stats().pendingWrites, 0);
  assert.equal(h.writes.publishersOf('c1'), 4);
});

test('write path - a stale_epoch item stays pending and is confirmed late after a table change', async (t) => {
  const h = harness(t);
  // The leader does not take web-2 at epoch 1 (it learnt of a newer table first).
  h.d1.publishProgram = (item, epoch) =>
    item.instance.id === 'web-2' && epoch < 2 ? 'stale_epoch' : undefined;
  const results = await h.writes.publish('c1', [reg(web(1)), reg(web(2))]);
  assert.deepEqual(results, [confirmed('publish', web(1))], 'only what landed is confirmed now');
  assert.equal(h.writes.stats().pendingWrites, 1);
  assert.deepEqual(h.confirms, []);

  await h.newTable(2);
  assert.deepEqual(h.confirms, [{ conn: 'c1', results: [confirmed('publish', web(2))] }]);
  const calls = h.d1.callsOf('publish');
  assert.deepEqual(
    calls.map((c) => [c.epoch, c.items.map((i) => i.instance.id)]),
    [
      [1, ['web-1', 'web-2']],
      [2, ['web-2']],
    ],
    'the retry carries only the pending item, at the new epoch',
  );
  assert.equal(h.writes.stats().pendingWrites, 0);
});

test('write path - a stale_epoch withdrawal is retried by the timer until it lands', async (t) => {
  const h = harness(t);
  await h.writes.publish('c1', [reg(web(1))]);
  let refusals = 2;
  h.d1.unpublishProgram = () => (refusals-- > 0 ? 'stale_epoch' : undefined);
  assert.deepEqual(await h.writes.unpublish('c1', [withdrawal(web(1))]), []);
  await h.tick(RETRY_MS);
  assert.deepEqual(h.confirms, [], 'still refused at the first retry');
  await h.tick(RETRY_MS);
  assert.deepEqual(h.confirms, [{ conn: 'c1', results: [confirmed('unpublish', web(1), 2)] }]);
  assert.equal(h.d1.callsOf('unpublish').length, 3);
  assert.equal(h.d1.held.size, 0);
});

test('write path - unavailable items (link down, or no table yet) are retried and confirmed late', async (t) => {
  const h = harness(t, { table: false });
  // No table: nothing to call, the item waits.
  assert.deepEqual(await h.writes.publish('c1', [reg(web(1))]), []);
  assert.equal(h.d1.calls.length, 0);
  assert.equal(h.writes.stats().pendingWrites, 1);
  // A table, but the leader's link is down: the call resolves to unavailable.
  h.d1.available = false;
  await h.newTable(1);
  assert.equal(h.d1.callsOf('publish').length, 1);
  assert.equal(h.writes.stats().pendingWrites, 1);
  assert.deepEqual(h.confirms, []);
  // The link is back: the timer's retry lands it.
  h.d1.available = true;
  await h.tick(RETRY_MS);
  assert.deepEqual(h.confirms, [{ conn: 'c1', results: [confirmed('publish', web(1))] }]);
  assert.equal(h.writes.stats().pendingWrites, 0);
  assert.deepEqual(h.errors, [], 'expected failures are not logged as errors');
});

test('write path - a call refused with another code refuses its items to the agent', async (t) => {
  const h = harness(t);
  h.d1.refuseWith = new MeshregError('invalid_argument', 'items[0].instance: bad');
  const results = await h.writes.publish('c1', [reg(web(1))]);
  assert.deepEqual(results, [
    {
      ...confirmed('publish', web(1)),
      error: { code: 'invalid_argument', message: 'items[0].instance: bad' },
    },
  ]);
  assert.equal(h.writes.stats().pendingWrites, 0, 'a refusal is not retried');
});

test('write path - a rejecting data server is a bug: logged as an error, its items refused as internal', async (t) => {
  const h = harness(t);
  h.d1.throwWith = new TypeError('boom');
  const results = await h.writes.publish('c1', [reg(web(1))]);
  assert.deepEqual(results, [
    { ...confirmed('publish', web(1)), error: { code: 'internal', message: 'internal error' } },
  ]);
  assert.deepEqual(h.errors, ['data server call failed unexpectedly']);
  assert.equal(h.writes.stats().pendingWrites, 0);
});

test('write path - unpublishes to two leaders are two calls, one per leader', async (t) => {
  const h = harness(t);
  const all = [web(1), db(1), web(2), db(2)];
  await h.writes.publish(
    'c1',
    all.map((i) => reg(i)),
  );
  const results = await h.writes.unpublish(
    'c1',
    all.map((i) => withdrawal(i)),
  );
  assert.deepEqual(
    [...results].sort((a, b) => a.id.localeCompare(b.id)),
    [db(1), db(2), web(1), web(2)].map((i) => confirmed('unpublish', i, 2)),
  );
  const [d1Calls, d2Calls] = [h.d1.callsOf('unpublish'), h.d2.callsOf('unpublish')];
  assert.equal(d1Calls.length, 1);
  assert.equal(d2Calls.length, 1);
  assert.deepEqual(
    d1Calls[0]?.items.map((i) => i.key),
    ['web', 'web'],
  );
  assert.deepEqual(
    d2Calls[0]?.items.map((i) => i.registrationId),
    [registrationId(db(1)), registrationId(db(2))],
  );
  assert.equal(h.writes.publishersOf('c1'), 0);
});

test('write path - a retried batch is cut into calls of at most maxCallBytes', async (t) => {
  const maxCallBytes = 2_000;
  const h = harness(t, { maxCallBytes });
  const big = (n: number): Instance => web(n, { meta: { blob: 'x'.repeat(300) } });
  h.d1.available = false;
  const regs = Array.from({ length: 12 }, (_, n) => reg(big(n)));
  await h.writes.publish('c1', regs);
  const live = h.d1.callsOf('publish');
  assert.equal(live.length, 1, 'a live write is one agent frame: one call');
  assert.ok((live[0]?.bytes ?? 0) > maxCallBytes);

  h.d1.available = true;
  await h.tick(RETRY_MS);
  const retried = h.d1.callsOf('publish').slice(1);
  assert.ok(retried.length > 1, `the retry is cut into several calls (${retried.length})`);
  for (const c of retried) assert.ok(c.bytes <= maxCallBytes, `a call of ${c.bytes} bytes`);
  assert.deepEqual(
    retried.flatMap((c) => c.items.map((i) => i.instance.id)).sort(),
    regs.map((r) => r.instance.id).sort(),
    'every item once',
  );
  assert.equal(h.confirms.flatMap((c) => c.results).length, 12);
});

test('write path - grace: a closed connection is dropped after graceMs unless its publishers were re-sent', async (t) => {
  const h = harness(t);
  await h.writes.publish('c1', [reg(web(1)), reg(web(2)), reg(db(1))]);
  h.writes.closed('c1');
  assert.equal(h.writes.stats().connectionsInGrace, 1);
  // The agent reconnects and re-sends web-1 and db-1 only.
  h.writes.open('c2', NODE);
  await h.writes.publish('c2', [reg(web(1)), reg(db(1))]);
  await h.tick(GRACE_MS - 1);
  assert.equal(h.d1.callsOf('dropOwner').length, 0, 'kept during the grace period');
  assert.equal(h.d1.held.size, 2);
  await h.tick(1);
  assert.deepEqual(
    [h.d1, h.d2].map((d) => d.callsOf('dropOwner').map((c) => c.owner)),
    [['c1'], ['c1']],
    'every data server is told to drop what c1 still owns',
  );
  assert.deepEqual(
    [...h.d1.held.values()].map((x) => x.owner),
    ['c2'],
    'web-2 is gone, web-1 stays',
  );
  assert.deepEqual(
    [...h.d2.held.values()].map((x) => x.owner),
    ['c2'],
  );
  assert.equal(h.writes.stats().connectionsInGrace, 0);
});

test('write path - a switched-off connection is dropped at once; its pending writes are forgotten', async (t) => {
  const h = harness(t);
  h.d1.available = false;
  await h.writes.publish('c1', [reg(web(1))]);
  assert.equal(h.writes.stats().pendingWrites, 1);
  h.writes.closed('c1', true);
  assert.equal(h.writes.stats().pendingWrites, 0);
  h.d1.available = true;
  await h.tick(0);
  assert.deepEqual(
    h.d1.callsOf('dropOwner').map((c) => c.owner),
    ['c1'],
  );
  await h.tick(RETRY_MS);
  assert.equal(h.d1.callsOf('publish').length, 1, 'nothing retried for a closed connection');
  assert.deepEqual(h.confirms, []);
});

test('write path - collect returns the publishers of open and in-grace connections in the asked slots', async (t) => {
  const h = harness(t);
  h.writes.open('c2', NODE);
  await h.writes.publish('c1', [reg(web(1)), reg(db(1))]);
  await h.writes.publish('c2', [reg(web(2), 3)]);
  h.writes.closed('c1');
  const webSlot = slotOf('web', SLOTS);
  const got = h.writes.collect({ slots: [webSlot], slotCount: SLOTS });
  assert.deepEqual(got.map((p) => [p.owner, p.instance.id, p.version]).sort(), [
    ['c1', 'web-1', 1],
    ['c2', 'web-2', 3],
  ]);
  assert.deepEqual(
    h.writes.collect({ slots: [slotOf('db', SLOTS)], slotCount: SLOTS }).map((p) => p.instance.id),
    ['db-1'],
  );
  assert.deepEqual(h.writes.collect({ slots: [], slotCount: SLOTS }), []);
});

test('write path - a slow retry is not started again while in flight; the other leader is not held up', async (t) => {
  const h = harness(t);
  h.d1.available = false;
  h.d2.available = false;
  await h.writes.publish('c1', [reg(web(1)), reg(db(1))]);
  h.d1.available = true;
  h.d2.available = true;
  h.d1.delayMs = 3 * RETRY_MS;
  await h.tick(RETRY_MS); // the retry starts; d1 answers in 3 intervals
  assert.deepEqual(h.confirms, [], 'one confirm frame per connection and retry, when all its calls answered');
  await h.tick(RETRY_MS); // the timer fires again while the retry is in flight
  assert.equal(h.d1.callsOf('publish').length, 2, 'the live call and one retry, not two');
  assert.equal(h.d2.callsOf('publish').length, 2);
  await h.tick(2 * RETRY_MS);
  assert.deepEqual(h.confirms, [
    { conn: 'c1', results: [confirmed('publish', db(1)), confirmed('publish', web(1))] },
  ]);
  assert.equal(h.writes.stats().pendingWrites, 0);
});

test('write path - writes over the session rate wait, then go out in one call per leader when tokens refill', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'], now: 0 });
  const router = new DataRouter();
  const d1 = new FakeData('d1');
  router.addServer(d1);
  const slots = Array.from({ length: SLOTS }, (_, id) => ({
    id,
    leader: 'd1',
    leaderEpoch: 1,
    followers: [],
  }));
  router.applyTable({ epoch: 1, slotCount: SLOTS, slots });
  const confirms: ConfirmResult[] = [];
  const writes = new WritePath(router, {
    graceMs: GRACE_MS,
    retryIntervalMs: 60_000,
    maxCallBytes: 1_000_000,
    writeRatePerSec: 100,
    writeBurst: 4,
    now: () => Date.now(),
    logger: createLogger('error', {}, () => undefined),
    confirm: (_conn, frame) => confirms.push(...frame.results),
  });
  t.after(() => {
    writes.close();
  });
  writes.open('c1', NODE);
  const regs = Array.from({ length: 10 }, (_, n) => reg(web(n)));
  const now = await writes.publish('c1', regs);
  assert.deepEqual(
    now.map((r) => r.id),
    ['web-0', 'web-1', 'web-2', 'web-3'],
    'the burst goes at once',
  );
  assert.equal(writes.stats().pendingWrites, 6);
  t.mock.timers.tick(30);
  await settle();
  assert.equal(confirms.length, 0, 'not before the bucket holds tokens for them');
  t.mock.timers.tick(40);
  await settle();
  const calls = d1.callsOf('publish');
  assert.deepEqual(
    calls.map((c) => c.items.length),
    [4, 4],
    'the held-back writes go out together, as many as the burst allows',
  );
  t.mock.timers.tick(20);
  await settle();
  assert.deepEqual(
    d1.callsOf('publish').map((c) => c.items.length),
    [4, 4, 2],
  );
  assert.deepEqual(
    confirms.map((r) => r.id),
    ['web-4', 'web-5', 'web-6', 'web-7', 'web-8', 'web-9'],
  );
  assert.equal(writes.stats().pendingWrites, 0);
});

/** Six agents of their own node, each with one instance on d1; returns the connection IDs. */
async function sixAgents(h: Harness): Promise<string[]> {
  const conns = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
  for (const [i, c] of conns.entries()) {
    const node = `node-${i}`;
    if (c !== 'c1') h.writes.open(c, node);
    const nodeId = c === 'c1' ? NODE : node;
    await h.writes.publish(c, [reg(web(i, { id: `web-${i}`, nodeId }))]);
  }
  return conns;
}

const held = (h: Harness): string[] =>
  [...h.d1.held.values()].map((x) => x.owner).sort((a, b) => a.localeCompare(b));

test('write path - protection: when a third of the connections go at once, one is dropped and the rest held until released', async (t) => {
  const protection = new Protection(
    'connections',
    { maxRemovalPercent: 15, windowMs: 60_000, minRemovals: 1 },
    createLogger('error', {}, () => undefined),
  );
  const h = harness(t, { protection });
  await sixAgents(h);
  h.writes.closed('c5');
  h.writes.closed('c6');
  await h.tick(GRACE_MS);
  assert.deepEqual(
    h.d1
      .callsOf('dropOwner')
      .map((c) => c.owner)
      .sort(),
    ['c5'],
    'the floor lets one go',
  );
  assert.deepEqual(protection.status().held, ['c6'], 'the second is held');
  assert.equal(h.writes.stats().connectionsInGrace, 1, 'its publishers are kept');
  assert.deepEqual(held(h), ['c1', 'c2', 'c3', 'c4', 'c6']);
  await h.tick(10 * GRACE_MS);
  assert.deepEqual(protection.status().held, ['c6'], 'held until recovery or release, not for a time');
  assert.deepEqual(protection.release(), ['c6']);
  await h.tick(0);
  assert.deepEqual(held(h), ['c1', 'c2', 'c3', 'c4'], 'the release removes exactly what was held');
  assert.equal(protection.active, false);
});

test('write path - protection: a held connection whose agent comes back ends the mode; a switched-off client is never held', async (t) => {
  const protection = new Protection(
    'connections',
    { maxRemovalPercent: 15, windowMs: 60_000, minRemovals: 0 },
    createLogger('error', {}, () => undefined),
  );
  const h = harness(t, { protection });
  await sixAgents(h);
  h.writes.closed('c6');
  await h.tick(GRACE_MS);
  assert.deepEqual(protection.status().held, ['c6']);
  h.writes.open('c7', 'node-5');
  assert.equal(protection.active, false, 'the agent of the held connection is back');
  await h.writes.publish('c7', [reg(web(5, { id: 'web-5', nodeId: 'node-5' }))]);
  await h.tick(GRACE_MS);
  assert.deepEqual(
    held(h),
    ['c1', 'c2', 'c3', 'c4', 'c5', 'c7'],
    'the replaced connection ends after its grace',
  );
  h.writes.closed('c4', true);
  await h.tick(0);
  assert.ok(!held(h).includes('c4'), 'a switched-off client is dropped although nothing may be removed');
  assert.equal(protection.active, false);
});
