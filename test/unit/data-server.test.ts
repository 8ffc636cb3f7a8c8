import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ChangeListener, DatumChange } from '../../control-plane/link/data-api.js';
import { DataServer, type DataServerOptions } from '../../control-plane/data/data-server.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { ok } from '../../proto/result.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { slotOf } from '../../proto/slot-table.js';
import { VersionClock } from '../../proto/version.js';
import { makeInstance, settle } from '../support/fixtures.js';

const web1 = makeInstance({ id: 'web-1', service: 'web', tags: ['v1'] });
const web2 = makeInstance({ id: 'web-2', service: 'web', tags: ['v2'] });
const db1 = makeInstance({ id: 'db-1', service: 'db' });

class RecordingListener implements ChangeListener {
  readonly changes: (readonly DatumChange[])[] = [];
  readonly catalogVersions: number[] = [];
  onChange(changes: readonly DatumChange[]): void {
    this.changes.push(changes);
  }
  onCatalogChange(version: number): void {
    this.catalogVersions.push(version);
  }
}

function item(i: Instance, version = 1): { registrationId: string; instance: Instance; version: number } {
  return { registrationId: registrationId(i), instance: i, version };
}

function start(t: TestContext, warmupMs: number, extra: Partial<DataServerOptions> = {}): DataServer {
  // setTimeout (warm-up, catalog debounce) is mocked; setImmediate (notification batches) stays real.
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.UTC(2025, 0, 1) });
  const server = new DataServer({
    id: 'data-1',
    warmupMs,
    catalogDebounceMs: 50,
    slotCount: 16,
    logger: silentLogger,
    clock: new VersionClock(() => Date.now()),
    ...extra,
  });
  t.after(() => {
    server.close();
  });
  // This server leads every slot, and has nothing to collect from sessions.
  const slots = Array.from({ length: 16 }, (_, id) => ({
    id,
    leader: 'data-1',
    leaderEpoch: 1,
    followers: [],
  }));
  server.applyTable({ epoch: 1, slotCount: 16, slots });
  server.finishMigration(
    slots.map((s) => s.id),
    [],
  );
  return server;
}

test('data server - during warm-up datums are incomplete; at its end versions rise and interested watchers hear', async (t) => {
  const server = start(t, 1000);
  const web = new RecordingListener();
  const db = new RecordingListener();
  const none = new RecordingListener();
  const wWeb = server.watch('s-web', web);
  wWeb.interest('web', true);
  server.watch('s-db', db).interest('db', true);
  server.watch('s-none', none);
  assert.equal(server.warming, true);

  await server.publish('conn-1', [item(web1), item(db1)], 1);
  await settle();
  const first = await server.fetch('web');
  assert.equal(first.complete, false);
  assert.deepEqual(web.changes, [[{ key: 'web', version: first.version }]]);
  assert.equal(db.changes.length, 1);

  t.mock.timers.tick(999);
  await settle();
  assert.equal(server.warming, true);
  assert.equal(web.changes.length, 1);

  t.mock.timers.tick(1);
  await settle();
  assert.equal(server.warming, false);
  const after = await server.fetch('web');
  assert.equal(after.complete, true);
  assert.ok(after.version > first.version, 'warm-up end bumps the version');
  assert.deepEqual(after.instances, first.instances);
  assert.deepEqual(web.changes, [
    [{ key: 'web', version: first.version }],
    [{ key: 'web', version: after.version }],
  ]);
  assert.deepEqual(
    db.changes.map((c) => c.map((x) => x.key)),
    [['db'], ['db']],
  );
  assert.deepEqual(none.changes, [], 'a watcher without interest hears nothing');
});

test('data server - changes made in one turn are notified together, once per key with its latest version', async (t) => {
  const server = start(t, 0);
  const l = new RecordingListener();
  const w = server.watch('s1', l);
  w.interest('web', true);
  w.interest('db', true);
  await server.publish('conn-1', [item(web1)], 1);
  await server.publish('conn-1', [item(web2), item(db1)], 1);
  assert.deepEqual(l.changes, [], 'nothing before the batch goes out');
  await settle();
  assert.equal(l.changes.length, 1);
  const versions = await server.versions(['web', 'db']);
  assert.deepEqual(l.changes[0], [
    { key: 'web', version: versions.get('web') },
    { key: 'db', version: versions.get('db') },
  ]);
  assert.equal((await server.fetch('web')).complete, true, 'no warm-up: complete from the start');
});

test('data server - only applied changes notify; interest can be withdrawn', async (t) => {
  const server = start(t, 0);
  const l = new RecordingListener();
  const w = server.watch('s1', l);
  w.interest('web', true);
  assert.deepEqual(await server.publish('conn-1', [item(web1, 2)], 1), ok(['applied']));
  await settle();
  assert.deepEqual(
    await server.publish('conn-1', [item(web1, 2), item(web1, 1)], 1),
    ok(['unchanged', 'stale']),
  );
  await settle();
  assert.equal(l.changes.length, 1);
  assert.deepEqual(
    await server.unpublish([{ key: 'web', registrationId: registrationId(web1), version: 1 }], 1),
    ok(['stale']),
  );
  await settle();
  assert.equal(l.changes.length, 1, 'an older removal changes nothing');
  w.interest('web', false);
  assert.deepEqual(
    await server.unpublish([{ key: 'web', registrationId: registrationId(web1), version: 3 }], 1),
    ok(['removed']),
  );
  await settle();
  assert.equal(l.changes.length, 1);
  assert.deepEqual((await server.fetch('web')).instances, []);
});

