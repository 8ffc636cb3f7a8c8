/**
 * The import store of federated copies: apart per data center, version-guarded (a copy never goes
 * back to an older version, whatever order notices and fetches arrive in), never a copy of a copy,
 * read-only, and its watch notifies qualified keys only; the router sends qualified keys to it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { DatumChange, DatumView } from '../../proto/cluster-records.js';
import type { Instance } from '../../proto/instance.js';
import { ImportStore, IMPORT_STORE_ID } from '../../control-plane/federation/import-store.js';
import { linkUrl } from '../../control-plane/federation/importer.js';
import { DataRouter } from '../../control-plane/session/data-router.js';
import { instance } from '../support/arbitraries.js';

const datum = (key: string, version: number, instances: readonly Instance[] = []): DatumView => ({
  key,
  version,
  complete: true,
  instances,
});

test('federation import - copies are kept apart per data center and fetched under qualified keys', async () => {
  const store = new ImportStore();
  assert.equal(store.apply('dc2', datum('web', 10)), true);
  assert.equal(store.apply('dc3', datum('web', 5)), true);
  assert.deepEqual(await store.fetch('web@dc2'), datum('web@dc2', 10));
  assert.deepEqual(await store.fetch('web@dc3'), datum('web@dc3', 5));
  // Nothing held: version 0, incomplete and empty (never shrinks a subscriber's copy).
  assert.deepEqual(await store.fetch('api@dc2'), {
    key: 'api@dc2',
    version: 0,
    complete: false,
    instances: [],
  });
  assert.deepEqual(
    await store.versions(['web@dc2', 'web@dc3', 'api@dc2', 'web']),
    new Map([
      ['web@dc2', 10],
      ['web@dc3', 5],
      ['api@dc2', 0],
    ]),
  );
});

test('federation import - an older or equal version never replaces a copy (any order of arrival)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('dc2', 'dc3'), fc.integer({ min: 1, max: 50 })), { maxLength: 60 }),
      fc.array(instance, { maxLength: 3 }),
      (arrivals, instances) => {
        const store = new ImportStore();
        const highest = new Map<string, number>();
        for (const [dc, version] of arrivals) {
          const stored = store.apply(dc, datum('web', version, instances));
          assert.equal(stored, version > (highest.get(dc) ?? 0));
          highest.set(dc, Math.max(version, highest.get(dc) ?? 0));
          assert.equal(store.version(dc, 'web'), highest.get(dc));
        }
      },
    ),
  );
});

test('federation import - a qualified key is never stored (no copy of a copy)', () => {
  const store = new ImportStore();
  assert.equal(store.apply('dc2', datum('web@dc1', 99)), false);
  assert.equal(store.services('dc2').size, 0);
});

test('federation import - watchers hear only the qualified keys they declared', () => {
  const store = new ImportStore();
  const heard: DatumChange[] = [];
  const w = store.watch('s1', { onChange: (c) => heard.push(...c), onCatalogChange: () => undefined });
  w.interest('web@dc2', true);
  store.apply('dc2', datum('web', 3));
  store.apply('dc2', datum('api', 3));
  store.apply('dc3', datum('web', 3));
  store.apply('dc2', datum('web', 2));
  assert.deepEqual(heard, [{ key: 'web@dc2', version: 3 }]);
  w.interest('web@dc2', false);
  store.apply('dc2', datum('web', 4));
  assert.equal(heard.length, 1);
});

test('federation import - dropping a peer or unexported services forgets their copies', async () => {
  const store = new ImportStore();
  store.apply('dc2', datum('web', 3));
  store.apply('dc2', datum('api', 3));
  assert.deepEqual(store.drop('dc2', ['api', 'none']), ['api']);
  assert.equal((await store.fetch('api@dc2')).version, 0);
  assert.deepEqual(store.dropPeer('dc2'), ['web']);
  assert.equal(store.services('dc2').size, 0);
});

test('federation import - writes are refused', async () => {
  const store = new ImportStore();
  const r = await store.publish();
  assert.equal(r.ok, false);
  assert.equal(r.ok ? '' : r.error.code, 'forbidden');
  await assert.rejects(store.dropOwner(), { code: 'forbidden' });
});

test('federation import - the router sends qualified keys to the import store, not among the data servers', () => {
  const router = new DataRouter();
  const none = router.forKey('web@dc2');
  assert.equal(none.ok ? '' : none.error.code, 'not_found');
  const store = new ImportStore();
  router.setImports(store);
  const r = router.forKey('web@dc2');
  assert.equal(r.ok ? r.value.id : '', IMPORT_STORE_ID);
  assert.equal(router.byId(IMPORT_STORE_ID), store);
  assert.deepEqual(router.servers(), []);
  // A local key still needs a slot table.
  assert.equal(router.forKey('web').ok, false);
});

test('federation import - a peer address gets the link path when it has none', () => {
  assert.equal(linkUrl('ws://10.0.0.2:9630'), 'ws://10.0.0.2:9630/v1/federation-link');
  assert.equal(linkUrl('wss://dc2.example:443/'), 'wss://dc2.example/v1/federation-link');
  assert.equal(linkUrl('ws://10.0.0.2:9630/custom'), 'ws://10.0.0.2:9630/custom');
});
