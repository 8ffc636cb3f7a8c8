/**
 * xDS served by a real agent (`meshreg dev`): gRPC backends registered through the agent's Consul API,
 * the unmodified `@grpc/grpc-js-xds` client dialing `xds:///echo`, and Envoy's REST EDS on the agent's
 * HTTP port. The client reads its bootstrap once per process, so this file owns its process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { http, header } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

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
const CLA = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
/** Deregistered instances stay published as DRAINING this long. */
const DRAIN_MS = 600;

async function startEcho(name: string): Promise<{ name: string; port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(EchoClient.service, {
    Say: (_call: unknown, callback: grpc.sendUnaryData<{ text: string }>) => {
      callback(null, { text: name });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e === null ? resolve(p) : reject(e),
    );
  });
  return { name, port, server };
}

describe('eds through the agent', () => {
  let dev: Started;
  let agent = '';
  let client: grpc.Client;
  let cleanup: () => Promise<void> = () => Promise.resolve();
  const backends: { name: string; port: number; server: grpc.Server }[] = [];

  const say = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const method = (
        client as unknown as Record<
          string,
          (req: object, opts: object, cb: (e: Error | null, r?: { text: string }) => void) => void
        >
      )['Say'];
      method?.call(client, { text: 'hi' }, { deadline: Date.now() + 5000, waitForReady: true }, (e, r) =>
        e === null ? resolve(r?.text ?? '') : reject(e),
      );
    });

  const eventually = async (ok: (seen: Map<string, number>) => boolean, timeoutMs = 5000): Promise<void> => {
    const end = Date.now() + timeoutMs;
    let seen = new Map<string, number>();
    while (Date.now() < end) {
      seen = new Map();
      for (let i = 0; i < 10; i++) {
        const n = await say();
        seen.set(n, (seen.get(n) ?? 0) + 1);
      }
      if (ok(seen)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`not met in ${timeoutMs} ms; last ${JSON.stringify([...seen])}`);
  };

  const register = (name: string, port: number): Promise<unknown> =>
    http('PUT', `${agent}/v1/agent/service/register`, {
      Name: 'echo',
      ID: `echo-${name}`,
      Address: '127.0.0.1',
      Port: port,
    });

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    dev = await startMeshreg('dev', {
      MESHREG_AGENT_DATA_DIR: tmp.dir,
      MESHREG_ZONE: 'z1',
      MESHREG_REGION: 'r1',
      MESHREG_AGENT_DRAIN_MS: String(DRAIN_MS),
    });
    agent = dev.addresses['agent'] ?? '';
    for (const n of ['a', 'b', 'c']) backends.push(await startEcho(n));
    process.env['GRPC_XDS_BOOTSTRAP_CONFIG'] = JSON.stringify({
      xds_servers: [{ server_uri: dev.addresses['xds'], channel_creds: [{ type: 'insecure' }] }],
      node: { id: 'grpc-client-1', locality: {} },
    });
    const xdsClient = await import('@grpc/grpc-js-xds');
    xdsClient.register();
    client = new EchoClient('xds:///echo', grpc.credentials.createInsecure());
  });

  after(async () => {
    client.close();
    for (const b of backends) b.server.forceShutdown();
    await dev.stop();
    await cleanup();
  });

  test('eds agent - a proxyless gRPC client spreads calls over instances registered at the agent', async () => {
    const [a, b] = backends;
    assert.ok(a !== undefined && b !== undefined);
    await register('a', a.port);
    await register('b', b.port);
    await eventually((s) => (s.get('a') ?? 0) > 0 && (s.get('b') ?? 0) > 0);
  });

  test('eds agent - a deregistered instance stops getting calls, a new one gets them', async () => {
    const c = backends[2];
    assert.ok(c !== undefined);
    await http('PUT', `${agent}/v1/agent/service/deregister/echo-a`);
    await eventually((s) => s.size === 1 && s.has('b'), 3000);
    await register('c', c.port);
    await eventually((s) => (s.get('b') ?? 0) > 0 && (s.get('c') ?? 0) > 0, 3000);
  });

  test('eds agent - REST EDS on the agent port: 200, then 304 on the same version, then a long poll', async () => {
    const req = { node: { id: 'envoy-1', cluster: 'edge' }, resource_names: ['echo'], type_url: CLA };
    // echo-a, deregistered by the previous test, drains first: wait until it is gone.
    await waitFor('echo-a drained', async () => {
      const r = await http('POST', `${agent}/v3/discovery:endpoints`, req);
      return (
        (r.body as { resources: { endpoints: { lb_endpoints: unknown[] }[] }[] }).resources[0]?.endpoints[0]
          ?.lb_endpoints.length === 2
      );
    });
    const first = await http('POST', `${agent}/v3/discovery:endpoints`, req);
    assert.equal(first.status, 200);
    const body = first.body as {
      version_info: string;
      resources: { cluster_name: string; endpoints: { locality: object; lb_endpoints: unknown[] }[] }[];
    };
    assert.equal(body.resources[0]?.cluster_name, 'echo');
    assert.deepEqual(body.resources[0]?.endpoints[0]?.locality, { region: 'r1', zone: 'z1' });
    assert.equal(body.resources[0]?.endpoints[0]?.lb_endpoints.length, 2);
    const same = await http('POST', `${agent}/v3/discovery:endpoints`, {
      ...req,
      version_info: body.version_info,
    });
    assert.equal(same.status, 304);
    assert.equal(same.text, '');
    const held = http('POST', `${agent}/v3/discovery:endpoints?wait=10s`, {
      ...req,
      version_info: body.version_info,
    });
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await http('PUT', `${agent}/v1/agent/service/deregister/echo-b`);
    const changed = await held;
    assert.equal(changed.status, 200);
    assert.ok(Date.now() - started < 2000, 'the long poll returned on the change');
    type Cla = {
      version_info: string;
      resources: {
        endpoints: {
          lb_endpoints: {
            health_status?: string;
            endpoint: { address: { socket_address: { port_value: number } } };
          }[];
        }[];
      }[];
    };
    // The drain is observable: the deregistered instance is DRAINING before it goes.
    const statusesOf = (body: unknown): string[] =>
      ((body as Cla).resources[0]?.endpoints[0]?.lb_endpoints ?? [])
        .map((e) => e.health_status ?? 'UNKNOWN')
        .sort();
    let drainingSeen = statusesOf(changed.body).includes('DRAINING');
    let version = (changed.body as Cla).version_info;
    while (!drainingSeen && Date.now() - started < DRAIN_MS) {
      const r = await http('POST', `${agent}/v3/discovery:endpoints`, req);
      drainingSeen = statusesOf(r.body).includes('DRAINING');
      version = (r.body as Cla).version_info;
    }
    assert.ok(drainingSeen, 'a deregistered instance drains first');
    const consul = (await http('GET', `${agent}/v1/health/service/echo?passing`)).body as unknown[];
    assert.equal(consul.length, 1, 'only the healthy instance is in the passing list');
    await waitFor('removed after the drain period', async () => {
      const r = await http('POST', `${agent}/v3/discovery:endpoints?wait=2s`, {
        ...req,
        version_info: version,
      });
      if (r.status === 200) version = (r.body as Cla).version_info;
      return r.status === 200 && statusesOf(r.body).join() === 'HEALTHY';
    });
    const bad = await http('POST', `${agent}/v3/discovery:endpoints`, { ...req, resource_names: 'echo' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /resource_names/);
    assert.equal(header(bad, 'content-type'), 'application/json');
  });
});
