import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Instance } from '../../proto/instance.js';
import { ServiceView, type ViewHooks } from '../../agent/view/service-view.js';
import { makeInstance } from '../support/fixtures.js';

const OWN = 'node-a';

class Hooks implements ViewHooks {
  readonly events: string[] = [];
  readonly local = new Map<string, Instance[]>();
  onWatch(service: string): void {
    this.events.push(`watch ${service}`);
  }
  onWatchCatalog(): void {
    this.events.push('watch the catalog');
  }
  localInstances(service: string): readonly Instance[] {
    return this.local.get(service) ?? [];
  }
  onChanged(service: string): void {
    this.events.push(`changed ${service}`);
  }
  onCatalogChanged(): void {
    this.events.push('catalog changed');
  }
}

function setup(): { view: ServiceView; hooks: Hooks } {
  const hooks = new Hooks();
  return { view: new ServiceView(OWN, hooks), hooks };
}

const remote1 = makeInstance({ id: 'web-1', service: 'web', nodeId: 'node-b' });
const remote2 = makeInstance({ id: 'web-2', service: 'web', nodeId: 'node-c' });

function ids(view: ServiceView, service: string): string[] {
  return view.instances(service).map((i) => `${i.nodeId}/${i.id}`);
}

test('service view - ensure subscribes once; a push for an unwatched service is ignored', () => {
  const { view, hooks } = setup();
  assert.equal(
    view.applyPush({ type: 'push', service: 'web', version: 5, complete: true, instances: [remote1] }),
    false,
  );
  view.ensure('web');
  view.ensure('web');
  assert.deepEqual(hooks.events, ['watch web']);
  assert.equal(view.get('web')?.received, false);
});

test('service view - older and equal versions are ignored; newer ones applied in order', () => {
  const { view, hooks } = setup();
  view.ensure('web');
  const applied = [
    view.applyPush({ type: 'push', service: 'web', version: 10, complete: true, instances: [remote1] }),
    view.applyPush({ type: 'push', service: 'web', version: 10, complete: true, instances: [] }),
    view.applyPush({ type: 'push', service: 'web', version: 9, complete: true, instances: [remote2] }),
    view.applyPush({ type: 'push', service: 'web', version: 11, complete: true, instances: [remote2] }),
  ];
  assert.deepEqual(applied, [true, false, false, true]);
  assert.deepEqual(ids(view, 'web'), ['node-c/web-2']);
  assert.equal(view.get('web')?.version, 11);
  assert.deepEqual(hooks.events, ['watch web', 'changed web', 'changed web']);
});

test('service view - an incomplete push adds and updates but never removes; a complete one replaces', () => {
  const { view } = setup();
  view.ensure('web');
  view.applyPush({ type: 'push', service: 'web', version: 1, complete: true, instances: [remote1, remote2] });
  const moved = { ...remote1, port: 1234 };
  const remote3 = makeInstance({ id: 'web-3', service: 'web', nodeId: 'node-d' });
  view.applyPush({ type: 'push', service: 'web', version: 2, complete: false, instances: [moved, remote3] });
  assert.deepEqual(ids(view, 'web'), ['node-b/web-1', 'node-c/web-2', 'node-d/web-3']);
  assert.equal(view.instances('web')[0]?.port, 1234);
  assert.equal(view.get('web')?.complete, false);
  view.applyPush({ type: 'push', service: 'web', version: 3, complete: false, instances: [] });
  assert.equal(view.instances('web').length, 3, 'an empty incomplete push removes nothing');
  view.applyPush({ type: 'push', service: 'web', version: 4, complete: true, instances: [remote3] });
  assert.deepEqual(ids(view, 'web'), ['node-d/web-3']);
  assert.equal(view.get('web')?.complete, true);
});

test('service view - this node is served from its local registrations, not from pushes', () => {
  const { view, hooks } = setup();
  view.ensure('web');
  const pushedOwn = makeInstance({ id: 'web-9', service: 'web', nodeId: OWN, port: 1 });
  const localOwn = makeInstance({ id: 'web-9', service: 'web', nodeId: OWN, port: 2 });
  view.applyPush({
    type: 'push',
    service: 'web',
    version: 1,
    complete: true,
    instances: [remote1, pushedOwn],
  });
  assert.deepEqual(ids(view, 'web'), ['node-b/web-1'], 'a pushed copy of our own instance is not shown');
  hooks.local.set('web', [localOwn]);
  assert.deepEqual(
    view.instances('web').map((i) => [i.nodeId, i.id, i.port]),
    [
      ['node-b', 'web-1', 8080],
      [OWN, 'web-9', 2],
    ],
  );
  assert.deepEqual(
    view.instances('unwatched').map((i) => i.id),
    [],
  );
});

test('service view - index and modifyIndex grow with every visible change', () => {
  const { view } = setup();
  assert.equal(view.index, 1);
  const s = view.ensure('web');
  const other = view.ensure('db');
  const seen: [number, number][] = [[view.index, s.modifyIndex]];
  view.applyPush({ type: 'push', service: 'web', version: 1, complete: true, instances: [remote1] });
  seen.push([view.index, s.modifyIndex]);
  view.localChanged('web');
  seen.push([view.index, s.modifyIndex]);
  view.applyPush({ type: 'push', service: 'web', version: 1, complete: true, instances: [] });
  seen.push([view.index, s.modifyIndex]);
  view.applyPush({ type: 'push', service: 'db', version: 1, complete: true, instances: [] });
  seen.push([view.index, s.modifyIndex]);
  assert.deepEqual(seen, [
    [1, 1],
    [2, 2],
    [3, 3],
    [3, 3],
    [4, 3],
  ]);
  assert.equal(other.modifyIndex, 4);
  view.localChanged('unwatched');
  assert.equal(view.index, 4, 'a change to an unwatched service is invisible');
});

