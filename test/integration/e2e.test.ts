/**
 * End to end with real processes: one control plane (`meshreg server`), two agents (`meshreg agent`).
 * An app registers at agent A with the unmodified npm `consul` client; a blocking query at agent B
 * sees it; a deregistration at A is pushed to B, and B's blocking query returns promptly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Consul from 'consul';
import { http, header } from '../support/http.js';
import type { Started } from '../support/process.js';
import { startSmallCluster, type SmallCluster } from '../support/small-cluster.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'e2e-secret-token';

describe('end to end', () => {
  let server: Started;
  let agentA: Started;
  let agentB: Started;
  let cluster: SmallCluster;

  before(async () => {
    cluster = await startSmallCluster(TOKEN, ['node-a', 'node-b']);
    server = cluster.server;
    [agentA, agentB] = cluster.agents as [Started, Started];
    // Past the data server's warm-up its datums get new versions once; the tests below want a quiet
    // registry, where a blocking query returns because of their own change.
    const dataHealth = (server.addresses['data'] ?? '')
      .replace('ws://', 'http://')
      .replace(/\/v1\/.*$/, '/health');
    await waitFor('data warm-up over', async () => {
      const h = (await http('GET', dataHealth)).body as { warming: boolean; migrating: number };
      return !h.warming && h.migrating === 0;
    });
    // Both agents hold their session link: a first read then waits for its first push, instead of
    // answering an empty list at once and seeing that push later as a change.
    for (const agent of [agentA, agentB]) {
      await waitFor('agent connected', async () => {
        const h = await http('GET', `${agent?.addresses['agent'] ?? ''}/v1/meshreg/health`);
        return (h.body as { status: string }).status === 'ok';
      });
    }
  });

  after(async () => {
    await cluster?.stop();
  });

  test('e2e - a registration at A reaches a blocking query at B, and its removal is pushed promptly', async () => {
    const a = agentA.addresses['agent'] ?? '';
    const b = agentB.addresses['agent'] ?? '';
    const consulA = new Consul({ host: '127.0.0.1', port: Number(new URL(a).port) });

    // B starts watching before anything exists: an empty list with a non-zero index.
    const first = await http('GET', `${b}/v1/health/service/web`);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, []);
    const index0 = Number(header(first, 'x-consul-index'));
    assert.ok(index0 >= 1, 'X-Consul-Index is non-zero');

    // A blocking query at B, then a registration at A through the real Consul client.
    const blockingStarted = Date.now();
    const blocking = http('GET', `${b}/v1/health/service/web?index=${index0}&wait=30s`);
    await new Promise((r) => setTimeout(r, 100));
    await consulA.agent.service.register({
      name: 'web',
      id: 'web-1',
      address: '127.0.0.1',
      port: 8080,
      tags: ['v1'],
      meta: { build: '42' },
    });
    const seen = await blocking;
    const seenAfterMs = Date.now() - blockingStarted;
    assert.equal(seen.status, 200);
    const entries = seen.body as {
      Node: { Node: string };
      Service: { ID: string; Port: number; Tags: string[]; Meta: Record<string, string> };
    }[];
    assert.equal(entries.length, 1);
    assert.equal(entries[0]?.Node.Node, 'node-a');
    assert.equal(entries[0]?.Service.ID, 'web-1');
    assert.equal(entries[0]?.Service.Port, 8080);
    assert.deepEqual(entries[0]?.Service.Tags, ['v1']);
    assert.deepEqual(entries[0]?.Service.Meta, { build: '42' });
    assert.ok(seenAfterMs < 3000, `blocking query returned after ${seenAfterMs} ms, not at its 30 s wait`);
    const index1 = Number(header(seen, 'x-consul-index'));
    assert.ok(index1 > index0, 'index grew');

    // The Consul client sees the same at B.
    const consulB = new Consul({ host: '127.0.0.1', port: Number(new URL(b).port) });
    const viaClient = (await consulB.health.service({ service: 'web', passing: true })) as {
      Service: { ID: string };
    }[];
    assert.deepEqual(
      viaClient.map((e) => e.Service.ID),
      ['web-1'],
    );
    const catalog = (await consulB.catalog.service.list()) as Record<string, string[]>;
    assert.deepEqual(catalog['web'], ['v1']);

    // Deregistration at A is pushed to B: the blocking query returns well before its wait.
    const removalStarted = Date.now();
    const blocking2 = http('GET', `${b}/v1/health/service/web?index=${index1}&wait=30s`);
    await new Promise((r) => setTimeout(r, 100));
    await consulA.agent.service.deregister('web-1');
    const gone = await blocking2;
    const goneAfterMs = Date.now() - removalStarted;
    assert.deepEqual(gone.body, []);
    assert.ok(goneAfterMs < 3000, `removal seen after ${goneAfterMs} ms`);
    assert.ok(Number(header(gone, 'x-consul-index')) > index1);
  });

  test('e2e - a blocking query with no change returns at its wait with the same index', async () => {
    const b = agentB.addresses['agent'] ?? '';
    const now = await http('GET', `${b}/v1/health/service/quiet`);
    const index = header(now, 'x-consul-index');
    const started = Date.now();
    const res = await http('GET', `${b}/v1/health/service/quiet?index=${index}&wait=300ms`);
    const took = Date.now() - started;
    assert.equal(res.status, 200);
    assert.equal(header(res, 'x-consul-index'), index);
    // wait + up to wait/16 jitter, plus scheduling slack.
    assert.ok(took >= 290 && took < 1500, `took ${took} ms`);
  });

  test('e2e - an agent that goes away has its instances removed after the grace period', async () => {
    const b = agentB.addresses['agent'] ?? '';
    const agentC = await cluster.addAgent('node-c');
    const c = agentC.addresses['agent'] ?? '';
    await http('PUT', `${c}/v1/agent/service/register`, { Name: 'api', ID: 'api-1', Port: 9000 });
    await waitFor(
      'api at B',
      async () => ((await http('GET', `${b}/v1/health/service/api`)).body as unknown[]).length === 1,
    );
    assert.equal(await agentC.stop('SIGKILL'), 'SIGKILL');
    const killedAt = Date.now();
    await waitFor(
      'api gone at B',
      async () => ((await http('GET', `${b}/v1/health/service/api`)).body as unknown[]).length === 0,
      5000,
    );
    const tookMs = Date.now() - killedAt;
    // Grace is 500 ms in tests; the instance must survive at least most of it, and go soon after.
    assert.ok(tookMs >= 300, `removed after ${tookMs} ms, before the grace period`);
  });
});
