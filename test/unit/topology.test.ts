import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodeNodeTopology, decodeTopology, topologyFromEnv } from '../../agent/topology.js';
import { TOPOLOGY_VARS, readTopologyInitConfig } from '../../agent/topology-kubernetes.js';

test('topology - node labels become zone and region; missing labels are empty', () => {
  const node = {
    metadata: {
      name: 'n1',
      labels: { 'topology.kubernetes.io/zone': 'z1', 'topology.kubernetes.io/region': 'r1', other: 'x' },
    },
  };
  assert.deepEqual(decodeNodeTopology(node), { ok: true, value: { zone: 'z1', region: 'r1' } });
  assert.deepEqual(decodeNodeTopology({ metadata: { name: 'n2' } }), {
    ok: true,
    value: { zone: '', region: '' },
  });
});

test('topology - a malformed Node or file reports every error with its path', () => {
  const bad = decodeNodeTopology({
    metadata: { labels: { 'topology.kubernetes.io/zone': 3, 'topology.kubernetes.io/region': [] } },
  });
  assert.equal(bad.ok, false);
  assert.deepEqual(bad.ok ? [] : bad.errors.map((e) => e.path), [
    'metadata.labels.topology.kubernetes.io/zone',
    'metadata.labels.topology.kubernetes.io/region',
  ]);
  assert.deepEqual(decodeNodeTopology({}), {
    ok: false,
    errors: [{ path: 'metadata', message: 'must be an object' }],
  });
  const file = decodeTopology({ zone: 1, region: 'x'.repeat(300) });
  assert.deepEqual(file.ok ? [] : file.errors.map((e) => e.path), ['zone', 'region']);
});

test('topology - the file replaces MESHREG_ZONE and MESHREG_REGION, and both at once is refused', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshreg-topology-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'topology.json');
  await writeFile(file, '{"zone":"z9","region":"r9"}\n');
  assert.deepEqual(topologyFromEnv({ MESHREG_TOPOLOGY_FILE: file }), { zone: 'z9', region: 'r9' });
  assert.deepEqual(topologyFromEnv({ MESHREG_ZONE: 'a', MESHREG_REGION: 'b' }), { zone: 'a', region: 'b' });
  assert.throws(
    () => topologyFromEnv({ MESHREG_TOPOLOGY_FILE: file, MESHREG_ZONE: 'a' }),
    /MESHREG_TOPOLOGY_FILE conflicts with MESHREG_ZONE/,
  );
  await writeFile(file, '{"zone":');
  assert.throws(
    () => topologyFromEnv({ MESHREG_TOPOLOGY_FILE: file }),
    /MESHREG_TOPOLOGY_FILE: .* is not JSON/,
  );
  assert.throws(
    () => topologyFromEnv({ MESHREG_TOPOLOGY_FILE: path.join(dir, 'missing.json') }),
    /MESHREG_TOPOLOGY_FILE: cannot read/,
  );
});

test('topology - the init step refuses missing or unbounded settings, naming the variable', () => {
  const env = {
    MESHREG_NODE_NAME: 'n1',
    MESHREG_TOPOLOGY_FILE: '/tmp/t.json',
    MESHREG_KUBERNETES_API: 'https://10.0.0.1',
  };
  assert.equal(readTopologyInitConfig(env).timeoutMs, 30_000);
  for (const name of TOPOLOGY_VARS.filter((v) => /^\d+$/.test(v.default)).map((v) => v.name))
    for (const bad of ['99999999999', '-5'])
      assert.throws(
        () => readTopologyInitConfig({ ...env, [name]: bad }),
        new RegExp(name),
        `${name}=${bad}`,
      );
  assert.throws(
    () => readTopologyInitConfig({ ...env, MESHREG_NODE_NAME: '' }),
    /MESHREG_NODE_NAME is required/,
  );
  assert.throws(
    () => readTopologyInitConfig({ ...env, MESHREG_KUBERNETES_API: 'http://x' }),
    /not an https:\/\/ URL/,
  );
  assert.equal(
    readTopologyInitConfig({
      ...env,
      MESHREG_KUBERNETES_API: undefined,
      KUBERNETES_SERVICE_HOST: 'fd00::1',
      KUBERNETES_SERVICE_PORT: '6443',
    }).apiUrl,
    'https://[fd00::1]:6443',
  );
});
