/**
 * The agent's watch table: idle watches are evicted on an injected clock, reads in progress and
 * xDS subscribers keep a watch, and the watch limit evicts the least recently read idle watch
 * before it refuses with `rate_limited`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONSUL_CHECK_RULES } from '../../agent/checks/check-definition.js';
import { addConsulRoutes, type ConsulBackend } from '../../agent/consul/consul-api.js';
import { JsonRouter, type JsonAnswer } from '../../proto/runtime/json-router.js';
import { LocalServices } from '../../agent/local/local-services.js';
import { ServiceView, type ViewHooks } from '../../agent/view/service-view.js';
import { VersionClock } from '../../proto/version.js';
import { MeshregError } from '../../proto/errors.js';
import type { Instance } from '../../proto/instance.js';
import { makeInstance } from '../support/fixtures.js';

class Hooks implements ViewHooks {
  readonly events: string[] = [];
  readonly xds = new Set<string>();
  onWatch(service: string): void {
    this.events.push(`watch ${service}`);
  }
  onWatchCatalog(): void {
    this.events.push('watch #catalog');
  }
  localInstances(): readonly Instance[] {
    return [];
  }
  onChanged(): void {
    // Not observed here.
  }
  onUnwatch(services: readonly string[]): void {
    this.events.push(`unwatch ${services.join(',')}`);
  }
  inUse(service: string): boolean {
    return this.xds.has(service);
  }
}

function setup(maxWatches = 100): { view: ServiceView; hooks: Hooks; clock: { ms: number } } {
  const clock = { ms: 1_000_000 };
  const hooks = new Hooks();
  const view = new ServiceView('node-a', hooks, { maxWatches, now: () => clock.ms });
  return { view, hooks, clock };
}

const names = (view: ServiceView): string[] => view.watched().map((w) => w.service);

test('watch eviction - a watch not read for the idle time is evicted and reported once', () => {
  const { view, hooks, clock } = setup();
  view.ensure('a');
  clock.ms += 500;
  view.ensure('b');
  clock.ms += 500;
  assert.deepEqual(view.evictIdle(1000), ['a'], 'a was read 1000 ms ago, b 500 ms ago');
  assert.deepEqual(names(view), ['b']);
  clock.ms += 499;
  assert.deepEqual(view.evictIdle(1000), []);
  view.ensure('b'); // a read renews it
  clock.ms += 999;
  assert.deepEqual(view.evictIdle(1000), []);
  clock.ms += 1;
  assert.deepEqual(view.evictIdle(1000), ['b']);
  assert.deepEqual(hooks.events, ['watch a', 'watch b', 'unwatch a', 'unwatch b']);
  // A push for an evicted service is ignored; a new read subscribes again from scratch.
  const push = { type: 'push', service: 'a', version: 7, complete: true, instances: [] } as const;
  assert.equal(view.applyPush(push), false);
  assert.equal(view.ensure('a').received, false);
  assert.equal(hooks.events.at(-1), 'watch a');
});

test('watch eviction - a held watch (blocking query) is never evicted; idle counts from its release', () => {
  const { view, clock } = setup();
  const release = view.hold(view.ensure('held'));
  clock.ms += 60_000;
  assert.deepEqual(view.evictIdle(1000), [], 'held for a minute, still watched');
  release();
  release(); // idempotent: a second call must not free another hold
  const second = view.hold(view.ensure('held'));
  clock.ms += 5000;
  assert.deepEqual(view.evictIdle(1000), [], 'the second hold still counts');
  second();
  clock.ms += 999;
  assert.deepEqual(view.evictIdle(1000), [], 'idle time starts when the read ended');
  clock.ms += 1;
  assert.deepEqual(view.evictIdle(1000), ['held']);
});

test('watch eviction - a service an xDS subscriber uses is kept, and goes once it is not used', () => {
  const { view, hooks, clock } = setup();
  view.ensure('eds');
  hooks.xds.add('eds');
  clock.ms += 10_000;
  assert.deepEqual(view.evictIdle(1000), []);
  hooks.xds.delete('eds');
  assert.deepEqual(view.evictIdle(1000), ['eds']);
});

test('watch eviction - at the limit a new read evicts the least recently read idle watch', () => {
  const { view, hooks, clock } = setup(3);
  for (const s of ['a', 'b', 'c']) {
    view.ensure(s);
    clock.ms += 10;
  }
  view.ensure('a'); // now b is the least recently read
  clock.ms += 10;
  view.ensure('d');
  assert.deepEqual(names(view).sort(), ['a', 'c', 'd']);
  assert.ok(hooks.events.includes('unwatch b'));
  // Held watches are skipped: with c and d held, a is the only candidate.
  const rc = view.hold(view.ensure('c'));
  const rd = view.hold(view.ensure('d'));
  clock.ms += 10;
  view.ensure('e');
  assert.deepEqual(names(view).sort(), ['c', 'd', 'e']);
  rc();
  rd();
});

test('watch eviction - at the limit with every watch held, a new read is refused with rate_limited', () => {
  const { view, hooks } = setup(2);
  const r1 = view.hold(view.ensure('a'));
  hooks.xds.add('b');
  view.ensure('b');
  assert.throws(
    () => view.ensure('c'),
    (err: unknown) =>
      err instanceof MeshregError &&
      err.code === 'rate_limited' &&
      err.httpStatus === 429 &&
      err.message.includes('MESHREG_AGENT_MAX_WATCHES'),
  );
  assert.deepEqual(names(view), ['a', 'b'], 'nothing was evicted or added');
  r1();
  view.ensure('c');
  assert.deepEqual(names(view).sort(), ['b', 'c']);
});

test('watch eviction - restoring a cache past the limit skips the rest; restored watches age like reads', () => {
  const { view, clock } = setup(2);
  const inst = makeInstance({ id: 'x-1', service: 'x', nodeId: 'node-b' });
  view.restore('x', 5, [inst]);
  view.restore('y', 6, []);
  view.restore('z', 7, []);
  assert.deepEqual(names(view), ['x', 'y']);
  assert.equal(view.get('x')?.version, 5);
  clock.ms += 1000;
  assert.deepEqual(view.evictIdle(1000).sort(), ['x', 'y']);
});

test('watch eviction - unwatch drops an unheld watch now and leaves a held one', () => {
  const { view } = setup();
  view.ensure('free');
  const release = view.hold(view.ensure('busy'));
  assert.equal(view.unwatch('free'), true);
  assert.equal(view.unwatch('busy'), false);
  assert.equal(view.unwatch('never'), false);
  assert.deepEqual(names(view), ['busy']);
  release();
});

/** A health read through the real Consul routes, mapped to a status and JSON body as the server does. */
async function read(backend: ConsulBackend, service: string): Promise<JsonAnswer> {
  const router = new JsonRouter();
  addConsulRoutes(router, backend);
  return router.handle({ method: 'GET', path: `/v1/health/service/${service}` });
}