test('service view - restore fills an empty entry once and never overrides a push', () => {
  const { view } = setup();
  view.restore('web', 7, [remote1]);
  assert.equal(view.get('web')?.version, 7);
  assert.equal(view.get('web')?.received, true);
  assert.deepEqual(ids(view, 'web'), ['node-b/web-1']);
  view.restore('web', 99, [remote2]);
  assert.equal(view.get('web')?.version, 7);
  assert.equal(
    view.applyPush({ type: 'push', service: 'web', version: 7, complete: true, instances: [] }),
    false,
    'the restored version counts as held',
  );
});

test('service view - waitForChange resolves on change, on timeout and on abort', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { view } = setup();
  view.ensure('web');
  const order: string[] = [];
  const controller = new AbortController();
  const onChange = view.waitForChange('web', 60_000).then(() => order.push('change'));
  const onTimeout = view.waitForChange('db', 500).then(() => order.push('timeout'));
  const onAbort = view.waitForChange('web', 60_000, controller.signal).then(() => order.push('abort'));
  await Promise.resolve();
  assert.deepEqual(order, []);

  t.mock.timers.tick(499);
  await Promise.resolve();
  assert.deepEqual(order, []);
  t.mock.timers.tick(1);
  await onTimeout;
  assert.deepEqual(order, ['timeout']);

  controller.abort();
  await onAbort;
  assert.deepEqual(order, ['timeout', 'abort']);

  view.applyPush({ type: 'push', service: 'web', version: 1, complete: true, instances: [] });
  await onChange;
  assert.deepEqual(order, ['timeout', 'abort', 'change']);
});

test('service view - waitForChange resolves at once when the signal is already aborted', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { view } = setup();
  let done = false;
  const wait = view.waitForChange('web', 60_000, AbortSignal.abort()).then(() => {
    done = true;
  });
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(done, true, 'a request that is already gone does not hold a waiter');
  await wait;
});

test('service view - local changes wake the service and the catalog waiters', async () => {
  const { view } = setup();
  view.ensure('web');
  view.ensureCatalog();
  const woken: string[] = [];
  const a = view.waitForChange('web', 60_000).then(() => woken.push('web'));
  const b = view.waitForCatalogChange(60_000).then(() => woken.push('catalog'));
  view.localChanged('web');
  view.catalogLocalChanged();
  await Promise.all([a, b]);
  assert.deepEqual(woken, ['web', 'catalog']);
});

test('service view - the catalog has its own signal: no service name reaches its waiters or hook', async (t) => {
  const { view, hooks } = setup();
  const controller = new AbortController();
  t.after(() => {
    controller.abort();
  });
  // Any string is a key of the service map, even one that once stood for the catalog.
  for (const name of ['#catalog', 'catalog']) view.ensure(name);
  view.ensureCatalog();
  const woken: string[] = [];
  const catalog = view.waitForCatalogChange(60_000, controller.signal).then(() => woken.push('catalog'));
  const service = view
    .waitForChange('#catalog', 60_000, controller.signal)
    .then(() => woken.push('#catalog'));
  view.applyPush({ type: 'push', service: '#catalog', version: 1, complete: true, instances: [] });
  await service;
  assert.deepEqual(woken, ['#catalog'], 'a push of a service wakes only that service');
  view.applyCatalog({ type: 'catalog', version: 1, complete: true, services: { web: [] } });
  await catalog;
  assert.deepEqual(woken, ['#catalog', 'catalog']);
  assert.deepEqual(hooks.events, [
    'watch #catalog',
    'watch catalog',
    'watch the catalog',
    'changed #catalog',
    'catalog changed',
  ]);
});

test('service view - catalog: newer complete lists replace, incomplete ones merge, older ones are ignored', () => {
  const { view, hooks } = setup();
  const state = view.ensureCatalog();
  view.ensureCatalog();
  assert.deepEqual(hooks.events, ['watch the catalog']);
  assert.equal(view.catalogWatched, true);
  const applied = [
    view.applyCatalog({ type: 'catalog', version: 5, complete: true, services: { web: ['v1'], db: [] } }),
    view.applyCatalog({ type: 'catalog', version: 5, complete: true, services: {} }),
    view.applyCatalog({ type: 'catalog', version: 6, complete: false, services: { api: ['x'] } }),
  ];
  assert.deepEqual(applied, [true, false, true]);
  assert.deepEqual(state.services, { web: ['v1'], db: [], api: ['x'] });
  const before = state.modifyIndex;
  view.applyCatalog({ type: 'catalog', version: 7, complete: true, services: { api: ['x'] } });
  assert.deepEqual(state.services, { api: ['x'] });
  assert.ok(state.modifyIndex > before);
  assert.equal(view.applyCatalog({ type: 'catalog', version: 4, complete: true, services: {} }), false);
});

test('service view - catalog: local names are merged in with the union of their tags', () => {
  const { view } = setup();
  view.ensureCatalog();
  view.applyCatalog({ type: 'catalog', version: 1, complete: true, services: { web: ['v2', 'a'], db: [] } });
  assert.deepEqual(
    view.catalogServices([
      ['web', ['v1', 'a']],
      ['local-only', ['z']],
    ]),
    { web: ['a', 'v1', 'v2'], db: [], 'local-only': ['z'] },
  );
});

test('service view - restoreCatalog fills the catalog only before anything arrived', () => {
  const { view } = setup();
  view.restoreCatalog(3, { web: [] });
  view.restoreCatalog(9, { other: [] });
  const state = view.ensureCatalog();
  assert.deepEqual([state.version, state.services], [3, { web: [] }]);
});
