/**
 * The etcd store in this process against a real etcd: two stores campaign, exactly one leads, and the
 * table write is a fenced transaction: refused to the follower, refused when arranged from an old
 * revision, and refused to a leader whose election key vanished before it noticed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { silentLogger } from '../../proto/runtime/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { EtcdStore } from '../../control-plane/meta/etcd-store.js';
import type { MetaStoreEvents } from '../../control-plane/meta/meta-store.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';

const table = (epoch: number): SlotTable => ({
  epoch,
  slotCount: 1,
  slots: [{ id: 0, leader: 'data-1', leaderEpoch: 1, followers: [] }],
});

interface Seen {
  store: EtcdStore;
  revision: string;
  leadership: boolean[];
}

describe('etcd store', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  const seen: Seen[] = [];

  const open = async (url: string): Promise<Seen> => {
    const store = new EtcdStore({
      endpoints: [etcd.endpoint],
      prefix: '/fence/',
      metaUrl: url,
      leaseTtlS: 2,
      logger: silentLogger,
    });
    const s: Seen = { store, revision: '0', leadership: [] };
    const events: MetaStoreEvents = {
      members: () => undefined,
      table: (_t, revision) => (s.revision = revision),
      leadership: (l) => s.leadership.push(l),
      health: () => undefined,
    };
    await store.start(events);
    seen.push(s);
    return s;
  };

  const stored = async (): Promise<{ epoch: number; writer: { url: string } }> =>
    JSON.parse((await client.get('/fence/slot-table').string()) ?? '{}') as {
      epoch: number;
      writer: { url: string };
    };
  const storedEpoch = async (): Promise<number> => (await stored()).epoch;

  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: [etcd.endpoint] });
  });

  after(async () => {
    for (const s of seen) await s.store.close();
    client.close();
    await etcd.stop();
  });

  test('etcd store - one of two leads; writes are fenced on the leader key and the table revision', async () => {
    const a = await open('ws://a');
    const b = await open('ws://b');
    const [leader, follower] = await waitFor('one leader', () => {
      if (a.store.leader !== b.store.leader) return a.store.leader ? [a, b] : [b, a];
      return undefined;
    });
    assert.equal(await follower.store.saveTable(table(1), follower.revision), 'not_leader');
    assert.equal(await leader.store.saveTable(table(1), leader.revision), 'saved');
    await waitFor('the write is read back', () => leader.revision !== '0');
    const stale = '1';
    assert.equal(await leader.store.saveTable(table(2), stale), 'fenced', 'arranged from an old table');
    assert.equal(await storedEpoch(), 1);
    assert.equal((await stored()).writer.url, leader === a ? 'ws://a' : 'ws://b');

    // The leader's key vanishes (as when its lease ran out unseen); a write issued at once is refused.
    await client.delete().prefix('/fence/meta-leader/').exec();
    // Refused by the transaction ('fenced'), or before it ('not_leader') when the watch was faster.
    const outcome = await leader.store.saveTable(table(3), leader.revision);
    assert.notEqual(outcome, 'saved');
    assert.equal(await storedEpoch(), 1, 'the deposed leader did not write');
    // Both campaign again; exactly one leads afterwards.
    await waitFor('a leader again', () => a.store.leader !== b.store.leader, 10_000);
    assert.deepEqual(leader.leadership.slice(0, 2), [true, false], 'the deposed leader stepped down');
  });
});
