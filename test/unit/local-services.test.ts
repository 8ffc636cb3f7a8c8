import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  LocalServices,
  toInstance,
  type LocalChange,
  type ServiceDefinition,
} from '../../agent/local/local-services.js';
import { VersionClock } from '../../proto/version.js';
import { makeCheck } from '../support/fixtures.js';

function def(overrides: Partial<ServiceDefinition> = {}): ServiceDefinition {
  return {
    id: 'web-1',
    name: 'web',
    tags: ['v1'],
    address: '',
    port: 8080,
    meta: {},
    weights: { passing: 1, warning: 1 },
    enableTagOverride: false,
    ...overrides,
  };
}

function setup(): { local: LocalServices; changes: string[] } {
  const local = new LocalServices(new VersionClock(() => Date.UTC(2025, 0, 1)));
  const changes: string[] = [];
  local.onChange((c: LocalChange) => {
    changes.push(
      c.kind === 'upsert'
        ? `upsert ${c.record.def.id}@${c.record.def.name}`
        : `remove ${c.tombstone.id}@${c.tombstone.service}`,
    );
  });
  return { local, changes };
}

test('local services - every change gets a higher version and is emitted', () => {
  const { local, changes } = setup();
  const versions: number[] = [];
  versions.push(local.register(def()).version);
  versions.push(local.register(def({ port: 9090 })).version);
  local.setChecks('web-1', [makeCheck('c1', 'critical')]);
  versions.push(local.get('web-1')?.version ?? 0);
  versions.push(local.deregister('web-1')?.version ?? 0);
  versions.push(local.register(def()).version);
  for (let i = 1; i < versions.length; i++) assert.ok((versions[i] ?? 0) > (versions[i - 1] ?? 0));
  assert.deepEqual(changes, [
    'upsert web-1@web',
    'upsert web-1@web',
    'upsert web-1@web',
    'remove web-1@web',
    'upsert web-1@web',
  ]);
});

test('local services - re-registering keeps the check results unless new ones are given', () => {
  const { local } = setup();
  local.register(def());
  const checks = [makeCheck('c1', 'warning')];
  local.setChecks('web-1', checks);
  assert.deepEqual(local.register(def({ port: 1 })).checks, checks);
  const fresh = [makeCheck('c2', 'passing')];
  assert.deepEqual(local.register(def({ port: 2 }), fresh).checks, fresh);
});

test('local services - setChecks bumps the version only when something visible changed', () => {
  const { local, changes } = setup();
  local.register(def());
  local.setChecks('web-1', [makeCheck('c1', 'passing')]);
  const v = local.get('web-1')?.version;
  local.setChecks('web-1', [makeCheck('c1', 'passing')]);
  assert.equal(local.get('web-1')?.version, v);
  local.setChecks('unknown', [makeCheck('c1', 'passing')]);
  assert.equal(changes.length, 2);
});

test('local services - deregister leaves a tombstone until the removal is confirmed', () => {
  const { local, changes } = setup();
  local.register(def());
  local.register(def({ id: 'web-2' }));
  const t = local.deregister('web-1');
  assert.ok(t !== undefined);
  assert.equal(local.get('web-1'), undefined);
  assert.deepEqual(local.tombstones(), [t]);
  assert.equal(local.deregister('unknown'), undefined, 'unknown IDs are ignored');
  assert.equal(local.deregister('web-1'), undefined, 'a second deregistration is a no-op');
  local.confirmUnpublish('web-1', t.version - 1);
  assert.deepEqual(local.tombstones(), [t], 'an older confirmation keeps the tombstone');
  local.confirmUnpublish('web-1', t.version);
  assert.deepEqual(local.tombstones(), []);
  assert.deepEqual(changes, ['upsert web-1@web', 'upsert web-2@web', 'remove web-1@web']);
  assert.deepEqual(
    local.snapshot().services.map((r) => r.def.id),
    ['web-2'],
  );
});

test('local services - registering again clears the tombstone with a version above it', () => {
  const { local } = setup();
  local.register(def());
  const t = local.deregister('web-1');
  const r = local.register(def());
  assert.ok(r.version > (t?.version ?? Infinity));
  assert.deepEqual(local.tombstones(), []);
});

test('local services - confirmPublish marks in sync only the current version', () => {
  const { local } = setup();
  const r1 = local.register(def());
  const r2 = local.register(def({ port: 1 }));
  local.confirmPublish('web-1', r1.version);
  assert.equal(local.get('web-1')?.synced, false, 'a confirmation of an older version');
  local.confirmPublish('web-1', r2.version);
  assert.equal(local.get('web-1')?.synced, true);
  local.setChecks('web-1', [makeCheck('c', 'critical')]);
  assert.equal(local.get('web-1')?.synced, false, 'a later change is out of sync again');
  local.confirmPublish('unknown', 1);
});

test('local services - a rename under the same ID withdraws the old name first', () => {
  const { local, changes } = setup();
  local.register(def({ name: 'web' }));
  const emitted: LocalChange[] = [];
  local.onChange((c) => emitted.push(c));
  const r = local.register(def({ name: 'api' }));
  assert.deepEqual(changes, ['upsert web-1@web', 'remove web-1@web', 'upsert web-1@api']);
  const removal = emitted[0];
  assert.ok(removal?.kind === 'remove');
  assert.equal(removal.tombstone.version, r.version);
  assert.deepEqual(
    local.byName('web').map((x) => x.def.id),
    [],
  );
  assert.deepEqual(
    local.byName('api').map((x) => x.def.id),
    ['web-1'],
  );
});

test('local services - restore continues versions above the stored ones and marks all unsynced', () => {
  const { local } = setup();
  const high = 9e15;
  local.restore({
    services: [
      {
        def: def(),
        version: high - 10,
        synced: true,
        checks: [makeCheck('c', 'passing')],
        checkDefinitions: [],
      },
    ],
    tombstones: [{ id: 'old-1', service: 'old', version: high }],
  });
  assert.equal(local.get('web-1')?.synced, false);
  assert.equal(local.size, 1);
  assert.deepEqual(local.tombstones(), [{ id: 'old-1', service: 'old', version: high }]);
  const r = local.register(def({ id: 'web-2' }));
  assert.ok(r.version > high, `${r.version} > ${high}`);
  const again = local.register(def());
  assert.ok(again.version > r.version);
  assert.deepEqual(again.checks, [makeCheck('c', 'passing')]);
});

test('local services - an unsubscribed listener hears nothing more', () => {
  const local = new LocalServices(new VersionClock());
  const heard: string[] = [];
  const off = local.onChange((c) => heard.push(c.kind));
  local.register(def());
  off();
  local.deregister('web-1');
  assert.deepEqual(heard, ['upsert']);
});

test('local services - toInstance stamps the node and derives health from the checks', () => {
  const { local } = setup();
  const r = local.register(def({ address: '10.1.1.1', meta: { Version: '1' } }), [
    makeCheck('a', 'passing'),
    makeCheck('b', 'warning'),
  ]);
  const i = toInstance(r, { nodeId: 'n-1', node: 'a', address: '10.0.0.1', zone: 'z', region: 'r' });
  assert.deepEqual(
    { ...i, checks: i.checks.length },
    {
      id: 'web-1',
      service: 'web',
      nodeId: 'n-1',
      node: 'a',
      nodeAddress: '10.0.0.1',
      address: '10.1.1.1',
      port: 8080,
      tags: ['v1'],
      meta: { Version: '1' },
      weights: { passing: 1, warning: 1 },
      health: 'warning',
      checks: 2,
      zone: 'z',
      region: 'r',
    },
  );
});
