/**
 * Zones through real processes: one `meshreg server`, three agents in zones a, b and c (region r1),
 * each registering one gRPC echo backend of service `echo`. Envoy's REST EDS on agent A is asked
 * with different `node.locality` values and scopes; the unmodified proxyless gRPC client, placed in
 * zone b by its bootstrap, dials `xds:///echo` through agent A and stays in zone b until b's
 * instance goes. The client reads its bootstrap once per process, so this file owns its process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { http } from '../support/http.js';
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
const TOKEN = 'eds-zones-token-0123456789';
const ZONES = ['a', 'b', 'c'] as const;
/** Deregistered instances stay published as DRAINING this long. */
const DRAIN_MS = 300;

interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: grpc.Server;
}

interface Cla {
  readonly version_info: string;
  readonly resources: {
    readonly endpoints: {
      readonly locality: { readonly region?: string; readonly zone?: string };
      readonly priority?: number;
      readonly load_balancing_weight: number;
      readonly lb_endpoints: { readonly endpoint: { address: { socket_address: { port_value: number } } } }[];
    }[];
  }[];
}

async function startEcho(name: string): Promise<Backend> {
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

const realSetTimeout = globalThis.setTimeout;

/**
 * The gRPC xDS client's priority balancer keeps a child it leaves (after a failover) for 15
 * minutes on a timer that neither `client.close()` nor the balancer's destroy clears, which would
 * hold this test process open that long. Timers of 10 minutes or more are unref'd while this
 * file runs; nothing here waits that long on purpose.
 */
function unrefLongTimers(): void {
  globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = realSetTimeout(fn, ms, ...args);
    if ((ms ?? 0) >= 10 * 60_000) timer.unref();
    return timer;
  }) as typeof setTimeout;
}

