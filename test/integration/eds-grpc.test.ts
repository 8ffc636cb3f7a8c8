/**
 * The gRPC xDS server against the unmodified proxyless client: real echo servers on 127.0.0.1,
 * a client dialing `xds:///echo`. The client reads its bootstrap once per process, so this file
 * sets it before loading the client package and owns its process.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { loadEnvoyProtos } from '../../agent/eds/envoy-protos.js';
import { startXdsServer, type XdsServerHandle } from '../../agent/eds/grpc-server.js';
import { FakeEndpointSource, fakeInstance } from '../support/eds-fake-source.js';
import type { Instance } from '../../proto/instance.js';

const echoPackage = grpc.loadPackageDefinition(
  protoLoader.fromJSON({
    nested: {
      meshregtest: {
        nested: {
          Echo: { methods: { Say: { requestType: 'Msg', responseType: 'Msg', comment: '' } } },
          Msg: { fields: { text: { type: 'string', id: 1 } } },
        },
      },
    },
  }),
);
const EchoClient = (echoPackage['meshregtest'] as grpc.GrpcObject)['Echo'] as grpc.ServiceClientConstructor;

interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: grpc.Server;
}

async function startEcho(name: string): Promise<Backend> {
  const server = new grpc.Server();
  server.addService(EchoClient.service, {
    Say: (_call: unknown, callback: grpc.sendUnaryData<{ text: string }>) => {
      callback(null, { text: name });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => {
      if (error === null) resolve(p);
      else reject(error);
    });
  });
  return { name, port, server };
}

function instanceOf(backend: Backend, overrides: Partial<Instance> = {}): Instance {
  return fakeInstance({
    id: backend.name,
    service: 'echo',
    address: '127.0.0.1',
    port: backend.port,
    ...overrides,
  });
}

const source = new FakeEndpointSource({ zone: 'z1', region: 'r1' });
const backends: Backend[] = [];
let xds: XdsServerHandle;
let client: grpc.Client;

function say(waitForReady = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 5000;
    const method = (
      client as unknown as Record<
        string,
        (req: object, opts: object, cb: (e: Error | null, r?: { text: string }) => void) => void
      >
    )['Say'];
    method?.call(client, { text: 'hi' }, { deadline, waitForReady }, (error, reply) => {
      if (error !== null) reject(error);
      else resolve(reply?.text ?? '');
    });
  });
}

async function sample(count: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const name = await say();
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }
  return seen;
}

/** Polls until `count` consecutive calls all satisfy `ok`, or fails after `timeoutMs`. */
async function eventually(
  ok: (seen: Map<string, number>) => boolean,
  timeoutMs = 5000,
): Promise<Map<string, number>> {
  const end = Date.now() + timeoutMs;
  let last = new Map<string, number>();
  while (Date.now() < end) {
    last = await sample(8);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`condition not met in ${timeoutMs} ms; last sample ${JSON.stringify([...last])}`);
}

before(async () => {
  for (const name of ['a', 'b', 'c']) backends.push(await startEcho(name));
  xds = await startXdsServer({ source, port: 0 });
  process.env['GRPC_XDS_BOOTSTRAP_CONFIG'] = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xds.port}`, channel_creds: [{ type: 'insecure' }] }],
    node: { id: 'grpc-test-client', locality: {} },
  });
  const xdsClient = await import('@grpc/grpc-js-xds');
  xdsClient.register();
  client = new EchoClient('xds:///echo', grpc.credentials.createInsecure());
});

after(async () => {
  client.close();
  await xds.close();
  for (const b of backends) b.server.forceShutdown();
});

const [a, b, c] = [0, 1, 2].map((i) => (): Backend => {
  const backend = backends[i];
  if (backend === undefined) throw new Error('backend not started');
  return backend;
}) as [() => Backend, () => Backend, () => Backend];

void test('eds grpc - calls spread over both passing instances', async () => {
  source.set('echo', [instanceOf(a()), instanceOf(b())]);
  assert.ok(['a', 'b'].includes(await say(true)));
  const seen = await eventually((s) => (s.get('a') ?? 0) > 0 && (s.get('b') ?? 0) > 0);
  assert.deepEqual([...seen.keys()].sort(), ['a', 'b']);
});

void test('eds grpc - a critical instance stops receiving calls', async () => {
  source.set('echo', [instanceOf(a()), instanceOf(b(), { health: 'critical' })]);
  await eventually((s) => s.size === 1 && s.has('a'), 3000);
});

void test('eds grpc - a removed instance stops and a new one receives calls', async () => {
  source.set('echo', [instanceOf(b())]);
  await eventually((s) => s.size === 1 && s.has('b'), 3000);
  source.set('echo', [instanceOf(b()), instanceOf(c())]);
  await eventually((s) => (s.get('c') ?? 0) > 0 && (s.get('b') ?? 0) > 0, 3000);
});

void test('eds grpc - malformed ADS streams end alone and the good stream keeps updating', async () => {
  const raw = new grpc.Client(`127.0.0.1:${xds.port}`, grpc.credentials.createInsecure());
  const path = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
  const identity = (buf: Buffer): Buffer => buf;
  const badStream = (payload: Buffer): Promise<grpc.StatusObject> =>
    new Promise((resolve) => {
      const call = raw.makeBidiStreamRequest(path, identity, identity);
      call.on('data', () => undefined);
      call.on('error', () => undefined);
      call.on('status', resolve);
      call.write(payload);
    });
  const requestType = loadEnvoyProtos().root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const noTypeUrl = Buffer.from(
    requestType.encode(requestType.fromObject({ node: { id: 'bad' }, resource_names: ['echo'] })).finish(),
  );
  const [garbage, missingType] = await Promise.all([
    badStream(Buffer.from([0xff, 0xff, 0xff, 0x0f])),
    badStream(noTypeUrl),
  ]);
  raw.close();
  assert.notEqual(garbage.code, grpc.status.OK);
  assert.equal(missingType.code, grpc.status.INVALID_ARGUMENT);
  // The client's own stream still works and still receives changes.
  source.set('echo', [instanceOf(c())]);
  await eventually((s) => s.size === 1 && s.has('c'), 3000);
  source.set('echo', [instanceOf(a()), instanceOf(c(), { health: 'critical' })]);
  await eventually((s) => s.size === 1 && s.has('a'), 3000);
});
