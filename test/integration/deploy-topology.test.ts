/**
 * `meshreg topology`, the agent pod's init step, against a fake Kubernetes API server over HTTPS
 * (a real socket, a real certificate): it writes the node's zone and region for the agent, refuses
 * at once when RBAC says no, retries an API server that is not answering yet, and trusts only the
 * service account's CA.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { http } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { startMeshreg, tempDir } from '../support/process.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/meshreg.js');
const LABELS = { 'topology.kubernetes.io/zone': 'zone-a', 'topology.kubernetes.io/region': 'region-1' };

interface Ran {
  readonly code: number | string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `meshreg topology` as the init container would, against `api`, killed after `limitMs`. */
async function runTopology(
  api: FakeKubeApi,
  file: string,
  extra: Record<string, string> = {},
  limitMs = 15_000,
): Promise<Ran> {
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, 'topology'], {
    env: {
      PATH: process.env['PATH'] ?? '',
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(api.port),
      MESHREG_KUBERNETES_SA_DIR: api.serviceAccountDir,
      MESHREG_NODE_NAME: 'test-node',
      MESHREG_TOPOLOGY_FILE: file,
      ...extra,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const code = await new Promise<number | string>((resolve) => {
    child.once('exit', (c, s) => resolve(c ?? s ?? 'unknown'));
  });
  clearTimeout(timer);
  return { code, stderr, ms: performance.now() - started };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

test('topology - the init step writes the node labels and the agent reports them', async (t) => {
  const { dir, cleanup } = await tempDir('meshreg-topology-');
  t.after(cleanup);
  const api = await startFakeKubeApi(dir, { nodes: { 'test-node': LABELS } });
  t.after(() => api.close());
  const file = path.join(dir, 'topology.json');
  const ran = await runTopology(api, file);
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { zone: 'zone-a', region: 'region-1' });
  assert.deepEqual(api.requests, [{ path: '/api/v1/nodes/test-node', status: 200 }]);

  // No control plane is running: the agent starts from the file alone.
  const agent = await startMeshreg('agent', {
    MESHREG_TOKEN: 'topology-test',
    MESHREG_TOPOLOGY_FILE: file,
    MESHREG_AGENT_DATA_DIR: path.join(dir, 'agent'),
    MESHREG_AGENT_UPSTREAM: `127.0.0.1:${String(await freePort())}`,
  });
  t.after(() => agent.stop());
  const self = await http('GET', `${agent.addresses['agent'] ?? ''}/v1/agent/self`);
  const meshreg = (self.body as { Meshreg?: { Zone?: string; Region?: string } }).Meshreg;
  assert.deepEqual({ zone: meshreg?.Zone, region: meshreg?.Region }, { zone: 'zone-a', region: 'region-1' });
});

test('topology - a node without labels gets an empty zone, written all the same', async (t) => {
  const { dir, cleanup } = await tempDir('meshreg-topology-');
  t.after(cleanup);
  const api = await startFakeKubeApi(dir, { nodes: { 'test-node': {} } });
  t.after(() => api.close());
  const file = path.join(dir, 'topology.json');
  const ran = await runTopology(api, file);
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { zone: '', region: '' });
  assert.match(ran.stderr, /node has no zone label/);
});

test('topology - RBAC refusing get nodes stops at once without a file', async (t) => {
  const { dir, cleanup } = await tempDir('meshreg-topology-');
  t.after(cleanup);
  const api = await startFakeKubeApi(dir, { nodes: { 'test-node': LABELS }, forbid: true });
  t.after(() => api.close());
  const file = path.join(dir, 'topology.json');
  const ran = await runTopology(api, file);
  assert.equal(ran.code, 1);
  assert.match(ran.stderr, /"code":"forbidden"/);
  assert.equal(api.requests.length, 1, 'a refusal is configuration: not retried');
  assert.equal(await exists(file), false);
});

test('topology - an API server answering 503 is retried until it answers', async (t) => {
  const { dir, cleanup } = await tempDir('meshreg-topology-');
  t.after(cleanup);
  const api = await startFakeKubeApi(dir, { nodes: { 'test-node': LABELS }, failFirst: 2 });
  t.after(() => api.close());
  const file = path.join(dir, 'topology.json');
  const ran = await runTopology(api, file);
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(
    api.requests.map((r) => r.status),
    [503, 503, 200],
  );
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')) as unknown, {
    zone: 'zone-a',
    region: 'region-1',
  });
});

test('topology - a server certificate from another CA is refused within the time bound', async (t) => {
  const { dir, cleanup } = await tempDir('meshreg-topology-');
  t.after(cleanup);
  const api = await startFakeKubeApi(dir, { nodes: { 'test-node': LABELS } });
  t.after(() => api.close());
  // A CA the API server's certificate does not chain to: another fake server's own.
  const { dir: otherDir, cleanup: otherCleanup } = await tempDir('meshreg-topology-ca-');
  t.after(otherCleanup);
  const otherApi = await startFakeKubeApi(otherDir, { nodes: {} });
  t.after(() => otherApi.close());
  await copyFile(path.join(otherApi.serviceAccountDir, 'ca.crt'), path.join(api.serviceAccountDir, 'ca.crt'));
  const file = path.join(dir, 'topology.json');
  const ran = await runTopology(api, file, { MESHREG_TOPOLOGY_TIMEOUT_MS: '1500' });
  assert.equal(ran.code, 1);
  assert.match(ran.stderr, /"code":"unavailable"/);
  assert.ok(ran.ms < 10_000, `gave up after ${String(Math.round(ran.ms))} ms`);
  assert.deepEqual(api.requests, [], 'no request got through the TLS handshake');
  assert.equal(await exists(file), false);
});
