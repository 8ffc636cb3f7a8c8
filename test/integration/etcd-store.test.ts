/**
 * The etcd store in this process against a real etcd: two stores campaign, exactly one leads, and the
 * table write is a fenced transaction: refused to the follower, refused when arranged from an old
 * revision, and refused to a leader whose election key vanished before it noticed. After etcd is
 * killed and restarted, a store's view (its watches dropped) catches up within a second of etcd
 * answering again, and a refresh reads what is stored (it fails while etcd is away).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { silentLogger } from '../../proto/runtime/log.js';
import type { SlotTable } from '../../proto/slot-table.js';
import { EtcdStore } from '../../control-plane/meta/etcd-store.js';
import type { MetaStoreEvents, SharedMember } from '../../control-plane/meta/meta-store.js';
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
  members: ReadonlyMap<string, SharedMember>;
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
    const s: Seen = { store, revision: '0', leadership: [], members: new Map() };
    const events: MetaStoreEvents = {
      members: (m) => (s.members = new Map(m)),
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

  test('etcd store - after etcd is killed and restarted, every view catches up within a second', async () => {
    const a = await open('ws://c');
    const b = await open('ws://d');
    await etcd.kill();
    assert.equal(await a.store.refresh(), false, 'a refresh fails while etcd is away');
    // Past every lease's TTL: the client gives the leases up and its watches back off.
    await new Promise((r) => setTimeout(r, 5000));
    await etcd.restart();
    await waitFor('both stores reach etcd again', () => a.store.healthy && b.store.healthy, 15_000);
    const member: SharedMember = { role: 'data', url: 'ws://data-9', draining: false };
    a.store.putMember('data-9', member);
    const putAt = Date.now();
    await waitFor('the other store sees the new member', () => b.members.has('data-9'), 1500, 50);
    assert.ok(Date.now() - putAt < 1500);
    assert.equal(await b.store.refresh(), true, 'a refresh reads etcd again');
    assert.deepEqual(b.members.get('data-9'), member);
  });
});
