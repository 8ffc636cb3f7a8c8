import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  buildClusterLoadAssignment,
  type AssignmentCaller,
  type ClusterLoadAssignmentJson,
} from '../../agent/eds/cluster-load-assignment.js';
import { handleDiscoveryRest } from '../../agent/eds/rest-gateway.js';
import { buildCluster } from '../../agent/eds/service-resources.js';
import { TYPE_URLS } from '../../agent/eds/type-urls.js';
import { XdsView } from '../../agent/eds/xds-view.js';
import { FederationView } from '../../agent/federation-view.js';
import { ServiceView } from '../../agent/view/service-view.js';
import { ViewEndpoints } from '../../agent/view/view-endpoints.js';
import { SCOPES, type Scope } from '../../proto/datacenter.js';
import type { Instance } from '../../proto/instance.js';
import { FakeEndpointSource, fakeInstance } from '../support/eds-fake-source.js';

const CLA = TYPE_URLS.endpoint;

/** One instance per zone listed, at 10.0.<n>.1, region r1. */
function inZones(...zones: string[]): Instance[] {
  return zones.map((zone, n) => fakeInstance({ id: `${zone}-${n}`, zone, nodeAddress: `10.0.${n}.1` }));
}

/** `[zone, priority]` per locality, in answer order (region shown only when it is not r1). */
function layout(assignment: ClusterLoadAssignmentJson): string[] {
  return assignment.endpoints.map((g) => {
    const region = g.locality.region === 'r1' ? '' : `${g.locality.region ?? '-'}/`;
    return `${region}${g.locality.zone ?? '-'}:${g.priority ?? 0}`;
  });
}

function build(instances: readonly Instance[], caller: AssignmentCaller): string[] {
  return layout(buildClusterLoadAssignment({ service: 'web', version: 1, instances }, caller).assignment);
}

void test('eds locality - one zone: priority 0 whoever asks', () => {
  assert.deepEqual(build(inZones('a', 'a'), { region: 'r1', zone: 'a' }), ['a:0']);
  // A caller in another zone: the only zone there is shifts up to 0.
  assert.deepEqual(build(inZones('a'), { region: 'r1', zone: 'b' }), ['a:0']);
});

void test('eds locality - two zones: the caller zone is 0, the other 1, for a caller in each', () => {
  const instances = inZones('a', 'b', 'b');
  assert.deepEqual(build(instances, { region: 'r1', zone: 'a' }), ['a:0', 'b:1']);
  assert.deepEqual(build(instances, { region: 'r1', zone: 'b' }), ['b:0', 'a:1']);
});

void test('eds locality - three zones: the caller zone is 0, both others share 1', () => {
  const instances = inZones('a', 'b', 'c');
  assert.deepEqual(build(instances, { region: 'r1', zone: 'a' }), ['a:0', 'b:1', 'c:1']);
  assert.deepEqual(build(instances, { region: 'r1', zone: 'b' }), ['b:0', 'a:1', 'c:1']);
  assert.deepEqual(build(instances, { region: 'r1', zone: 'c' }), ['c:0', 'a:1', 'b:1']);
  // One locality per (region, zone): a second region's zone "a" is another locality.
  const twoRegions = [
    ...instances,
    fakeInstance({ id: 'r2a', zone: 'a', region: 'r2', nodeAddress: '10.9.0.1' }),
  ];
  assert.deepEqual(build(twoRegions, { region: 'r1', zone: 'a' }), ['a:0', 'b:1', 'c:1', 'r2/a:1']);
  // A caller naming only a zone matches that zone in every region.
  assert.deepEqual(build(twoRegions, { region: '', zone: 'a' }), ['a:0', 'r2/a:0', 'b:1', 'c:1']);
});

void test('eds locality - a caller without a zone puts the whole data center at 0', () => {
  assert.deepEqual(build(inZones('a', 'b'), { region: '', zone: '' }), ['a:0', 'b:0']);
  assert.deepEqual(build(inZones('a', 'b'), { region: '', zone: '', scope: 'zone' }), ['a:0', 'b:0']);
});

