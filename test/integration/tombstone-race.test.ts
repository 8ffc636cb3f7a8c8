/**
 * The tombstone race with real processes: an agent registers through session A, and the same
 * registration's publish is also on its way to the data server through another session's data
 * link (session B, played here by the session's own data-link client), delayed until after the
 * agent has deregistered through A. When it finally arrives it is refused (`superseded`): the
 * instance does not come back, watched with blocking queries for a while; a real re-registration
 * afterwards does appear.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RemoteDataClient } from '../../control-plane/session/remote-data.js';
import { DATA_LINK_PATH } from '../../proto/data-link.js';
import { registrationId, type Instance } from '../../proto/instance.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { http, header } from '../support/http.js';
import type { Started } from '../support/process.js';
import { startSmallCluster, type SmallCluster } from '../support/small-cluster.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'tombstone-race-token';
const SERVICE = 'race';
/** How long the instance is watched after the late publish: it must stay away all that time. */
const WATCH_MS = 2000;
/** The version clock's layout (proto/version.ts): ms since 2020 shifted by 12 bits. */
const versionAt = (ms: number): number => (ms - Date.UTC(2020, 0, 1)) * 4096;

describe('tombstone race', () => {
  let cluster: SmallCluster;
  let agent: Started;
  let sessionB: RemoteDataClient;

  before(async () => {
    cluster = await startSmallCluster(TOKEN, ['race-host']);
    [agent] = cluster.agents as [Started];
    const dataLink = cluster.server.addresses['data'] ?? '';
    assert.ok(dataLink.endsWith(DATA_LINK_PATH));
    sessionB = new RemoteDataClient(
      { id: 'data', url: dataLink },
      {
        sessionId: 'session-b',
        sessionUrl: 'ws://127.0.0.1:1/unused',
        token: TOKEN,
        callTimeoutMs: 5000,
        maxFrameBytes: 1 << 20,
        retry: { initialMs: 50, maxMs: 500 },
        logger: silentLogger,
        collect: () => [],
        onConnected: () => undefined,
      },
    );
    sessionB.start();
    await waitFor('session B linked to the data server', () => sessionB.connected, 10_000);
  });

  after(async () => {
    sessionB?.stop();
    await cluster?.stop();
  });

  test('tombstone race - a publish delayed past its unpublish over another session does not resurrect the instance', async () => {
    const a = agent.addresses['agent'] ?? '';
    const dataHealth = (cluster.server.addresses['data'] ?? '')
      .replace('ws://', 'http://')
      .replace(/\/v1\/.*$/, '/health');
    const list = async (): Promise<{ ids: string[]; index: number }> => {
      const r = await http('GET', `${a}/v1/health/service/${SERVICE}`);
      const ids = (r.body as { Service: { ID: string } }[]).map((e) => e.Service.ID);
      return { ids, index: Number(header(r, 'x-consul-index')) };
    };

    // The agent registers through session A; the registration's version is made after this.
    const before = Date.now();
    const reg = { Name: SERVICE, ID: 'race-1', Port: 9100 };
    assert.equal((await http('PUT', `${a}/v1/agent/service/register`, reg)).status, 200);
    await waitFor('the data server holds the instance', async () => {
      return (await sessionB.fetch(SERVICE)).instances.length === 1;
    });
    // What session B would send: the same registration, at a version no newer than the agent's.
    const instance = (await sessionB.fetch(SERVICE)).instances[0] as Instance;
    const late = { registrationId: registrationId(instance), instance, version: versionAt(before) };

    // The agent deregisters through session A; every subscriber sees the instance go.
    assert.equal((await http('PUT', `${a}/v1/agent/service/deregister/race-1`)).status, 200);
    await waitFor('the data server dropped the instance', async () => {
      return (await sessionB.fetch(SERVICE)).instances.length === 0;
    });
    const { ids: gone, index } = await waitFor('the agent sees the instance gone', async () => {
      const l = await list();
      return l.ids.length === 0 ? l : false;
    });
    assert.deepEqual(gone, []);

    // Now the delayed publish arrives over session B's link.
    const { epoch } = (await http('GET', dataHealth)).body as { epoch: number };
    const answer = await sessionB.publish('session-b:1', [late], epoch);
    assert.ok(answer.ok, 'the data link answered');
    assert.deepEqual(answer.value, ['superseded'], 'refused for good, so session B will not retry it');
    const metrics = (await http('GET', dataHealth.replace(/\/health$/, '/metrics'))).text;
    const tombstones = /^meshreg_data_tombstones\{[^}]*\} (\d+)$/m.exec(metrics)?.[1];
    assert.equal(tombstones, '1', 'the tombstone is counted');

    // Watched for a while with blocking queries: nothing comes back.
    let lastIndex = index;
    const deadline = Date.now() + WATCH_MS;
    for (let round = 0; round < 20 && Date.now() < deadline; round++) {
      const r = await http('GET', `${a}/v1/health/service/${SERVICE}?index=${lastIndex}&wait=500ms`);
      assert.deepEqual(r.body, [], 'the instance never reappears');
      lastIndex = Number(header(r, 'x-consul-index'));
    }
    assert.deepEqual((await sessionB.fetch(SERVICE)).instances, []);

    // A real re-registration is newer than the withdrawal: it appears, to a blocked watcher too.
    const watching = http('GET', `${a}/v1/health/service/${SERVICE}?index=${lastIndex}&wait=10s`);
    assert.equal((await http('PUT', `${a}/v1/agent/service/register`, reg)).status, 200);
    const seen = await watching;
    assert.deepEqual(
      (seen.body as { Service: { ID: string } }[]).map((e) => e.Service.ID),
      ['race-1'],
    );
    await waitFor('the data server holds it again', async () => {
      return (await sessionB.fetch(SERVICE)).instances.length === 1;
    });
  });
});
