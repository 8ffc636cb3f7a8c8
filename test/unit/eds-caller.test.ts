/**
 * The caller of an xDS request as the agent reads it from `node`: locality and scope over REST
 * (proto3 JSON) and gRPC (the loader's decoded messages), the defaults, and bad input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { readCallerGrpc, resolveCaller } from '../../agent/eds/caller.js';
import type { ClusterLoadAssignmentJson } from '../../agent/eds/cluster-load-assignment.js';
import { decodeDiscoveryRequest } from '../../agent/eds/discovery-request.js';
import { loadEnvoyProtos } from '../../agent/eds/envoy-protos.js';
import { handleDiscoveryRest } from '../../agent/eds/rest-gateway.js';
import { SotwStream } from '../../agent/eds/sotw-stream.js';
import { TYPE_URLS } from '../../agent/eds/type-urls.js';
import { XdsView } from '../../agent/eds/xds-view.js';
import { SCOPES } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';
import type { Instance } from '../../proto/instance.js';
import { anyJson, mutated } from '../support/arbitraries.js';
import { FakeEndpointSource, fakeInstance } from '../support/eds-fake-source.js';

const CLA = TYPE_URLS.endpoint;

function inZones(...zones: string[]): Instance[] {
  return zones.map((zone, n) => fakeInstance({ id: `${zone}-${n}`, zone, nodeAddress: `10.0.${n}.1` }));
}

/** `zone:priority` per locality, in answer order. */
function layout(assignment: ClusterLoadAssignmentJson): string[] {
  return assignment.endpoints.map((g) => `${g.locality.zone ?? '-'}:${g.priority ?? 0}`);
}

void test('eds caller - caller locality from node.locality, else the agent (empty counts as absent)', () => {
  const agent = { region: 'r1', zone: 'a' };
  assert.deepEqual(resolveCaller(undefined, agent), { region: 'r1', zone: 'a', scope: 'datacenter' });
  assert.deepEqual(resolveCaller({ locality: { region: '', zone: '' } }, agent), {
    ...agent,
    scope: 'datacenter',
  });
  assert.deepEqual(resolveCaller({ locality: { region: 'r1', zone: 'b' }, scope: 'global' }, agent), {
    region: 'r1',
    zone: 'b',
    scope: 'global',
  });
});

void test('eds caller - a bad scope or locality is a 400 naming the field', async () => {
  const source = new FakeEndpointSource();
  const view = new XdsView(source);
  const bad = async (node: unknown, field: string) => {
    const r = await handleDiscoveryRest({ node, resource_names: ['web'] }, source, { view });
    assert.equal(r.status, 400);
    const paths = (r.body as { error: { fields: { path: string }[] } }).error.fields.map((f) => f.path);
    assert.deepEqual(paths, [field]);
  };
  await bad({ id: 'n', metadata: { 'meshreg.scope': 'planet' } }, 'node.metadata.meshreg.scope');
  await bad({ id: 'n', metadata: 'global' }, 'node.metadata');
  await bad({ id: 'n', locality: { zone: 7 } }, 'node.locality.zone');
  await bad({ id: 'n', locality: { region: 'r'.repeat(129) } }, 'node.locality.region');
});

