import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { DataServer } from '../../control-plane/data/data-server.js';
import { DatumStore } from '../../control-plane/data/datum-store.js';
import { regroup, replicaItems } from '../../control-plane/data/replica-follower.js';
import { Tombstones } from '../../control-plane/data/tombstones.js';
import { verdict } from '../../control-plane/session/write-batch.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import {
  decodeReplicaItem,
  decodeReplicationOp,
  type ReplicaItem,
  type ReplicationOp,
} from '../../proto/replication-link.js';
import { silentLogger } from '../../proto/runtime/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import type { Decoded } from '../../proto/validate.js';
import { VersionClock } from '../../proto/version.js';
import { makeInstance } from '../support/fixtures.js';

const SLOTS = 4;
const web1 = makeInstance({ id: 'web-1', service: 'web' });
const regId = registrationId(web1);

function pub(i: Instance, version: number, owner = 'session-a:1') {
  return { registrationId: registrationId(i), instance: i, version, owner };
}

function newStore(): DatumStore {
  return new DatumStore(new VersionClock(() => Date.UTC(2025, 0, 1)), SLOTS);
}

/** A table of epoch `epoch` in which `leader` leads every slot and `followers` follow them. */
function table(epoch: number, leader: string, followers: string[]): SlotTable {
  const slots = Array.from({ length: SLOTS }, (_, id) => ({ id, leader, leaderEpoch: epoch, followers }));
  return { epoch, slotCount: SLOTS, slots };
}

function server(t: TestContext, id: string, liveNow: () => number = () => 0): DataServer {
  const s = new DataServer({
    id,
    slotCount: SLOTS,
    warmupMs: 0,
    catalogDebounceMs: 10,
    logger: silentLogger,
    clock: new VersionClock(() => Date.UTC(2025, 0, 1)),
    tombstoneMs: 1000,
    liveNow,
  });
  t.after(() => {
    s.close();
  });
  return s;
}

/** Passes a value through JSON and a wire decoder, as the link does. */
function wire<T>(value: unknown, decode: (raw: unknown) => Decoded<T>): T {
  const d = decode(JSON.parse(JSON.stringify(value)));
  assert.ok(d.ok, 'decodes');
  return d.value;
}

test('tombstones - a publish older than its unpublish is superseded; a newer re-registration applies', () => {
  const store = newStore();
  assert.equal(store.publish(pub(web1, 10)), 'applied');
  assert.equal(store.unpublish('web', regId, 11), 'removed');
  // The registration's own publish, late over another session, and an even older one.
  assert.equal(store.publish(pub(web1, 10, 'session-b:7')), 'superseded');
  assert.equal(store.publish(pub(web1, 11, 'session-b:7')), 'superseded');
  assert.deepEqual(store.get('web').instances, []);
  assert.equal(store.tombstones.size, 1);
  // A real re-registration is newer than the withdrawal: it passes and the tombstone goes.
  assert.equal(store.publish(pub(web1, 12)), 'applied');
  assert.equal(store.tombstones.size, 0);
  assert.deepEqual(
    store.get('web').instances.map((i) => i.id),
    ['web-1'],
  );
});

test('tombstones - an unpublish that overtakes its publish still buries the late publish', () => {
  const store = newStore();
  assert.equal(store.unpublish('web', regId, 11), 'absent');
  assert.equal(store.publish(pub(web1, 10)), 'superseded');
  assert.equal(store.version('web'), undefined, 'nothing was stored for the refused publish');
});

test('tombstones - a dropped connection leaves none: the same version re-sent over another session is kept', () => {
  const store = newStore();
  store.publish(pub(web1, 10, 'session-a:1'));
  store.dropOwner('session-a:1');
  assert.equal(store.tombstones.size, 0);
  assert.equal(store.publish(pub(web1, 10, 'session-b:1')), 'applied');
});

test('tombstones - they expire after their live time, and past the cap the oldest are forgotten', () => {
  let now = 0;
  const stones = new Tombstones({ ttlMs: 1000, cap: 3, now: () => now });
  stones.add('web', 0, 'r1', 5);
  now = 400;
  stones.add('web', 0, 'r2', 5);
  assert.equal(stones.buries('web', 'r1', 5), true);
  now = 1000;
  assert.equal(stones.size, 1, 'r1 expired');
  assert.equal(stones.buries('web', 'r1', 5), false);
  for (const r of ['r3', 'r4', 'r5']) stones.add('web', 1, r, 5);
  assert.equal(stones.size, 3);
  assert.equal(stones.evicted, 1);
  assert.equal(stones.buries('web', 'r2', 5), false, 'the oldest went first');
  assert.deepEqual(
    stones.inSlot(1).map((s) => s.registrationId),
    ['r3', 'r4', 'r5'],
  );
  stones.dropSlot(1);
  assert.equal(stones.size, 0);
});

