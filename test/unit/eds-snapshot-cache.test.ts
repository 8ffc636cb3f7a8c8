import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cachedResource, SnapshotCache, type CacheResponse } from '../../agent/eds/snapshot-cache.js';
import { VersionClock } from '../../proto/version.js';

const T = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const res = (name: string, n: number) => cachedResource(name, { cluster_name: name, n });

void test('eds snapshot - versions grow only on content change', () => {
  const cache = new SnapshotCache({ clock: new VersionClock(() => Date.UTC(2024, 0, 1)) });
  assert.equal(cache.version('n', T), '');
  assert.equal(cache.setResources('n', T, [res('web', 1)]), true);
  const v1 = cache.version('n', T);
  assert.equal(cache.setResources('n', T, [res('web', 1)]), false);
  assert.equal(cache.version('n', T), v1);
  cache.setResources('n', T, [res('web', 2)]);
  const v2 = cache.version('n', T);
  assert.ok(BigInt(v2) > BigInt(v1));
  cache.setResources('n', T, [res('web', 2), res('api', 1)]);
  assert.ok(BigInt(cache.version('n', T)) > BigInt(v2));
});

void test('eds snapshot - a current watch parks and is answered once on change', () => {
  const cache = new SnapshotCache();
  cache.setResources('n', T, [res('web', 1), res('api', 1)]);
  const v1 = cache.version('n', T);
  const answers: CacheResponse[] = [];
  cache.createWatch('n', { typeUrl: T, versionInfo: v1, names: ['web'] }, (r) => answers.push(r));
  assert.equal(cache.watchCount('n'), 1);
  assert.equal(cache.fetch('n', { typeUrl: T, versionInfo: v1, names: ['web'] }), undefined);
  cache.setResources('n', T, [res('web', 2), res('api', 1)]);
  cache.setResources('n', T, [res('web', 3), res('api', 1)]);
  assert.equal(answers.length, 1);
  assert.deepEqual(
    answers[0]?.resources.map((r) => r.body),
    [{ cluster_name: 'web', n: 2 }],
  );
  assert.equal(cache.watchCount(), 0);
});

void test('eds snapshot - an out-of-date or new-name request is answered at once', () => {
  const cache = new SnapshotCache();
  cache.setResources('n', T, [res('web', 1), res('api', 1)]);
  const v = cache.version('n', T);
  let answered = 0;
  cache.createWatch('n', { typeUrl: T, versionInfo: 'old', names: ['web'] }, () => answered++);
  cache.createWatch(
    'n',
    { typeUrl: T, versionInfo: v, names: ['web', 'api'], knownNames: new Set(['web']) },
    () => answered++,
  );
  assert.equal(answered, 2);
  assert.equal(cache.watchCount(), 0);
});

void test('eds snapshot - a requested name that appears later is sent', () => {
  const cache = new SnapshotCache();
  cache.setResources('n', T, [res('web', 1)]);
  const v = cache.version('n', T);
  const answers: CacheResponse[] = [];
  cache.createWatch(
    'n',
    { typeUrl: T, versionInfo: v, names: ['web', 'api'], knownNames: new Set(['web', 'api']) },
    (r) => answers.push(r),
  );
  assert.equal(answers.length, 0);
  cache.setResources('n', T, [res('web', 1), res('api', 1)]);
  assert.deepEqual(
    answers[0]?.resources.map((r) => r.name),
    ['web', 'api'],
  );
});

void test('eds snapshot - nodes are independent and cancel drops a watch', () => {
  const cache = new SnapshotCache();
  cache.setResources('n1', T, [res('web', 1)]);
  let answered = 0;
  const cancel = cache.createWatch('n2', { typeUrl: T, versionInfo: '', names: ['web'] }, () => answered++);
  assert.equal(answered, 0);
  cancel();
  cache.setResources('n2', T, [res('web', 1)]);
  assert.equal(answered, 0);
});
