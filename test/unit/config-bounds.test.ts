/**
 * Every numeric setting is bounded: a value no timer or buffer could honour stops the process at
 * start with an error naming the variable, instead of turning into a busy loop or a huge allocation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGENT_VARS, readAgentConfig } from '../../agent/config.js';
import { CONTROL_PLANE_VARS, readControlPlaneConfig } from '../../control-plane/config.js';

/** Variables whose default is a plain integer. */
const numeric = (vars: readonly { name: string; default: string }[]): string[] =>
  vars.filter((v) => /^-?\d+$/.test(v.default)).map((v) => v.name);

const BASE = { MESHREG_TOKEN: 't' };

test('config bounds - every numeric agent variable refuses a value no timer or buffer can take', () => {
  // Documented in the README's table but not in AGENT_VARS (the agent's --help list).
  const more = [
    'MESHREG_AGENT_VIEW_CACHE_WRITE_MS',
    'MESHREG_AGENT_CONFIG_RELOAD_MS',
    'MESHREG_AGENT_DRAIN_MS',
    'MESHREG_CHECK_MIN_INTERVAL_MS',
    'MESHREG_CHECK_MIN_DEREGISTER_MS',
    'MESHREG_CHECK_REAP_INTERVAL_MS',
  ];
  const names = [...numeric(AGENT_VARS), ...more];
  assert.ok(names.length >= 20, names.join());
  for (const name of names) {
    for (const bad of ['99999999999', '-5'])
      assert.throws(() => readAgentConfig({ ...BASE, [name]: bad }), new RegExp(name), `${name}=${bad}`);
  }
  assert.doesNotThrow(() => readAgentConfig(BASE));
});

test('config bounds - every numeric control-plane variable refuses a value no timer or buffer can take', () => {
  const names = numeric(CONTROL_PLANE_VARS);
  assert.ok(names.length >= 20, names.join());
  for (const name of names) {
    for (const bad of ['99999999999', '-5'])
      assert.throws(
        () => readControlPlaneConfig({ ...BASE, [name]: bad }, { dev: false }),
        new RegExp(name),
        `${name}=${bad}`,
      );
  }
  assert.doesNotThrow(() => readControlPlaneConfig(BASE, { dev: false }));
});

test('config bounds - an agent frame larger than a server link could forward is refused, naming both', () => {
  assert.throws(
    () =>
      readControlPlaneConfig(
        {
          ...BASE,
          MESHREG_SESSION_MAX_FRAME_BYTES: String(16 << 20),
          MESHREG_LINK_MAX_FRAME_BYTES: String(8 << 20),
        },
        { dev: false },
      ),
    /MESHREG_SESSION_MAX_FRAME_BYTES must not exceed MESHREG_LINK_MAX_FRAME_BYTES/,
  );
});