test('tombstones - a repeated withdrawal keeps the higher version and counts its age from the latest', () => {
  let now = 0;
  const stones = new Tombstones({ ttlMs: 1000, cap: 2, now: () => now });
  stones.add('web', 0, 'r1', 7);
  stones.add('web', 0, 'r2', 5);
  now = 600;
  stones.add('web', 0, 'r1', 6);
  assert.equal(stones.buries('web', 'r1', 7), true, 'the higher version stays');
  stones.add('web', 0, 'r3', 5);
  assert.equal(stones.evicted, 1);
  assert.equal(stones.buries('web', 'r2', 5), false, 'r2 was the oldest, not r1');
  now = 1500;
  assert.equal(stones.size, 2, 'r1 ages from its latest withdrawal');
  now = 1600;
  assert.equal(stones.size, 0);
  // Many withdrawals at the cap: the oldest always goes, the newest always stays.
  for (let i = 0; i < 5000; i++) stones.add('web', i % 4, `m${i}`, 1);
  assert.equal(stones.size, 2);
  assert.equal(stones.buries('web', 'm4999', 1), true);
  assert.equal(stones.buries('web', 'm4997', 1), false);
});

test('tombstones - a follower learns them from the stream and the snapshot and keeps them when it takes over', (t) => {
  const leader = server(t, 'data-1');
  leader.applyTable(table(1, 'data-1', ['data-2', 'data-3']));
  leader.finishMigration([0, 1, 2, 3], []);
  // data-2 follows from the stream, data-3 loads a snapshot taken after the unpublish.
  const streamed = server(t, 'data-2');
  streamed.applyTable(table(1, 'data-1', ['data-2', 'data-3']));
  streamed.loadReplica([]);
  const ops: ReplicationOp[] = [];
  leader.replicationSink = (op) => {
    ops.push(op);
    streamed.applyReplica(wire(op, decodeReplicationOp));
  };
  void leader.publish('session-a:1', [pub(web1, 10)], 1);
  void leader.unpublish([{ key: 'web', registrationId: regId, version: 11 }], 1);
  // An unpublish of something never held is replicated as a tombstone alone.
  const other = makeInstance({ id: 'web-9', service: 'web' });
  void leader.unpublish([{ key: 'web', registrationId: registrationId(other), version: 3 }], 1);
  assert.deepEqual(
    ops.map((op) => [op.put !== undefined, op.del !== undefined, op.tomb?.version]),
    [
      [true, false, undefined],
      [false, true, 11],
      [false, false, 3],
    ],
  );

  const copied = server(t, 'data-3');
  copied.applyTable(table(1, 'data-1', ['data-2', 'data-3']));
  const slot = leader.store.slotOf('web');
  const items = replicaItems(slot, leader.store.exportSlot(slot), leader.store.tombstones.inSlot(slot));
  copied.loadReplica(regroup(items.map((i) => wire<ReplicaItem>(i, decodeReplicaItem))));

  for (const follower of [streamed, copied]) {
    assert.equal(follower.store.tombstones.size, 2, `${follower.id} holds both tombstones`);
    // The follower takes the slots over; a session hands it the stale publisher it still holds.
    const plan = follower.applyTable(table(2, follower.id, []));
    assert.equal(plan?.migrate.length, SLOTS);
    follower.finishMigration([0, 1, 2, 3], [pub(web1, 10, 'session-b:3'), pub(other, 2, 'session-b:3')]);
    assert.deepEqual(follower.store.get('web').instances, [], `${follower.id} resurrects nothing`);
    assert.equal(follower.store.publish(pub(web1, 10, 'session-b:3')), 'superseded');
  }
});

test('tombstones - a data server reports how many it holds', async (t) => {
  let now = 0;
  const s = server(t, 'data-1', () => now);
  s.applyTable(table(1, 'data-1', []));
  s.finishMigration([0, 1, 2, 3], []);
  await s.publish('session-a:1', [pub(web1, 10)], 1);
  await s.unpublish([{ key: 'web', registrationId: regId, version: 11 }], 1);
  assert.equal(s.stats()['tombstones'], 1);
  assert.deepEqual((await s.publish('session-b:1', [pub(web1, 10)], 1)).value, ['superseded']);
  now = 1000;
  assert.equal(s.stats()['tombstones'], 0, 'gone after their live time');
});

test('tombstones - the session settles a superseded publish at once instead of retrying it', () => {
  const w = { op: 'publish', conn: 'c1', id: 'web-1', item: pub(web1, 10) } as const;
  assert.deepEqual(verdict(w, 'superseded'), {
    kind: 'confirm',
    result: { op: 'publish', id: 'web-1', version: 10 },
  });
  assert.equal(verdict(w, 'stale_epoch').kind, 'retry', 'unlike an outcome that clears up by itself');
});
