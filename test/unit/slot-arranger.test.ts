import assert from 'node:assert/strict';
import { test } from 'node:test';
import { arrangeSlots, type ArrangeOptions } from '../../control-plane/meta/slot-arranger.js';
import type { SlotTable } from '../../proto/slot-table.js';

function options(overrides: Partial<ArrangeOptions> = {}): ArrangeOptions {
  return { slotCount: 16, followers: 1, maxLeaderMoves: 100, nextEpoch: (p) => p + 1, ...overrides };
}

function arrange(prev: SlotTable | undefined, live: readonly string[], opts: ArrangeOptions): SlotTable {
  const t = arrangeSlots(prev, live, opts);
  assert.ok(t !== undefined);
  assertSound(t, live, opts);
  return t;
}

/** Invariants of every table: live leaders, distinct live followers, never the leader itself. */
function assertSound(t: SlotTable, live: readonly string[], opts: ArrangeOptions): void {
  assert.equal(t.slots.length, t.slotCount);
  const want = Math.min(opts.followers, live.length - 1);
  for (const s of t.slots) {
    assert.ok(live.includes(s.leader), `slot ${s.id} leader ${s.leader} is live`);
    assert.ok(!s.followers.includes(s.leader), `slot ${s.id} leader is not its own follower`);
    assert.equal(new Set(s.followers).size, s.followers.length, `slot ${s.id} has no duplicate followers`);
    assert.equal(s.followers.length, want, `slot ${s.id} has ${want} followers`);
    for (const f of s.followers) assert.ok(live.includes(f), `slot ${s.id} follower ${f} is live`);
  }
}

function leaderCounts(t: SlotTable): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of t.slots) m.set(s.leader, (m.get(s.leader) ?? 0) + 1);
  return m;
}

function spread(t: SlotTable, live: readonly string[]): number {
  const counts = live.map((n) => leaderCounts(t).get(n) ?? 0);
  return Math.max(...counts) - Math.min(...counts);
}

test('slot arranger - the first table is balanced with the requested followers', () => {
  for (const [live, followers] of [
    [['a', 'b', 'c'], 1],
    [['a', 'b', 'c', 'd', 'e'], 2],
    [['a'], 1],
    [['a', 'b'], 3],
  ] as const) {
    const opts = options({ followers });
    const t = arrange(undefined, live, opts);
    assert.equal(t.epoch, 1);
    assert.ok(spread(t, live) <= 1, `leaders balanced over ${live.join(',')}`);
    for (const s of t.slots) assert.equal(s.leaderEpoch, 1);
  }
});

test('slot arranger - unchanged membership returns the same table without a new epoch', () => {
  let epochs = 0;
  const opts = options({
    nextEpoch: (p) => {
      epochs++;
      return p + 1;
    },
  });
  const t1 = arrange(undefined, ['a', 'b', 'c'], opts);
  assert.equal(epochs, 1);
  assert.equal(arrangeSlots(t1, ['c', 'a', 'b'], opts), t1);
  assert.equal(arrangeSlots(t1, ['a', 'b', 'c'], opts), t1);
  assert.equal(epochs, 1);
});

test('slot arranger - no live node keeps the previous table', () => {
  const opts = options();
  const t1 = arrange(undefined, ['a', 'b'], opts);
  assert.equal(arrangeSlots(t1, [], opts), t1);
  assert.equal(arrangeSlots(undefined, [], opts), undefined);
});

test('slot arranger - a removed leader is replaced by its follower before a fresh node', () => {
  const opts = options({ maxLeaderMoves: 0 });
  const t1 = arrange(undefined, ['a', 'b', 'c'], opts);
  const t2 = arrange(t1, ['b', 'c'], opts);
  assert.equal(t2.epoch, t1.epoch + 1);
  let promoted = 0;
  for (const before of t1.slots) {
    const after = t2.slots[before.id];
    assert.ok(after !== undefined);
    if (before.leader === 'a') {
      promoted++;
      assert.equal(after.leader, before.followers[0], `slot ${before.id} promoted its follower`);
      assert.equal(after.leaderEpoch, before.leaderEpoch + 1);
      assert.deepEqual(after.followers, [before.followers[0] === 'b' ? 'c' : 'b'], 'followers refilled');
    } else {
      assert.equal(after.leader, before.leader, `slot ${before.id} keeps its leader`);
      assert.equal(after.leaderEpoch, before.leaderEpoch);
    }
  }
  assert.ok(promoted > 0);
});