void test('eds locality - zone scope keeps only the caller zone, even when it is empty', () => {
  const instances = inZones('a', 'b', 'c');
  assert.deepEqual(build(instances, { region: 'r1', zone: 'b', scope: 'zone' }), ['b:0']);
  assert.deepEqual(build(instances, { region: 'r1', zone: 'x', scope: 'zone' }), []);
});

void test('eds locality - remote data centers: priority 2 for scope global only, contiguous when zones are empty', () => {
  const snapshot = {
    service: 'web',
    version: 3,
    instances: inZones('a', 'b'),
    remote: [
      {
        datacenter: 'dc3',
        instances: [fakeInstance({ id: 'x', zone: 'a', region: 'eu', nodeAddress: '10.3.0.1' })],
      },
      {
        datacenter: 'dc2',
        instances: [
          fakeInstance({ id: 'y', zone: 'a', nodeAddress: '10.2.0.1' }),
          fakeInstance({ id: 'z', zone: 'q', nodeAddress: '10.2.0.2' }),
        ],
      },
    ],
  };
  const at = (caller: AssignmentCaller): string[] =>
    layout(buildClusterLoadAssignment(snapshot, caller).assignment);
  // The remote locality's region is the data center's name, its zone the instance's.
  assert.deepEqual(at({ region: 'r1', zone: 'a', scope: 'global' }), [
    'a:0',
    'b:1',
    'dc2/a:2',
    'dc2/q:2',
    'dc3/a:2',
  ]);
  assert.deepEqual(at({ region: 'r1', zone: 'a', scope: 'datacenter' }), ['a:0', 'b:1']);
  assert.deepEqual(at({ region: 'r1', zone: 'a' }), ['a:0', 'b:1']);
  assert.deepEqual(at({ region: 'r1', zone: 'a', scope: 'zone' }), ['a:0']);
  // Caller zone has none: other zones become 0, remote 1.
  assert.deepEqual(at({ region: 'r1', zone: 'z', scope: 'global' }), [
    'a:0',
    'b:0',
    'dc2/a:1',
    'dc2/q:1',
    'dc3/a:1',
  ]);
  // No local instance at all: the remote copies are priority 0.
  const onlyRemote = { ...snapshot, instances: [] };
  assert.deepEqual(
    layout(buildClusterLoadAssignment(onlyRemote, { region: 'r1', zone: 'a', scope: 'global' }).assignment),
    ['dc2/a:0', 'dc2/q:0', 'dc3/a:0'],
  );
  // An address already served locally is not repeated from a remote copy.
  const clash = {
    ...snapshot,
    remote: [
      { datacenter: 'dc2', instances: [fakeInstance({ id: 'd', nodeAddress: '10.0.0.1', zone: 'a' })] },
    ],
  };
  const built = buildClusterLoadAssignment(clash, { region: 'r1', zone: 'a', scope: 'global' });
  assert.equal(built.skipped, 1);
  assert.deepEqual(layout(built.assignment), ['a:0', 'b:1']);
});

const zoneArb = fc.constantFrom('', 'a', 'b', 'c');
const instancesArb = fc.array(
  fc.record({
    zone: zoneArb,
    region: fc.constantFrom('', 'r1', 'r2'),
    health: fc.constantFrom('passing', 'warning', 'critical'),
    w: fc.integer({ min: 0, max: 100 }),
  }),
  { maxLength: 12 },
);

