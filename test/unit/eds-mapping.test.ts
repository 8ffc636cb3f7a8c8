import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildClusterLoadAssignment } from '../../agent/eds/cluster-load-assignment.js';
import { fakeInstance } from '../support/eds-fake-source.js';

const local = { zone: 'z1', region: 'r1' };

void test('eds mapping - health, weights and node address fallback', () => {
  const { assignment, skipped } = buildClusterLoadAssignment(
    {
      service: 'web',
      version: 1,
      instances: [
        fakeInstance({ id: 'a', address: '10.0.0.2', weights: { passing: 10, warning: 2 } }),
        fakeInstance({ id: 'b', health: 'warning', weights: { passing: 10, warning: 2 }, port: 81 }),
        fakeInstance({ id: 'c', health: 'critical', port: 82, weights: { passing: 0, warning: 0 } }),
        fakeInstance({ id: 'd', port: 83 }),
      ],
      deregistering: new Set(['node-1/d']),
    },
    local,
  );
  assert.equal(skipped, 0);
  const eps = assignment.endpoints[0]?.lb_endpoints ?? [];
  assert.deepEqual(
    eps.map((e) => [e.endpoint.address.socket_address.address, e.health_status, e.load_balancing_weight]),
    [
      ['10.0.0.2', 'HEALTHY', 10],
      ['10.0.0.1', 'DEGRADED', 2],
      ['10.0.0.1', 'UNHEALTHY', 1],
      ['10.0.0.1', 'DRAINING', 1],
    ],
  );
  // Locality weight counts only endpoints that can take traffic.
  assert.equal(assignment.endpoints[0]?.load_balancing_weight, 12);
});

void test('eds mapping - non-IP, port 0 and duplicate addresses are skipped and counted', () => {
  const { assignment, skipped } = buildClusterLoadAssignment(
    {
      service: 'web',
      version: 1,
      instances: [
        fakeInstance({ id: 'a', address: 'db.example.com' }),
        fakeInstance({ id: 'b', port: 0 }),
        fakeInstance({ id: 'c' }),
        fakeInstance({ id: 'd' }),
        fakeInstance({ id: 'e', address: '::1' }),
      ],
    },
    local,
  );
  assert.equal(skipped, 3);
  assert.deepEqual(
    assignment.endpoints.flatMap((g) => g.lb_endpoints.map((e) => e.endpoint.address.socket_address.address)),
    ['10.0.0.1', '::1'],
  );
});

void test('eds mapping - local zone gets priority 0, others 1, contiguous when no local', () => {
  const instances = [
    fakeInstance({ id: 'a', zone: 'z2', nodeAddress: '10.0.0.2' }),
    fakeInstance({ id: 'b', zone: 'z1', nodeAddress: '10.0.0.3' }),
    fakeInstance({ id: 'c', zone: '', region: '', nodeAddress: '10.0.0.4', health: 'critical' }),
  ];
  const mixed = buildClusterLoadAssignment({ service: 'web', version: 1, instances }, local).assignment;
  assert.deepEqual(
    mixed.endpoints.map((g) => [g.locality, g.priority ?? 0, g.load_balancing_weight]),
    [
      [{ region: 'r1', zone: 'z1' }, 0, 1],
      [{}, 1, 1],
      [{ region: 'r1', zone: 'z2' }, 1, 1],
    ],
  );
  const remote = buildClusterLoadAssignment(
    { service: 'web', version: 1, instances: instances.slice(0, 1) },
    local,
  ).assignment;
  assert.deepEqual(
    remote.endpoints.map((g) => g.priority ?? 0),
    [0],
  );
});

void test('eds mapping - meta under envoy.lb, tags and id under meshreg', () => {
  const { assignment } = buildClusterLoadAssignment(
    {
      service: 'web',
      version: 1,
      instances: [fakeInstance({ id: 'a', meta: { version: 'v2' }, tags: ['blue'] })],
    },
    local,
  );
  assert.deepEqual(assignment.endpoints[0]?.lb_endpoints[0]?.metadata, {
    filter_metadata: { 'envoy.lb': { version: 'v2' }, meshreg: { instance_id: 'node-1/a', tags: ['blue'] } },
  });
  assert.equal(assignment.cluster_name, 'web');
});