void test('eds caller - gRPC node: locality and Struct scope are read, a bad scope ends the stream', () => {
  const node = (scope: unknown) => ({
    id: 'g',
    locality: { region: 'r1', zone: 'b', sub_zone: '' },
    metadata: { fields: { 'meshreg.scope': scope, other: { numberValue: 1, kind: 'numberValue' } } },
  });
  assert.deepEqual(readCallerGrpc(node({ stringValue: 'global', kind: 'stringValue' })), {
    locality: { region: 'r1', zone: 'b' },
    scope: 'global',
  });
  assert.deepEqual(
    readCallerGrpc({ id: 'g', locality: { region: '', zone: '', sub_zone: '' }, metadata: { fields: {} } }),
    {},
  );
  const wrong = readCallerGrpc(node({ numberValue: 2, kind: 'numberValue' }));
  assert.ok(wrong instanceof Error && wrong.message.includes('node.metadata.meshreg.scope'));

  const source = new FakeEndpointSource({ zone: 'a', region: 'r1' });
  source.set('web', inZones('a', 'b'));
  const view = new XdsView(source);
  const sent: string[] = [];
  const stream = new SotwStream<string>({
    view,
    streamId: 's',
    send: (r) => sent.push(...r.resources),
    encode: (r) => r.digest,
  });
  const problem = stream.onRequest({
    node: node({ stringValue: 'planet', kind: 'stringValue' }),
    type_url: CLA,
    resource_names: ['web'],
  });
  assert.equal(problem?.code, 'invalid_argument');
  assert.equal(sent.length, 0);
  const good = new SotwStream<string>({
    view,
    streamId: 't',
    send: (r) => sent.push(...r.resources),
    encode: (r) => r.digest,
  });
  assert.equal(
    good.onRequest({
      node: node({ stringValue: 'zone', kind: 'stringValue' }),
      type_url: CLA,
      resource_names: ['web'],
    }),
    undefined,
  );
  assert.deepEqual(layout(JSON.parse(sent[0] ?? '{}') as ClusterLoadAssignmentJson), ['b:0']);
  good.close();
});

void test('eds caller - gRPC wire: a DiscoveryRequest encoded by the Envoy protos carries locality and scope', () => {
  const protos = loadEnvoyProtos();
  const type = protos.root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const wire = type
    .encode(
      type.fromObject({
        node: {
          id: 'g',
          locality: { region: 'r1', zone: 'c' },
          metadata: { fields: { 'meshreg.scope': { stringValue: 'zone' } } },
        },
        type_url: CLA,
        resource_names: ['web'],
      }),
    )
    .finish();
  const service = protos.packageDefinition[
    'envoy.service.discovery.v3.AggregatedDiscoveryService'
  ] as unknown as Record<string, { requestDeserialize: (b: Buffer) => unknown }>;
  const decoded = service['StreamAggregatedResources']?.requestDeserialize(Buffer.from(wire));
  const source = new FakeEndpointSource({ zone: 'a', region: 'r1' });
  source.set('web', inZones('a', 'b', 'c'));
  const sent: string[] = [];
  const stream = new SotwStream<string>({
    view: new XdsView(source),
    streamId: 'w',
    send: (r) => sent.push(...r.resources),
    encode: (r) => r.digest,
  });
  assert.equal(stream.onRequest(decoded), undefined);
  assert.deepEqual(layout(JSON.parse(sent[0] ?? '{}') as ClusterLoadAssignmentJson), ['c:0']);
  stream.close();
});

const validNode = fc.record({
  id: fc.string({ maxLength: 10 }),
  locality: fc.record({ region: fc.string({ maxLength: 8 }), zone: fc.string({ maxLength: 8 }) }),
  metadata: fc.record({ 'meshreg.scope': fc.constantFrom(...SCOPES) }),
});

void test('eds caller - property: any node decodes to a caller or to errors under node, never throws', () => {
  fc.assert(
    fc.property(fc.oneof(mutated(validNode), anyJson), (node) => {
      const decoded = decodeDiscoveryRequest({ node, resource_names: ['web'] });
      if (decoded.ok) {
        const { caller } = decoded.value;
        if (caller.scope !== undefined) assert.ok(SCOPES.includes(caller.scope));
        if (caller.locality !== undefined) {
          assert.ok(caller.locality.region.length <= 128 && caller.locality.zone.length <= 128);
          assert.ok(caller.locality.region !== '' || caller.locality.zone !== '');
        }
      } else {
        for (const e of decoded.errors) assert.match(e.path, /^node/);
      }
      const grpc = readCallerGrpc(node);
      assert.ok(grpc instanceof MeshregError ? grpc.code === 'invalid_argument' : typeof grpc === 'object');
    }),
    { numRuns: 500 },
  );
});
