/**
 * A graceful leave (`PUT /v1/agent/leave`) with real processes: the leaving agent withdraws every
 * registration in one batch, so a watcher on another agent sees the whole host go in one change, and
 * the leaving agent's process then exits cleanly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, header } from '../support/http.js';
import type { Started } from '../support/process.js';
import { startSmallCluster, type SmallCluster } from '../support/small-cluster.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'leave-secret-token';
const INSTANCES = 300;

describe('agent leave', () => {
  let cluster: SmallCluster;
  let host: Started;
  let watcher: Started;

  before(async () => {
    cluster = await startSmallCluster(TOKEN, ['leaving-host', 'watching-host']);
    [host, watcher] = cluster.agents as [Started, Started];
  });

  after(async () => {
    await cluster?.stop();
  });

  test('agent leave - every registration goes in one change, then the process exits 0', async () => {
    const a = host.addresses['agent'] ?? '';
    const b = watcher.addresses['agent'] ?? '';
    for (let i = 0; i < INSTANCES; i++) {
      const r = await http('PUT', `${a}/v1/agent/service/register`, {
        Name: 'leaving',
        ID: `l-${i}`,
        Port: 9000 + i,
      });
      assert.equal(r.status, 200);
    }
    let index = 0;
    await waitFor('the watcher sees every instance', async () => {
      const r = await http('GET', `${b}/v1/health/service/leaving`);
      index = Number(header(r, 'x-consul-index'));
      return (r.body as unknown[]).length === INSTANCES;
    });

    const blocking = http('GET', `${b}/v1/health/service/leaving?index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const left = await http('PUT', `${a}/v1/agent/leave`);
    assert.equal(left.status, 200);
    const seen = await blocking;
    // The first change the watcher sees is the whole host gone: no partial list on the way.
    assert.deepEqual(seen.body, []);
    assert.ok(Date.now() - started < 5_000, `gone after ${Date.now() - started} ms`);
    assert.equal(await host.exited, 0);
  });
});
