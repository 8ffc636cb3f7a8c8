import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DatumStore, type Publisher } from '../../control-plane/data/datum-store.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { VersionClock } from '../../proto/version.js';
import { makeInstance } from '../support/fixtures.js';

function newStore(): DatumStore {
  // A frozen clock: versions then grow by exactly one per change, which makes "no bump" visible.
  return new DatumStore(new VersionClock(() => Date.UTC(2025, 0, 1)), 16);
}

function pub(instance: Instance, version: number, owner = 'conn-1'): Publisher {
  return { registrationId: registrationId(instance), instance, version, owner };
}

const web1 = makeInstance({ id: 'web-1', service: 'web', tags: ['v1', 'blue'] });
const web2 = makeInstance({ id: 'web-2', service: 'web', nodeId: 'node-c', node: 'c', tags: ['v2', 'blue'] });
const db1 = makeInstance({ id: 'db-1', service: 'db' });

test('datum store - every applied change raises the datum version', () => {
  const store = newStore();
  const versions: number[] = [];
  const record = (): void => {
    versions.push(store.version('web') ?? -1);
  };
  assert.equal(store.publish(pub(web1, 1)), 'applied');
  record();
  assert.equal(store.publish(pub(web2, 1, 'conn-2')), 'applied');
  record();
  assert.equal(store.publish(pub({ ...web1, port: 9090 }, 2)), 'applied');
  record();
  assert.equal(store.unpublish('web', registrationId(web2), 1), 'removed');
  record();
  for (let i = 1; i < versions.length; i++) assert.ok((versions[i] ?? 0) > (versions[i - 1] ?? 0));
  assert.deepEqual(
    store.get('web').instances.map((i) => [i.id, i.port]),
    [['web-1', 9090]],
  );
});

test('datum store - a stale registration version is ignored', () => {
  const store = newStore();
  store.publish(pub({ ...web1, port: 1 }, 5));
  const v = store.version('web');
  assert.equal(store.publish(pub({ ...web1, port: 2 }, 4)), 'stale');
  assert.equal(store.publish(pub({ ...web1, port: 3 }, 4, 'conn-2')), 'stale');
  assert.equal(store.version('web'), v);
  assert.deepEqual(
    store.get('web').instances.map((i) => i.port),
    [1],
  );
});

test('datum store - the same version from the same owner changes nothing', () => {
  const store = newStore();
  store.publish(pub(web1, 5));
  const snap = store.get('web');
  assert.equal(store.publish(pub(web1, 5)), 'unchanged');
  assert.equal(store.get('web'), snap, 'the snapshot object is reused');
});

test('datum store - the same version from a new owner only changes the owner', () => {
  const store = newStore();
  store.publish(pub(web1, 5, 'conn-1'));
  const v = store.version('web');
  const snap = store.get('web');
  assert.equal(store.publish(pub(web1, 5, 'conn-2')), 'owner-changed');
  assert.equal(store.version('web'), v, 'no version bump');
  assert.equal(store.get('web'), snap, 'no new snapshot');
  // The old owner no longer owns it; the new one does.
  assert.deepEqual(store.dropOwner('conn-1'), []);
  assert.equal(store.get('web').instances.length, 1);
  assert.deepEqual(store.dropOwner('conn-2'), ['web']);
  assert.equal(store.get('web').instances.length, 0);
});

test('datum store - dropOwner removes only publishers still owned by that owner', () => {
  const store = newStore();
  store.publish(pub(web1, 1, 'conn-1'));
  store.publish(pub(web2, 1, 'conn-1'));
  store.publish(pub(db1, 1, 'conn-1'));
  // web-2 was re-sent with a newer version over another connection: it is conn-2's now.
  store.publish(pub(web2, 2, 'conn-2'));
  const before = { web: store.version('web') ?? 0, db: store.version('db') ?? 0 };
  assert.deepEqual(store.dropOwner('conn-1').sort(), ['db', 'web']);
  assert.deepEqual(
    store.get('web').instances.map((i) => i.id),
    ['web-2'],
  );
  assert.deepEqual(store.get('db').instances, []);
  assert.ok((store.version('web') ?? 0) > before.web);
  assert.ok((store.version('db') ?? 0) > before.db);
  assert.deepEqual(store.dropOwner('conn-1'), [], 'a second drop finds nothing');
  assert.deepEqual(store.dropOwner('unknown'), []);
});