test('slot arranger - a slot whose leader and followers all died gets the least loaded node', () => {
  const opts = options({ followers: 1, maxLeaderMoves: 0, slotCount: 8 });
  const t1 = arrange(undefined, ['a', 'b'], opts);
  const t2 = arrange(t1, ['c'], opts);
  for (const s of t2.slots) {
    assert.equal(s.leader, 'c');
    assert.equal(s.leaderEpoch, (t1.slots[s.id]?.leaderEpoch ?? 0) + 1);
    assert.deepEqual(s.followers, []);
  }
  // The survivors' followers are refilled once another node joins.
  const t3 = arrange(t2, ['c', 'd'], opts);
  for (const s of t3.slots) assert.deepEqual(s.followers, ['d']);
});

test('slot arranger - after a removal the leaders rebalance and stay balanced', () => {
  const opts = options();
  const t1 = arrange(undefined, ['a', 'b', 'c', 'd'], opts);
  const t2 = arrange(t1, ['a', 'b', 'c'], opts);
  assert.ok(spread(t2, ['a', 'b', 'c']) <= 1);
  for (const s of t2.slots) assert.ok(s.leaderEpoch >= (t1.slots[s.id]?.leaderEpoch ?? 0));
});

test('slot arranger - a joining node takes leaders in bounded steps and converges', () => {
  const opts = options({ slotCount: 64, maxLeaderMoves: 3 });
  const live = ['a', 'b', 'c'];
  let t = arrange(undefined, ['a', 'b'], opts);
  const epochs = [t.epoch];
  const leadersOfC: number[] = [];
  for (let round = 0; round < 50; round++) {
    const next = arrange(t, live, opts);
    if (next === t) break;
    const moved = next.slots.filter((s, i) => s.leader !== t.slots[i]?.leader).length;
    assert.ok(moved <= opts.maxLeaderMoves, `round ${round} moved ${moved} leaders`);
    for (const s of next.slots) {
      const before = t.slots[s.id];
      assert.ok(before !== undefined);
      assert.ok(s.leaderEpoch >= before.leaderEpoch, 'leader epochs never shrink');
      if (s.leader !== before.leader) assert.equal(s.leaderEpoch, before.leaderEpoch + 1);
    }
    epochs.push(next.epoch);
    leadersOfC.push(leaderCounts(next).get('c') ?? 0);
    t = next;
  }
  assert.ok(spread(t, live) <= 1, 'converged to balance');
  assert.equal(arrangeSlots(t, live, opts), t, 'a converged table is stable');
  // 64 slots over 3 nodes: c ends with 21, three moves at a time.
  assert.deepEqual(leadersOfC, [3, 6, 9, 12, 15, 18, 21]);
  for (let i = 1; i < epochs.length; i++) assert.ok((epochs[i] ?? 0) > (epochs[i - 1] ?? 0));
});

test('slot arranger - epochs only grow, whatever nextEpoch is built on', () => {
  const opts = options({ nextEpoch: (p) => p + 10 });
  const t1 = arrange(undefined, ['a'], opts);
  const t2 = arrange(t1, ['a', 'b'], opts);
  const t3 = arrange(t2, ['b'], opts);
  assert.deepEqual([t1.epoch, t2.epoch, t3.epoch], [10, 20, 30]);
});

test('slot arranger - a changed slot count builds a new table', () => {
  const t1 = arrange(undefined, ['a', 'b'], options({ slotCount: 8 }));
  const t2 = arrange(t1, ['a', 'b'], options({ slotCount: 16 }));
  assert.notEqual(t2, t1);
  assert.equal(t2.slotCount, 16);
  assert.ok(t2.epoch > t1.epoch);
});
