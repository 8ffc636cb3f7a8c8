import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromProto3JSON, toProto3JSON, type JSONValue } from 'proto3-json-serializer';
import { loadEnvoyProtos } from '../../agent/eds/envoy-protos.js';
import { handleDiscoveryRest } from '../../agent/eds/rest-gateway.js';
import { XdsView } from '../../agent/eds/xds-view.js';
import { FakeEndpointSource, fakeInstance } from '../support/eds-fake-source.js';

const CLA = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

function setup(): { source: FakeEndpointSource; view: XdsView } {
  const source = new FakeEndpointSource();
  source.set('web', [
    fakeInstance({
      id: 'a',
      address: '10.0.0.2',
      weights: { passing: 5, warning: 1 },
      meta: { v: '2' },
      tags: ['t'],
    }),
    fakeInstance({ id: 'b', zone: 'z2', health: 'warning', nodeAddress: '10.0.0.3' }),
  ]);
  return { source, view: new XdsView(source) };
}

/** The printer writes empty map fields as {}; canonical proto3 JSON (and our output) omits them. */
function withoutEmptyMaps(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(withoutEmptyMaps);
  if (typeof json !== 'object' || json === null) return json;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const isEmptyMap =
      (key === 'typed_filter_metadata' || key === 'named_endpoints') && JSON.stringify(value) === '{}';
    if (!isEmptyMap) out[key] = withoutEmptyMaps(value);
  }
  return out;
}

const request = (extra: Record<string, unknown> = {}) => ({
  node: { id: 'envoy-1', cluster: 'edge' },
  resource_names: ['web'],
  type_url: CLA,
  ...extra,
});

void test('eds rest - response round-trips through the real DiscoveryResponse proto', async () => {
  const { source, view } = setup();
  const res = await handleDiscoveryRest(request(), source, { view });
  assert.equal(res.status, 200);
  const type = loadEnvoyProtos().root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const message = fromProto3JSON(type, res.body as JSONValue);
  assert.ok(message !== null);
  assert.deepEqual(withoutEmptyMaps(toProto3JSON(message)), res.body);
  const body = res.body as { resources: { endpoints: unknown[] }[] };
  assert.equal(body.resources[0]?.endpoints.length, 2);
});

void test('eds rest - the sent text is the response, built from resources encoded once per version', async () => {
  const { source, view } = setup();
  const first = await handleDiscoveryRest(request(), source, { view });
  const second = await handleDiscoveryRest(request({ node: { id: 'envoy-2' } }), source, { view });
  assert.ok(first.text !== undefined && second.text !== undefined);
  assert.deepEqual(JSON.parse(first.text), first.body);
  assert.deepEqual(JSON.parse(second.text), second.body);
  const r1 = view.cache.fetch('envoy-1', { typeUrl: CLA, versionInfo: '', names: ['web'] })?.resources[0];
  const r2 = view.cache.fetch('envoy-2', { typeUrl: CLA, versionInfo: '', names: ['web'] })?.resources[0];
  assert.ok(r1 !== undefined && r1 === r2, 'both nodes share one encoded resource');
});

void test('eds rest - lowerCamelCase keys are accepted', async () => {
  const { source, view } = setup();
  const res = await handleDiscoveryRest(
    { node: { id: 'n' }, resourceNames: ['web'], typeUrl: CLA, versionInfo: '' },
    source,
    { view },
  );
  assert.equal(res.status, 200);
});

void test('eds rest - 304 with no body when version_info is current', async () => {
  const { source, view } = setup();
  const first = await handleDiscoveryRest(request(), source, { view });
  const version = (first.body as { version_info: string }).version_info;
  const second = await handleDiscoveryRest(request({ version_info: version }), source, { view });
  assert.deepEqual(second, { status: 304 });
});

void test('eds rest - a long poll is held until a change, then answered', async () => {
  const { source, view } = setup();
  const first = await handleDiscoveryRest(request(), source, { view });
  const version = (first.body as { version_info: string }).version_info;
  let settled = false;
  const pending = handleDiscoveryRest(request({ version_info: version }), source, { view, wait: '10s' }).then(
    (r) => {
      settled = true;
      return r;
    },
  );
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(settled, false);
  source.set('web', [fakeInstance({ id: 'c', nodeAddress: '10.0.0.9' })]);
  const res = await pending;
  assert.equal(res.status, 200);
  const body = res.body as {
    version_info: string;
    resources: { endpoints: { lb_endpoints: unknown[] }[] }[];
  };
  assert.notEqual(body.version_info, version);
  assert.equal(body.resources[0]?.endpoints[0]?.lb_endpoints.length, 1);
});

void test('eds rest - a long poll ends with 304 on timeout and on client abort', async () => {
  const { source, view } = setup();
  const version = ((await handleDiscoveryRest(request(), source, { view })).body as { version_info: string })
    .version_info;
  const timedOut = await handleDiscoveryRest(request({ version_info: version }), source, {
    view,
    wait: '20ms',
  });
  assert.deepEqual(timedOut, { status: 304 });
  const abort = new AbortController();
  const pending = handleDiscoveryRest(request({ version_info: version }), source, {
    view,
    wait: '1m',
    signal: abort.signal,
  });
  abort.abort();
  assert.deepEqual(await pending, { status: 304 });
  assert.equal(view.cache.watchCount(), 0);
});

void test('eds rest - 400 names each malformed field', async () => {
  const { source, view } = setup();
  const cases: [unknown, string, Record<string, string>?][] = [
    ['nope', '(body)'],
    [request({ resource_names: ['web', 7] }), 'resource_names[1]'],
    [request({ resource_names: [] }), 'resource_names'],
    [request({ type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' }), 'type_url'],
    [request({ version_info: 5 }), 'version_info'],
    [request({ node: 'x' }), 'node'],
    [request({ versionInfo: '1', version_info: '1' }), 'version_info'],
    [request(), 'wait', { wait: 'soon' }],
  ];
  for (const [body, path, opts] of cases) {
    const res = await handleDiscoveryRest(body, source, { view, ...opts });
    assert.equal(res.status, 400, path);
    const error = (res.body as { error: { code: string; fields: { path: string }[] } }).error;
    assert.equal(error.code, 'invalid_argument');
    assert.ok(
      error.fields.some((f) => f.path === path),
      `${path} in ${JSON.stringify(error.fields)}`,
    );
  }
});