test('data server - dropOwner notifies the keys it emptied', async (t) => {
  const server = start(t, 0);
  const l = new RecordingListener();
  server.watch('s1', l).interest('web', true);
  await server.publish('conn-1', [item(web1)], 1);
  await server.publish('conn-2', [item(web2)], 1);
  await settle();
  await server.dropOwner('conn-1');
  await settle();
  assert.deepEqual(
    l.changes.map((c) => c.map((x) => x.key)),
    [['web'], ['web']],
  );
  assert.deepEqual(
    (await server.fetch('web')).instances.map((i) => i.id),
    ['web-2'],
  );
});

test('data server - catalog changes are debounced into one notification with a new version', async (t) => {
  const server = start(t, 0);
  const l = new RecordingListener();
  const w = server.watch('s1', l);
  w.catalogInterest(true);
  const v0 = (await server.fetchCatalog()).version;
  await server.publish('conn-1', [item(web1)], 1);
  t.mock.timers.tick(20);
  await server.publish('conn-1', [item(db1)], 1);
  t.mock.timers.tick(29);
  assert.deepEqual(l.catalogVersions, []);
  t.mock.timers.tick(1);
  assert.equal(l.catalogVersions.length, 1);
  const c = await server.fetchCatalog();
  assert.ok(c.version > v0);
  assert.equal(l.catalogVersions[0], c.version);
  assert.deepEqual(c.services, { web: ['v1'], db: [] });
  // A change that leaves the list as it was makes no new catalog version.
  await server.publish('conn-1', [item({ ...web1, port: 1 }, 2)], 1);
  t.mock.timers.tick(50);
  assert.equal(l.catalogVersions.length, 1);
});

test('data server - a catalog fetch between a change and its notification sees the change', async (t) => {
  const server = start(t, 0);
  await server.publish('conn-1', [item(web1)], 1);
  assert.deepEqual((await server.fetchCatalog()).services, { web: ['v1'] });
});

test('data server - a closed watch hears nothing more', async (t) => {
  const server = start(t, 0);
  const l = new RecordingListener();
  const w = server.watch('s1', l);
  w.interest('web', true);
  w.close();
  await server.publish('conn-1', [item(web1)], 1);
  await settle();
  assert.deepEqual(l.changes, []);
  assert.equal(server.stats().sessions, 0);
});

test('data server - reads of a key nobody published store nothing and versions still only grow', async (t) => {
  const server = start(t, 1000);
  const l = new RecordingListener();
  const w = server.watch('s1', l);
  w.interest('ghost', true);
  const during = await server.fetch('ghost');
  assert.deepEqual([during.complete, during.instances], [false, []]);
  const versions = await server.versions(['ghost', 'other-ghost']);
  assert.equal(versions.get('ghost'), during.version);
  assert.equal(server.stats()['datums'], 0, 'fetch and versions left no datum');
  assert.equal(server.stats()['interests'], 1);

  // The warm-up ends: the watched unknown key gets a newer, complete empty version and a notification.
  t.mock.timers.tick(1000);
  await settle();
  const after = await server.fetch('ghost');
  assert.equal(after.complete, true);
  assert.ok(after.version > during.version, 'the empty version rose with the slot');
  assert.deepEqual(l.changes, [[{ key: 'ghost', version: after.version }]]);
  assert.equal(server.stats()['datums'], 0);

  // A first publisher later: its version is above every empty version a subscriber could hold.
  await server.publish('conn-1', [item(makeInstance({ id: 'g-1', service: 'ghost' }))], 1);
  const published = await server.fetch('ghost');
  assert.ok(published.version > after.version);
  assert.equal(server.stats()['datums'], 1);

  w.interest('ghost', false);
  assert.equal(server.stats()['interests'], 0, 'lost interest is forgotten');
});