void test('eds locality - property: priorities contiguous from 0, weights at least 1, zone scope a single priority', () => {
  fc.assert(
    fc.property(
      instancesArb,
      instancesArb,
      fc.record({
        region: fc.constantFrom('', 'r1'),
        zone: zoneArb,
        scope: fc.constantFrom<Scope>(...SCOPES),
      }),
      (local, remote, caller) => {
        const mk = (xs: typeof local, net: number): Instance[] =>
          xs.map((x, i) =>
            fakeInstance({
              id: `i${net}-${i}`,
              zone: x.zone,
              region: x.region,
              health: x.health,
              weights: { passing: x.w, warning: x.w },
              nodeAddress: `10.${net}.0.${i + 1}`,
            }),
          );
        const snapshot = {
          service: 'web',
          version: 1,
          instances: mk(local, 1),
          remote: [{ datacenter: 'dc2', instances: mk(remote, 2) }],
        };
        const { assignment } = buildClusterLoadAssignment(snapshot, caller);
        const priorities = [...new Set(assignment.endpoints.map((g) => g.priority ?? 0))].sort(
          (a, b) => a - b,
        );
        assert.deepEqual(
          priorities,
          priorities.map((_, i) => i),
        );
        assert.ok(priorities.length <= (caller.scope === 'global' ? 3 : caller.scope === 'zone' ? 1 : 2));
        for (const g of assignment.endpoints) {
          assert.ok(g.load_balancing_weight >= 1);
          assert.ok(g.lb_endpoints.length > 0);
          for (const e of g.lb_endpoints) assert.ok(e.load_balancing_weight >= 1);
        }
        const remoteShown = assignment.endpoints.some((g) => g.locality.region === 'dc2');
        if (caller.scope !== 'global') assert.equal(remoteShown, false);
        else assert.equal(remoteShown, remote.length > 0);
      },
    ),
    { numRuns: 300 },
  );
});

void test('eds locality - generated clusters enable locality-weighted balancing', () => {
  assert.deepEqual(buildCluster('web')['common_lb_config'], { locality_weighted_lb_config: {} });
});

void test('eds locality - REST answers per caller locality; nodes alike share one built resource', async () => {
  const source = new FakeEndpointSource({ zone: 'a', region: 'r1' });
  source.set('web', inZones('a', 'b'));
  const view = new XdsView(source);
  const ask = async (node: Record<string, unknown>) => {
    const r = await handleDiscoveryRest({ node, resource_names: ['web'] }, source, { view });
    assert.equal(r.status, 200);
    return (r.body as { resources: ClusterLoadAssignmentJson[] }).resources[0] as ClusterLoadAssignmentJson;
  };
  const fallback = await ask({ id: 'e1' });
  assert.deepEqual(layout(fallback), ['a:0', 'b:1']);
  const inB = await ask({ id: 'e2', locality: { region: 'r1', zone: 'b' } });
  assert.deepEqual(layout(inB), ['b:0', 'a:1']);
  // Same node id, other locality: its own answer, not the one cached for that id.
  const sameIdInB = await ask({ id: 'e1', locality: { zone: 'b', sub_zone: 'rack-1' } });
  assert.deepEqual(layout(sameIdInB), ['b:0', 'a:1']);
  assert.deepEqual(layout(await ask({ id: 'e1', locality: {} })), ['a:0', 'b:1']);
  const zoneOnly = await ask({
    id: 'e3',
    locality: { region: 'r1', zone: 'b' },
    metadata: { 'meshreg.scope': 'zone' },
  });
  assert.deepEqual(layout(zoneOnly), ['b:0']);
  // Two nodes in zone b share the built resource (one object, so gRPC encodes it once).
  await ask({ id: 'e4', locality: { region: 'r1', zone: 'b' } });
  const key = (id: string) => JSON.stringify([id, JSON.stringify(['r1', 'b', 'datacenter'])]);
  const r2 = view.cache.fetch(key('e2'), { typeUrl: CLA, versionInfo: '', names: ['web'] })?.resources[0];
  const r4 = view.cache.fetch(key('e4'), { typeUrl: CLA, versionInfo: '', names: ['web'] })?.resources[0];
  assert.ok(r2 !== undefined && r2 === r4);
  // A change reaches every caller with its own priorities.
  source.set('web', inZones('a', 'b', 'c'));
  assert.deepEqual(layout(await ask({ id: 'e2', locality: { region: 'r1', zone: 'b' } })), [
    'b:0',
    'a:1',
    'c:1',
  ]);
  assert.deepEqual(layout(await ask({ id: 'e1' })), ['a:0', 'b:1', 'c:1']);
});

