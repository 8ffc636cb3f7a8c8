/**
 * A graceful leave (`PUT /v1/agent/leave`) with real processes: the leaving agent withdraws every
 * registration in one batch, so a watcher on another agent sees the whole host go in one change, and
 * the leaving agent's process then exits cleanly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, header } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'leave-secret-token';
const INSTANCES = 300;

describe('agent leave', () => {
  let server: Started;
  let host: Started;
  let watcher: Started;
  const cleanups: (() => Promise<unknown>)[] = [];

  before(async () => {
    server = await startMeshreg('server', { MESHREG_TOKEN: TOKEN, MESHREG_SESSION_PORT: '0' });
    const start = async (name: string): Promise<Started> => {
      const { dir, cleanup } = await tempDir();
      cleanups.push(cleanup);
      return startMeshreg('agent', {
        MESHREG_TOKEN: TOKEN,
        MESHREG_AGENT_PORT: '0',
        MESHREG_AGENT_UPSTREAM: server.addresses['session'] ?? '',
        MESHREG_NODE_NAME: name,
        MESHREG_AGENT_DATA_DIR: dir,
      });
    };
    [host, watcher] = await Promise.all([start('leaving-host'), start('watching-host')]);
  });

  after(async () => {
    await Promise.all([host?.stop(), watcher?.stop()]);
    await server?.stop();
    await Promise.all(cleanups.map((c) => c()));
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
