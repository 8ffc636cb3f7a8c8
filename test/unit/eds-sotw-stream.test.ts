import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromProto3JSON, toProto3JSON, type JSONValue } from 'proto3-json-serializer';
import { loadEnvoyProtos } from '../../agent/eds/envoy-protos.js';
import { SotwStream, type OutgoingResponse } from '../../agent/eds/sotw-stream.js';
import { RESOURCE_TYPE_URLS, TYPE_URLS } from '../../agent/eds/type-urls.js';
import { XdsView } from '../../agent/eds/xds-view.js';
import { FakeEndpointSource, fakeInstance } from '../support/eds-fake-source.js';

function setup(): {
  source: FakeEndpointSource;
  sent: OutgoingResponse<string>[];
  stream: SotwStream<string>;
  view: XdsView;
} {
  const source = new FakeEndpointSource();
  source.set('web', [fakeInstance({ id: 'a' })]);
  const view = new XdsView(source);
  const sent: OutgoingResponse<string>[] = [];
  const stream = new SotwStream<string>({
    view,
    streamId: 's1',
    send: (r) => sent.push(r),
    encode: (r) => r.digest,
  });
  return { source, sent, stream, view };
}

const req = (type_url: string, extra: Record<string, unknown> = {}) => ({
  node: { id: 'client' },
  type_url,
  resource_names: ['web'],
  version_info: '',
  response_nonce: '',
  ...extra,
});

void test('eds sotw - request, ACK parks, change is pushed with a new nonce', () => {
  const { source, sent, stream, view } = setup();
  assert.equal(stream.onRequest(req(TYPE_URLS.endpoint)), undefined);
  assert.equal(sent.length, 1);
  const first = sent[0];
  assert.ok(first !== undefined);
  stream.onRequest(
    req(TYPE_URLS.endpoint, { version_info: first.version_info, response_nonce: first.nonce }),
  );
  assert.equal(sent.length, 1);
  assert.equal(view.cache.watchCount('client'), 1);
  source.set('web', [fakeInstance({ id: 'b' })]);
  assert.equal(sent.length, 2);
  assert.notEqual(sent[1]?.nonce, first.nonce);
  assert.notEqual(sent[1]?.version_info, first.version_info);
});

void test('eds sotw - stale nonces are ignored and a NACK is not answered with the same version', () => {
  const { source, sent, stream } = setup();
  stream.onRequest(req(TYPE_URLS.endpoint));
  source.set('web', [fakeInstance({ id: 'b' })]);
  // The client had no watch open, so the change waits for its next request.
  const v1 = sent[0];
  assert.ok(v1 !== undefined);
  stream.onRequest(req(TYPE_URLS.endpoint, { version_info: v1.version_info, response_nonce: v1.nonce }));
  const v2 = sent[1];
  assert.ok(v2 !== undefined);
  stream.onRequest(req(TYPE_URLS.endpoint, { version_info: 'x', response_nonce: v1.nonce }));
  assert.equal(sent.length, 2, 'stale nonce ignored');
  stream.onRequest(
    req(TYPE_URLS.endpoint, {
      version_info: v1.version_info,
      response_nonce: v2.nonce,
      error_detail: { code: 3, message: 'bad' },
    }),
  );
  assert.equal(sent.length, 2, 'NACK parks instead of resending');
  source.set('web', [fakeInstance({ id: 'c' })]);
  assert.equal(sent.length, 3);
});

void test('eds sotw - malformed requests are refused and close drops subscriptions', () => {
  const { stream, view, source } = setup();
  assert.equal(stream.onRequest('junk')?.code, 'invalid_argument');
  assert.equal(stream.onRequest(req(''))?.code, 'invalid_argument');
  assert.equal(stream.onRequest(req(TYPE_URLS.endpoint, { resource_names: [1] }))?.code, 'invalid_argument');
  stream.onRequest(req(TYPE_URLS.listener));
  stream.close();
  assert.equal(view.cache.watchCount(), 0);
  assert.deepEqual(view.cache.nodeKeys(), []);
  assert.equal(source.listenerCount, 1);
});

void test('eds sotw - every resource type encodes and round-trips through its Envoy proto', () => {
  const { sent, stream } = setup();
  const bodies: Record<string, unknown>[] = [];
  const protos = loadEnvoyProtos();
  for (const typeUrl of RESOURCE_TYPE_URLS) stream.onRequest(req(typeUrl));
  assert.equal(sent.length, 4);
  for (const typeUrl of RESOURCE_TYPE_URLS) {
    const body = JSON.parse(sent.find((r) => r.type_url === typeUrl)?.resources[0] ?? '{}') as Record<
      string,
      unknown
    >;
    bodies.push(body);
    const type = protos.root.lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
    const fields: Record<string, unknown> = { ...body };
    delete fields['@type'];
    const message = fromProto3JSON(type, fields as JSONValue);
    assert.ok(message !== null, typeUrl);
    assert.equal(JSON.stringify(toProto3JSON(message)).includes('web'), true);
  }
  assert.equal(bodies.length, 4);
});