/** A real ServiceView and FederationView behind ViewEndpoints, fed as the agent would feed them. */
function federated() {
  // The view reports changes to the endpoints built on it, as the agent wires them.
  const wired: { endpoints?: ViewEndpoints } = {};
  const watched: string[] = [];
  const view = new ServiceView('own-node', {
    onWatch: (s) => watched.push(s),
    onWatchCatalog: () => undefined,
    localInstances: () => [],
    onChanged: (s) => wired.endpoints?.changed(s),
  });
  const federation = new FederationView('dc1');
  const endpoints = new ViewEndpoints(view, { zone: 'a', region: 'r1' }, () => false, federation);
  wired.endpoints = endpoints;
  const exports = (services: string[], linked = true) =>
    federation.apply(
      { type: 'datacenters', local: 'dc1', peers: [{ name: 'dc2', linked, ageMs: 0, services }] },
      Date.now(),
    );
  const push = (key: string, version: number, instances: Instance[]) =>
    view.applyPush({ type: 'push', service: key, version, complete: true, instances });
  return { view, federation, endpoints, exports, push, watched };
}

void test('eds locality - federated copy: watched as web@dc2 for global callers, at priority 2, versions follow it', async () => {
  const f = federated();
  const xds = new XdsView(f.endpoints);
  const ask = async (id: string, scope: Scope) => {
    const r = await handleDiscoveryRest(
      { node: { id, metadata: { 'meshreg.scope': scope } }, resource_names: ['web'] },
      f.endpoints,
      { view: xds },
    );
    return r.status === 200
      ? layout(
          (r.body as { resources: ClusterLoadAssignmentJson[] }).resources[0] as ClusterLoadAssignmentJson,
        )
      : r.status;
  };
  f.view.ensure('web');
  f.push('web', 1, inZones('a', 'b'));
  // Not exported yet: global sees the local data center only and nothing watches web@dc2.
  assert.deepEqual(await ask('g', 'global'), ['a:0', 'b:1']);
  assert.deepEqual(f.watched, ['web']);
  f.exports(['web']);
  assert.deepEqual(f.watched, ['web', 'web@dc2']);
  assert.equal(xds.watches('web@dc2'), true);
  const v0 = f.endpoints.snapshot('web', { remote: true }).version;
  f.push('web@dc2', 7, [fakeInstance({ id: 'r', zone: 'a', nodeAddress: '10.2.0.1', nodeId: 'n2' })]);
  assert.ok(f.endpoints.snapshot('web', { remote: true }).version > v0);
  assert.deepEqual(await ask('g', 'global'), ['a:0', 'b:1', 'dc2/a:2']);
  assert.deepEqual(await ask('d', 'datacenter'), ['a:0', 'b:1']);
  assert.deepEqual(await ask('z', 'zone'), ['a:0']);
  // The link drops: the last copy stays, served (marked stale in the snapshot).
  f.exports(['web'], false);
  const snap = f.endpoints.snapshot('web', { remote: true });
  assert.equal(snap.remote?.[0]?.stale, true);
  assert.deepEqual(await ask('g', 'global'), ['a:0', 'b:1', 'dc2/a:2']);
  // The peer stops exporting: gone from the answer at once.
  f.exports([]);
  assert.deepEqual(await ask('g', 'global'), ['a:0', 'b:1']);
  xds.close();
});

void test('eds locality - only exported remote copy, no local instances: the remote is served at 0', () => {
  const f = federated();
  f.exports(['api']);
  f.endpoints.snapshot('api', { remote: true });
  assert.equal(f.endpoints.snapshot('api', { remote: true }).version, 0);
  f.push('api@dc2', 1, [
    fakeInstance({ id: 'r', service: 'api', zone: 'c', nodeAddress: '10.2.0.9', nodeId: 'n2' }),
  ]);
  const snap = f.endpoints.snapshot('api', { remote: true });
  assert.ok(snap.version > 0);
  assert.deepEqual(
    layout(buildClusterLoadAssignment(snap, { region: 'r1', zone: 'a', scope: 'global' }).assignment),
    ['dc2/c:0'],
  );
  // A datacenter-scope caller has no view of it yet: version 0, the resource is withheld.
  assert.equal(f.endpoints.snapshot('api').version, 0);
});