describe('eds zones through a server and three agents', () => {
  let server: Started;
  const agents = new Map<string, Started>();
  const backends = new Map<string, Backend>();
  const cleanups: (() => Promise<void>)[] = [];
  let client: grpc.Client;

  const agentUrl = (zone: string): string => agents.get(zone)?.addresses['agent'] ?? '';

  const register = (zone: string): Promise<unknown> =>
    http('PUT', `${agentUrl(zone)}/v1/agent/service/register`, {
      Name: 'echo',
      ID: `echo-${zone}`,
      Address: '127.0.0.1',
      Port: backends.get(zone)?.port,
    });

  /** Zone and priority of each locality agent A answers `node` with, e.g. `["a:0", "b:1"]`. */
  const layout = async (node: Record<string, unknown>): Promise<string[]> => {
    const r = await http('POST', `${agentUrl('a')}/v3/discovery:endpoints`, {
      node: { id: 'envoy-1', ...node },
      resource_names: ['echo'],
      type_url: CLA,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (
      (r.body as Cla).resources[0]?.endpoints.map((g) => `${g.locality.zone ?? '-'}:${g.priority ?? 0}`) ?? []
    );
  };

  /** Waits until agent A's default answer has `count` endpoints (pushes from other agents arrive). */
  const endpointsSeen = (count: number): Promise<unknown> =>
    waitFor(
      `${count} endpoints at agent a`,
      async () => {
        const r = await http('POST', `${agentUrl('a')}/v3/discovery:endpoints`, {
          node: { id: 'probe' },
          resource_names: ['echo'],
        });
        if (r.status !== 200) return false;
        const groups = (r.body as Cla).resources[0]?.endpoints ?? [];
        return groups.reduce((n, g) => n + g.lb_endpoints.length, 0) === count;
      },
      15_000,
    );

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

  const sample = async (count: number): Promise<Map<string, number>> => {
    const seen = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const n = await say();
      seen.set(n, (seen.get(n) ?? 0) + 1);
    }
    return seen;
  };

  const eventually = async (
    ok: (seen: Map<string, number>) => boolean,
    timeoutMs = 10_000,
  ): Promise<void> => {
    const end = Date.now() + timeoutMs;
    let seen = new Map<string, number>();
    while (Date.now() < end) {
      seen = await sample(12);
      if (ok(seen)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`not met in ${timeoutMs} ms; last ${JSON.stringify([...seen])}`);
  };

  before(async () => {
    unrefLongTimers();
    server = await startMeshreg('server', { MESHREG_TOKEN: TOKEN, MESHREG_SESSION_PORT: '0' });
    for (const zone of ZONES) {
      const { dir, cleanup } = await tempDir();
      cleanups.push(cleanup);
      agents.set(
        zone,
        await startMeshreg('agent', {
          MESHREG_TOKEN: TOKEN,
          MESHREG_AGENT_UPSTREAM: server.addresses['session'] ?? '',
          MESHREG_NODE_NAME: `host-${zone}`,
          MESHREG_AGENT_DATA_DIR: dir,
          MESHREG_ZONE: zone,
          MESHREG_REGION: 'r1',
          MESHREG_AGENT_DRAIN_MS: String(DRAIN_MS),
        }),
      );
      backends.set(zone, await startEcho(zone));
    }
  });

  after(async () => {
    client.close();
    globalThis.setTimeout = realSetTimeout;
    for (const b of backends.values()) b.server.forceShutdown();
    await Promise.all([...agents.values()].map((a) => a.stop()));
    await server.stop();
    await Promise.all(cleanups.map((c) => c()));
  });

  test('eds zones - two zones: the caller zone is priority 0, fallback to the agent zone', async () => {
    await register('a');
    await register('b');
    await endpointsSeen(2);
    assert.deepEqual(await layout({}), ['a:0', 'b:1'], 'no locality: agent a is in zone a');
    assert.deepEqual(await layout({ locality: {} }), ['a:0', 'b:1'], 'an empty locality is no locality');
    assert.deepEqual(await layout({ locality: { region: 'r1', zone: 'b' } }), ['b:0', 'a:1']);
    assert.deepEqual(await layout({ locality: { zone: 'a' } }), ['a:0', 'b:1']);
  });

  test('eds zones - three zones for a caller in each; an empty caller zone shifts the rest up; zone scope', async () => {
    await register('c');
    await endpointsSeen(3);
    assert.deepEqual(await layout({ locality: { region: 'r1', zone: 'a' } }), ['a:0', 'b:1', 'c:1']);
    assert.deepEqual(await layout({ locality: { region: 'r1', zone: 'b' } }), ['b:0', 'a:1', 'c:1']);
    assert.deepEqual(await layout({ locality: { region: 'r1', zone: 'c' } }), ['c:0', 'a:1', 'b:1']);
    assert.deepEqual(await layout({ locality: { region: 'r1', zone: 'x' } }), ['a:0', 'b:0', 'c:0']);
    assert.deepEqual(
      await layout({ locality: { region: 'r1', zone: 'c' }, metadata: { 'meshreg.scope': 'zone' } }),
      ['c:0'],
    );
    // Scope global with no federated data center: the local data center, as datacenter scope.
    assert.deepEqual(
      await layout({ locality: { region: 'r1', zone: 'c' }, metadata: { 'meshreg.scope': 'global' } }),
      ['c:0', 'a:1', 'b:1'],
    );
    const bad = await http('POST', `${agentUrl('a')}/v3/discovery:endpoints`, {
      node: { id: 'envoy-1', metadata: { 'meshreg.scope': 'everywhere' } },
      resource_names: ['echo'],
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /node\.metadata\.meshreg\.scope/);
  });

  test('eds zones - a proxyless gRPC client in zone b stays in b, then fails over to a and c', async () => {
    process.env['GRPC_XDS_BOOTSTRAP_CONFIG'] = JSON.stringify({
      xds_servers: [{ server_uri: agents.get('a')?.addresses['xds'], channel_creds: [{ type: 'insecure' }] }],
      node: { id: 'grpc-zone-b', locality: { region: 'r1', zone: 'b' } },
    });
    const xdsClient = await import('@grpc/grpc-js-xds');
    xdsClient.register();
    client = new EchoClient('xds:///echo', grpc.credentials.createInsecure());
    const seen = await sample(30);
    assert.deepEqual([...seen.keys()], ['b'], 'every call goes to the caller zone while it is healthy');
    await http('PUT', `${agentUrl('b')}/v1/agent/service/deregister/echo-b`);
    await eventually((s) => s.size === 2 && (s.get('a') ?? 0) > 0 && (s.get('c') ?? 0) > 0);
    await register('b');
    await eventually((s) => s.size === 1 && s.has('b'));
  });
});