test('data server - in a mixed batch only the items of slots it does not lead are stale_epoch', async (t) => {
  const server = start(t, 0);
  const l = new RecordingListener();
  const w = server.watch('s1', l);
  w.interest('web', true);
  w.interest('db', true);
  const webSlot = slotOf('web', 16);
  const dbSlot = slotOf('db', 16);
  assert.notEqual(webSlot, dbSlot, 'the test needs web and db in different slots');
  // Epoch 2: db's slot moves to another data server; web's stays here.
  const slots = Array.from({ length: 16 }, (_, id) => ({
    id,
    leader: id === dbSlot ? 'data-2' : 'data-1',
    leaderEpoch: id === dbSlot ? 2 : 1,
    followers: [],
  }));
  server.applyTable({ epoch: 2, slotCount: 16, slots });

  assert.deepEqual(
    await server.publish('conn-1', [item(web1), item(db1), item(web2)], 2),
    ok(['applied', 'stale_epoch', 'applied']),
  );
  await settle();
  assert.deepEqual(l.changes, [[{ key: 'web', version: (await server.fetch('web')).version }]]);
  assert.equal(server.store.get('db').instances.length, 0, 'nothing stored for a slot it does not lead');

  // A caller routing by an older table is told so for every item, even those of slots it leads.
  const web3 = makeInstance({ id: 'web-3', service: 'web' });
  assert.deepEqual(await server.publish('conn-1', [item(web3)], 1), ok(['stale_epoch']));
  const removals = [
    { key: 'web', registrationId: registrationId(web1), version: 1 },
    { key: 'db', registrationId: registrationId(db1), version: 1 },
  ];
  assert.deepEqual(await server.unpublish(removals, 1), ok(['stale_epoch', 'stale_epoch']));
  assert.deepEqual(await server.unpublish(removals, 2), ok(['removed', 'stale_epoch']));
  assert.deepEqual(
    (await server.fetch('web')).instances.map((i) => i.id),
    ['web-2'],
  );
});

function startWarming(t: TestContext, quietMs: number, maxMs: number): DataServer {
  return start(t, 100, {
    warmupQuietMs: quietMs,
    warmupMaxMs: maxMs,
    warmupNotifyMs: 50,
    now: () => Date.now(),
  });
}

test('data server - warm-up lasts while agents keep re-sending and ends once publishes go quiet', async (t) => {
  const server = startWarming(t, 60, 10_000);
  const states: boolean[] = [];
  for (let n = 0; n < 5; n++) {
    await server.publish('s1:1', [item(makeInstance({ id: `web-${String(n)}`, service: 'web' }))], 1);
    t.mock.timers.tick(40);
    states.push(server.warming);
  }
  assert.deepEqual(states, [true, true, true, true, true], 'past warmupMs, but publishes keep arriving');
  t.mock.timers.tick(30);
  assert.equal(server.warming, false, 'quiet for 60 ms: over');
  const d = await server.fetch('web');
  assert.equal(d.complete, true);
  assert.equal(d.instances.length, 5);
});

test('data server - a restarted data server stays warming until every listed session is back, then quiet', async (t) => {
  let sessionsBack = false;
  const server = start(t, 100, {
    warmupQuietMs: 60,
    warmupMaxMs: 10_000,
    now: () => Date.now(),
    warmupReady: () => sessionsBack,
  });
  // Nothing arrives: without the readiness check it would call itself complete at 100 ms.
  t.mock.timers.tick(2000);
  assert.equal(server.warming, true, 'a session meta lists has not reconnected yet');
  sessionsBack = true;
  server.noteSessionConnected();
  t.mock.timers.tick(40);
  assert.equal(server.warming, true, 'the session just connected: its re-send is due');
  await server.publish('s2:1', [item(makeInstance({ id: 'web-1', service: 'web' }))], 1);
  t.mock.timers.tick(40);
  assert.equal(server.warming, true, 're-sending');
  t.mock.timers.tick(100);
  assert.equal(server.warming, false, 'every session back and quiet: over');
  assert.equal((await server.fetch('web')).complete, true);
});

test('data server - a session that never comes back holds the warm-up only until its longest', (t) => {
  const server = start(t, 100, {
    warmupQuietMs: 60,
    warmupMaxMs: 1000,
    now: () => Date.now(),
    warmupReady: () => false,
  });
  t.mock.timers.tick(900);
  assert.equal(server.warming, true);
  t.mock.timers.tick(200);
  assert.equal(server.warming, false, 'bounded by the longest warm-up');
});

test('data server - warm-up ends at its longest even while publishes keep arriving', async (t) => {
  const server = startWarming(t, 60, 300);
  let n = 0;
  while (server.warming && n < 100) {
    await server.publish('s1:1', [item(makeInstance({ id: `web-${String(n++)}`, service: 'web' }))], 1);
    t.mock.timers.tick(20);
  }
  assert.equal(server.warming, false);
  assert.ok(n >= 14 && n <= 16, `ended after ${String(n * 20)} ms of publishes, at the 300 ms cap`);
});

test('data server - during warm-up, changes are notified once per notify interval', async (t) => {
  const server = startWarming(t, 1000, 10_000);
  const listener = new RecordingListener();
  const watch = server.watch('s1', listener);
  watch.interest('web', true);
  for (let n = 0; n < 4; n++)
    await server.publish('s1:1', [item(makeInstance({ id: `web-${String(n)}`, service: 'web' }))], 1);
  await settle();
  assert.equal(listener.changes.length, 0, 'not on every batch');
  t.mock.timers.tick(50);
  await settle();
  assert.equal(listener.changes.length, 1, 'one notification for the interval');
  assert.equal(listener.changes[0]?.[0]?.key, 'web');
});