function backendWith(view: ServiceView, refusal?: { code: string; message: string }): ConsulBackend {
  return {
    node: { nodeId: 'node-a', node: 'a', address: '127.0.0.1', zone: '', region: '' },
    datacenter: 'dc1',
    firstReadWaitMs: 0,
    checkRules: CONSUL_CHECK_RULES,
    local: new LocalServices(new VersionClock()),
    view,
    subscriptionRefusal: () => refusal,
    register: () => Promise.resolve(),
    deregister: () => Promise.resolve(),
    upstream: () => ({ connected: false, lastContactMs: 0, offlineForSec: 1, leader: '' }),
  };
}

test('watch eviction - over the limit with every watch in use, a read answers 429 rate_limited naming it', async () => {
  const { view, hooks } = setup(1);
  hooks.xds.add('kept');
  view.ensure('kept');
  const r = await read(backendWith(view), 'new-one');
  assert.equal(r.status, 429);
  const body = r.body as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'rate_limited');
  assert.match(body.error.message, /MESHREG_AGENT_MAX_WATCHES/);
  assert.deepEqual(names(view), ['kept']);
});

test('watch eviction - a subscription the session refused for its limit answers 429 and is unwatched', async () => {
  const { view, hooks } = setup();
  const refusal = { code: 'limit_exceeded', message: 'this agent already watches 3 services' };
  const r = await read(backendWith(view, refusal), 'over');
  assert.equal(r.status, 429);
  assert.equal((r.body as { error: { code: string } }).error.code, 'limit_exceeded');
  assert.deepEqual(names(view), [], 'dropped, so the next read subscribes again');
  assert.deepEqual(hooks.events, ['watch over', 'unwatch over']);
});