test('datum store - unpublish respects versions', () => {
  const store = newStore();
  store.publish(pub(web1, 5));
  const v = store.version('web');
  assert.equal(store.unpublish('web', registrationId(web1), 4), 'stale', 'older removal ignored');
  assert.equal(store.version('web'), v);
  assert.equal(store.unpublish('db', registrationId(web1), 9), 'absent', 'unknown key');
  assert.equal(store.unpublish('web', 'node-x/none', 9), 'absent', 'unknown registration');
  assert.equal(store.unpublish('web', registrationId(web1), 6), 'removed');
  assert.ok((store.version('web') ?? 0) > (v ?? 0));
  assert.deepEqual(store.get('web').instances, []);
  assert.equal(store.unpublish('web', registrationId(web1), 7), 'absent', 'already gone');
  // Removed publishers are not dropped again with their connection.
  assert.deepEqual(store.dropOwner('conn-1'), []);
});

test('datum store - snapshots are immutable and renewed on change', () => {
  const store = newStore();
  store.publish(pub(web1, 1));
  const s1 = store.get('web');
  store.publish(pub(web2, 1));
  const s2 = store.get('web');
  assert.notEqual(s1, s2);
  assert.equal(s1.instances.length, 1);
  assert.equal(s2.instances.length, 2);
  assert.ok(s2.version > s1.version);
});

test('datum store - reading an unknown key answers an empty datum and stores nothing', () => {
  const store = newStore();
  assert.equal(store.version('none'), undefined);
  const s = store.get('none');
  assert.deepEqual(s.instances, []);
  assert.equal(s.version, 0);
  assert.equal(store.version('none'), undefined, 'the read left no datum');
  assert.equal(store.size, 0);
  assert.deepEqual(store.keysInSlot(store.slotOf('none')), []);
});

test('datum store - bumpSlots gives every datum of the slots a higher version', () => {
  const store = newStore();
  store.publish(pub(web1, 1));
  store.publish(pub(db1, 1));
  const before = [store.version('web') ?? 0, store.version('db') ?? 0];
  assert.deepEqual(store.bumpSlots(Array.from({ length: 16 }, (_, i) => i)).sort(), ['db', 'web']);
  assert.ok((store.version('web') ?? 0) > (before[0] ?? 0));
  assert.ok((store.version('db') ?? 0) > (before[1] ?? 0));
});

test('datum store - catalog lists services with instances and the sorted union of their tags', () => {
  const store = newStore();
  store.publish(pub(web1, 1));
  store.publish(pub(web2, 1));
  store.publish(pub(db1, 1));
  store.get('empty');
  assert.deepEqual(
    store.catalog(() => true),
    { web: ['blue', 'v1', 'v2'], db: [] },
  );
  store.unpublish('db', registrationId(db1), 2);
  assert.deepEqual(
    store.catalog(() => true),
    { web: ['blue', 'v1', 'v2'] },
  );
  assert.equal(store.publisherCount(), 2);
});

test('datum store - a registration moved to another service is dropped with its owner', () => {
  // The agent renames web-1 to "api": the new name is written first, then the old one withdrawn.
  const store = newStore();
  store.publish(pub(web1, 1));
  const renamed = { ...web1, service: 'api' };
  store.publish(pub(renamed, 2));
  assert.equal(store.unpublish('web', registrationId(web1), 2), 'removed');
  assert.deepEqual(store.dropOwner('conn-1'), ['api']);
  assert.deepEqual(store.get('api').instances, []);
});

test('datum store - while versions are held, content changes under the same version; a new datum still gets one', () => {
  const store = newStore();
  store.holdVersions = true;
  assert.equal(store.publish(pub(web1, 1)), 'applied');
  const created = store.version('web');
  assert.ok(created !== undefined && created > 0);
  assert.equal(store.publish(pub(web2, 1, 'conn-2')), 'applied');
  assert.equal(store.version('web'), created, 'a re-sent batch does not move the version');
  assert.equal(store.get('web').instances.length, 2, 'but it is served');
  store.publish(pub(db1, 1));
  assert.ok((store.version('db') ?? 0) > created, 'a datum created meanwhile gets a newer version');
  store.holdVersions = false;
  store.unpublish('web', registrationId(web2), 2);
  assert.ok((store.version('web') ?? 0) > created, 'once released, every change raises it again');
});

test('datum store - a replica serves what a leader holding its version changed', () => {
  const leader = newStore();
  const replica = newStore();
  leader.onOp = (op) => {
    replica.applyOp({ ...op, sentAt: 0 });
  };
  leader.holdVersions = true;
  leader.publish(pub(web1, 1));
  assert.equal(replica.get('web').instances.length, 1);
  leader.publish(pub(web2, 1, 'conn-2'));
  assert.equal(replica.version('web'), leader.version('web'));
  assert.deepEqual(
    replica.get('web').instances.map((i) => i.id),
    ['web-1', 'web-2'],
    'the replica does not serve a cached snapshot of the same version',
  );
});
