import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIVE_PATH, READY_PATH, addProbeRoutes } from '../../agent/agent-probes.js';
import { JsonRouter } from '../../proto/runtime/json-router.js';

test('agent probes - readiness is 503 until the agent says ready, liveness 200 throughout', async () => {
  let ready = false;
  const router = new JsonRouter();
  addProbeRoutes(router, { ready: () => ready });
  const states: [number, number][] = [];
  for (const next of [false, true]) {
    ready = next;
    const live = await router.handle({ method: 'GET', path: LIVE_PATH });
    const readiness = await router.handle({ method: 'GET', path: READY_PATH });
    states.push([live.status, readiness.status]);
  }
  assert.deepEqual(states, [
    [200, 503],
    [200, 200],
  ]);
  assert.deepEqual((await router.handle({ method: 'GET', path: READY_PATH })).body, { status: 'ready' });
  assert.equal((await router.handle({ method: 'PUT', path: READY_PATH })).status, 405);
});
