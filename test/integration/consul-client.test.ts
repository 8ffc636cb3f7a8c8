/**
 * The unmodified npm `consul` client (2.x) against two meshreg agents: register with an HTTP and a
 * TTL check, pass the TTL, read healthy instances and the catalog, and watch a deregistration made
 * on the other agent arrive promptly.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Consul from 'consul';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'consul-client-token';

describe('consul client', () => {
  let dev: Started;
  let other: Started;
  let a: Consul;
  let b: Consul;
  let app: http.Server;
  let appPort = 0;
  const cleanups: (() => Promise<void>)[] = [];

  const client = (s: Started): Consul =>
    new Consul({ host: '127.0.0.1', port: Number(new URL(s.addresses['agent'] ?? '').port) });

  before(async () => {
    app = http.createServer((_req, res) => res.writeHead(200).end('ok'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    appPort = (app.address() as AddressInfo).port;
    const d1 = await tempDir();
    const d2 = await tempDir();
    cleanups.push(d1.cleanup, d2.cleanup);
    dev = await startMeshreg('dev', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_AGENT_DATA_DIR: d1.dir,
      MESHREG_CHECK_MIN_INTERVAL_MS: '100',
    });
    other = await startMeshreg('agent', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_AGENT_UPSTREAM: dev.addresses['session'] ?? '',
      MESHREG_NODE_NAME: 'b',
      MESHREG_AGENT_DATA_DIR: d2.dir,
    });
    a = client(dev);
    b = client(other);
  });

  after(async () => {
    await Promise.all([dev.stop(), other.stop()]);
    app.close();
    await Promise.all(cleanups.map((c) => c()));
  });

  test('consul client - register with HTTP and TTL checks, pass the TTL, read healthy instances', async () => {
    await a.agent.service.register({
      name: 'web',
      id: 'web-1',
      address: '127.0.0.1',
      port: appPort,
      tags: ['v1'],
      // The client's typings want one check shape per array; the API takes a mix.
      checks: [{ http: `http://127.0.0.1:${appPort}/health`, interval: '100ms' }, { ttl: '30s' }] as never,
    });
    const services = (await a.agent.service.list()) as Record<string, { Service: string; Port: number }>;
    assert.equal(services['web-1']?.Port, appPort);
    const checks = (await a.agent.check.list()) as Record<string, { Status: string }>;
    assert.deepEqual(Object.keys(checks).sort(), ['service:web-1:1', 'service:web-1:2']);
    // The TTL check holds the instance out of ?passing until it is passed.
    await waitFor(
      'http check passing',
      async () =>
        ((await a.agent.check.list()) as Record<string, { Status: string }>)['service:web-1:1']?.Status ===
        'passing',
    );
    assert.deepEqual(await b.health.service({ service: 'web', passing: true }), []);
    await a.agent.check.pass({ id: 'service:web-1:2', note: 'warmed up' });
    await waitFor(
      'healthy at B',
      async () => ((await b.health.service({ service: 'web', passing: true })) as unknown[]).length === 1,
    );
    const nodes = (await b.catalog.service.nodes({ service: 'web', tag: 'v1' })) as {
      ServiceID: string;
      ServicePort: number;
    }[];
    assert.deepEqual(
      nodes.map((n) => [n.ServiceID, n.ServicePort]),
      [['web-1', appPort]],
    );
    const catalog = (await b.catalog.services()) as Record<string, string[]>;
    assert.deepEqual(catalog['web'], ['v1']);
    assert.equal(typeof (await b.status.leader()), 'string');
  });

  test('consul client - a watch at B sees a deregistration at A promptly', async () => {
    const watch = b.watch({
      method: b.health.service.bind(b.health),
      options: { service: 'web', wait: '30s' },
    });
    const changes: unknown[][] = [];
    watch.on('change', (data: unknown[]) => changes.push(data));
    watch.on('error', () => undefined);
    try {
      await waitFor('watch has the instance', () => changes.at(-1)?.length === 1);
      const started = Date.now();
      await a.agent.service.deregister('web-1');
      await waitFor('watch saw it leave', () => changes.at(-1)?.length === 0, 3000);
      assert.ok(Date.now() - started < 2000, `seen after ${Date.now() - started} ms`);
    } finally {
      watch.end();
    }
  });
});
