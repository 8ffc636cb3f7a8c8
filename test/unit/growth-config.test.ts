/** The watch and subscription limits are read with their defaults and refused outside their bounds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGENT_VARS, readAgentConfig } from '../../agent/config.js';
import { CONTROL_PLANE_VARS, readControlPlaneConfig } from '../../control-plane/config.js';

const AGENT_ENV = { MESHREG_TOKEN: 't' };

test('growth config - agent watch limits default to 10 min and 10,000 and are documented', () => {
  const c = readAgentConfig(AGENT_ENV);
  assert.equal(c.watchIdleMs, 600_000);
  assert.equal(c.maxWatches, 10_000);
  const documented = AGENT_VARS.map((v) => v.name);
  assert.ok(documented.includes('MESHREG_AGENT_WATCH_IDLE_MS'));
  assert.ok(documented.includes('MESHREG_AGENT_MAX_WATCHES'));
});

test('growth config - agent watch limits outside their bounds are refused, naming the variable', () => {
  const bad: [string, string][] = [
    ['MESHREG_AGENT_WATCH_IDLE_MS', '99'],
    ['MESHREG_AGENT_WATCH_IDLE_MS', '86400001'],
    ['MESHREG_AGENT_MAX_WATCHES', '0'],
    ['MESHREG_AGENT_MAX_WATCHES', '1000001'],
  ];
  for (const [name, value] of bad)
    assert.throws(
      () => readAgentConfig({ ...AGENT_ENV, [name]: value }),
      new RegExp(name),
      `${name}=${value}`,
    );
  const edge = readAgentConfig({
    ...AGENT_ENV,
    MESHREG_AGENT_WATCH_IDLE_MS: '100',
    MESHREG_AGENT_MAX_WATCHES: '1000000',
  });
  assert.deepEqual([edge.watchIdleMs, edge.maxWatches], [100, 1_000_000]);
});

test('growth config - the per-agent subscription cap defaults to 10,000 within 1..1,000,000', () => {
  assert.equal(readControlPlaneConfig({}, { dev: true }).session.maxSubscriptionsPerAgent, 10_000);
  assert.ok(CONTROL_PLANE_VARS.some((v) => v.name === 'MESHREG_SESSION_MAX_SUBSCRIPTIONS_PER_AGENT'));
  for (const value of ['0', '1000001'])
    assert.throws(
      () => readControlPlaneConfig({ MESHREG_SESSION_MAX_SUBSCRIPTIONS_PER_AGENT: value }, { dev: true }),
      /MESHREG_SESSION_MAX_SUBSCRIPTIONS_PER_AGENT/,
    );
});
