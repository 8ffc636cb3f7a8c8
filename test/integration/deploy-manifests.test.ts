/**
 * The deploy files stay true to the code: every kustomization renders (`kubectl kustomize`), every
 * MESHREG_ variable the manifests set exists in the configuration tables, the image's entry point
 * and CMD start each role, and each role started as a real process with its manifest's environment
 * (ports remapped to free loopback ports, volumes to temporary folders) answers its probes with 200:
 * the agent's readiness too while no control plane is reachable.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AGENT_VARS } from '../../agent/config.js';
import { CONTROL_PLANE_VARS } from '../../control-plane/config.js';
import { startEtcd } from '../support/etcd.js';
import { startFakeKubeApi } from '../support/fake-kube-api.js';
import { http } from '../support/http.js';
import {
  containerEnv,
  meshregVars,
  podSpec,
  probePort,
  render,
  requireKubectl,
  volumeStandIns,
  type Container,
  type K8sObject,
} from '../support/manifests.js';
import { freePort } from '../support/ports.js';
import { tempDir } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const KUSTOMIZE_ROOT = path.join(ROOT, 'deploy/kubernetes');
const KNOWN = new Set([...CONTROL_PLANE_VARS, ...AGENT_VARS].map((v) => v.name));
async function kustomizations(dir = KUSTOMIZE_ROOT): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const sub = path.join(dir, e.name);
    if (await stat(path.join(sub, 'kustomization.yaml')).catch(() => undefined)) out.push(sub);
    out.push(...(await kustomizations(sub)));
  }
  return out.sort();
}

/** ENTRYPOINT, CMD and ENV of the Containerfile's last stage (exec form only). */
async function imageCommand(): Promise<{ entrypoint: string[]; cmd: string[]; env: Record<string, string> }> {
  const text = await readFile(path.join(ROOT, 'deploy/Containerfile'), 'utf8');
  const last = text.slice(text.lastIndexOf('\nFROM '));
  const exec = (word: string): string[] => {
    const m = new RegExp(`^${word} (\\[.*\\])$`, 'm').exec(last);
    assert.ok(m?.[1] !== undefined, `${word} in exec form`);
    return JSON.parse(m[1]) as string[];
  };
  const env: Record<string, string> = {};
  for (const m of last.replace(/\\\n\s*/g, ' ').matchAll(/^ENV (.+)$/gm))
    for (const kv of (m[1] ?? '').trim().split(/\s+/))
      env[kv.split('=')[0] ?? ''] = kv.slice(kv.indexOf('=') + 1);
  return { entrypoint: exec('ENTRYPOINT'), cmd: exec('CMD'), env };
}

/** Runs the image's command line with `args` (the container's, else CMD) as a real process. */
async function startAsImage(
  t: { after: (fn: () => unknown) => void },
  args: readonly string[] | undefined,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; logs: () => string }> {
  const image = await imageCommand();
  assert.equal(image.entrypoint[0], 'node');
  const child = spawn(process.execPath, [...image.entrypoint.slice(1), ...(args ?? image.cmd)], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...image.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let logs = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (logs += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  return { child, logs: () => logs };
}

test('deploy - every kustomization renders with kubectl kustomize', async () => {
  requireKubectl();
  const dirs = await kustomizations();
  assert.ok(dirs.length >= 6, `found ${dirs.map((d) => path.relative(ROOT, d)).join(', ')}`);
  for (const dir of dirs) {
    const objects = await render(dir);
    assert.ok(objects.length > 0, `${dir} renders objects`);
  }
  const cluster = await render(path.join(KUSTOMIZE_ROOT, 'cluster'));
  const kinds = (kind: string): string[] =>
    cluster
      .filter((o) => o.kind === kind)
      .map((o) => o.metadata.name)
      .sort();
  assert.deepEqual(kinds('DaemonSet'), ['meshreg-agent']);
  assert.deepEqual(kinds('StatefulSet'), ['meshreg-data', 'meshreg-etcd', 'meshreg-meta']);
  assert.deepEqual(kinds('Deployment'), ['meshreg-session']);
  assert.deepEqual(kinds('PodDisruptionBudget'), [
    'meshreg-data',
    'meshreg-etcd',
    'meshreg-meta',
    'meshreg-session',
  ]);
  assert.ok(kinds('NetworkPolicy').includes('meshreg-session'));
  const local = cluster.find((o) => o.kind === 'Service' && o.metadata.name === 'meshreg-agent');
  assert.equal((local?.['spec'] as { internalTrafficPolicy?: string }).internalTrafficPolicy, 'Local');
  const session = cluster.find((o) => o.kind === 'Service' && o.metadata.name === 'meshreg-session');
  assert.equal((session?.['spec'] as { clusterIP?: string }).clusterIP, 'None', 'headless');
  const sidecar = (await render(path.join(KUSTOMIZE_ROOT, 'sidecar'))).find((o) => o.kind === 'Deployment');
  const init = sidecar === undefined ? undefined : podSpec(sidecar)?.initContainers?.[0];
  assert.equal(init?.restartPolicy, 'Always', 'the agent is a native sidecar');
});

test('deploy - every MESHREG_ variable the manifests set exists in the configuration', async () => {
  requireKubectl();
  const unknown = new Set<string>();
  for (const dir of await kustomizations()) {
    const objects = await render(dir);
    for (const o of objects) {
      const spec = podSpec(o);
      for (const c of [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]) {
        for (const name of meshregVars(c, objects)) {
          if (KNOWN.has(name)) continue;
          unknown.add(`${name} (${path.basename(dir)}/${o.metadata.name})`);
        }
        for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe])
          if (probe?.httpGet !== undefined) probePort(c, probe);
      }
    }
  }
  assert.deepEqual([...unknown], []);
});

test('deploy - the Containerfile is one non-root production image whose entry point is node', async (t) => {
  const text = await readFile(path.join(ROOT, 'deploy/Containerfile'), 'utf8');
  assert.ok((text.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
  assert.match(text, /npm ci --omit=dev/);
  assert.match(text, /^USER [1-9]\d*:\d+$/m, 'a numeric, non-root user');
  const image = await imageCommand();
  assert.deepEqual(image.entrypoint, ['node', 'dist/bin/meshreg.js']);
  assert.deepEqual(image.cmd, ['agent']);
  assert.equal(image.env['NODE_ENV'], 'production');
  const help = spawnSync(process.execPath, [...image.entrypoint.slice(1), '--help'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /topology/);
  // Building needs an engine and the base image; this machine may have neither.
  const builder = ['podman', 'buildah', 'docker'].find((b) => {
    const r = spawnSync(b, b === 'docker' ? ['info'] : ['--version'], { stdio: 'ignore' });
    return r.error === undefined && r.status === 0;
  });
  const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1] ?? '';
  const haveBase =
    builder !== undefined &&
    spawnSync(builder, builder === 'buildah' ? ['inspect', base] : ['image', 'inspect', base], {
      stdio: 'ignore',
    }).status === 0;
  if (builder === undefined || !haveBase) {
    t.diagnostic(
      builder === undefined
        ? 'no image builder runs here (no podman, no buildah, no docker daemon): the image build step is not run'
        : `${builder} has no ${base} locally: the image build step is not run`,
    );
    return;
  }
  const tag = `meshreg-test:${String(process.pid)}`;
  const build = spawnSync(
    builder,
    [builder === 'buildah' ? 'bud' : 'build', '-f', 'deploy/Containerfile', '-t', tag, '.'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  assert.equal(build.status, 0, build.stderr);
  const runner = builder === 'buildah' ? 'podman' : builder;
  const ran = spawnSync(runner, ['run', '--rm', '--read-only', tag, '--help'], { encoding: 'utf8' });
  assert.equal(ran.status, 0, ran.stderr);
  assert.match(ran.stdout, /meshreg/);
});

interface StandIn {
  readonly podName: string;
  readonly ports: Map<number, number>;
  readonly volumes: ReadonlyMap<string, string>;
}

/** Every httpGet probe of `c` answers 200 on the stand-in's port (within `timeoutMs`). */
async function probesAnswer(c: Container, pod: StandIn, timeoutMs = 30_000): Promise<string[]> {
  const seen: string[] = [];
  for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
    if (probe?.httpGet === undefined) continue;
    const port = pod.ports.get(probePort(c, probe));
    assert.ok(port !== undefined, `${pod.podName}: probe port is remapped`);
    const url = `http://127.0.0.1:${String(port)}${probe.httpGet.path}`;
    await waitFor(
      `${pod.podName} ${probe.httpGet.path} 200`,
      async () => (await http('GET', url)).status === 200,
      timeoutMs,
    );
    seen.push(probe.httpGet.path);
  }
  return seen;
}

function workload(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o !== undefined, `${kind} ${name} rendered`);
  return o;
}

function container(o: K8sObject, name: string, init = false): Container {
  const spec = podSpec(o);
  const c = (init ? spec?.initContainers : spec?.containers)?.find((x) => x.name === name);
  assert.ok(c !== undefined, `${o.metadata.name}: container ${name}`);
  return c;
}

function upstreamConnected(body: unknown): boolean | undefined {
  return (body as { Meshreg?: { Upstream?: { connected?: boolean } } }).Meshreg?.Upstream?.connected;
}

test('deploy - each role starts from its manifest and answers its probes', async (t) => {
  requireKubectl();
  const objects = await render(path.join(KUSTOMIZE_ROOT, 'cluster'));
  const { dir, cleanup } = await tempDir('meshreg-deploy-');
  t.after(cleanup);
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  // One stand-in address per control-plane port, shared by every reference (service names too).
  const shared: [number, number][] = [
    [9600, await freePort()],
    [9610, await freePort()],
    [9620, await freePort()],
    [2379, Number(new URL(etcd.endpoint).port)],
  ];
  const tokens = new Map<string, string>();
  const standIn = async (o: K8sObject, podName: string, sources = objects): Promise<StandIn> => {
    const spec = podSpec(o);
    assert.ok(spec !== undefined);
    const ports = new Map(shared);
    for (const p of [8500, 8502]) ports.set(p, await freePort());
    return { podName, ports, volumes: await volumeStandIns(spec, sources, path.join(dir, podName), tokens) };
  };
  const start = async (c: Container, pod: StandIn, sources = objects, extra: Record<string, string> = {}) =>
    startAsImage(t, c.args, { ...containerEnv(c, sources, pod), ...extra });

  // The agent first, with no control plane anywhere: its init step, then the agent itself.
  const daemonSet = workload(objects, 'DaemonSet', 'meshreg-agent');
  const agentPod = await standIn(daemonSet, 'meshreg-agent-x1');
  const api = await startFakeKubeApi(path.join(dir, 'meshreg-agent-x1'), {
    nodes: {
      'test-node': { 'topology.kubernetes.io/zone': 'zone-b', 'topology.kubernetes.io/region': 'r2' },
    },
  });
  t.after(() => api.close());
  assert.ok(container(daemonSet, 'data-dir', true).command !== undefined, 'the chown step is not meshreg');
  const init = await start(container(daemonSet, 'topology', true), agentPod, objects, {
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(api.port),
    MESHREG_KUBERNETES_SA_DIR: api.serviceAccountDir,
  });
  const initCode = await new Promise((resolve) => init.child.once('exit', resolve));
  assert.equal(initCode, 0, init.logs());
  const agentContainer = container(daemonSet, 'agent');
  const agent = await start(agentContainer, agentPod);
  const agentProbes = await probesAnswer(agentContainer, agentPod).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${agent.logs()}`);
  });
  assert.deepEqual(agentProbes, ['/v1/meshreg/ready', '/v1/meshreg/ready', '/v1/meshreg/live']);
  const agentUrl = `http://127.0.0.1:${String(agentPod.ports.get(8500))}`;
  const offline = await http('GET', `${agentUrl}/v1/agent/self`);
  assert.equal(upstreamConnected(offline.body), false, 'ready while the control plane is unreachable');
  assert.equal((offline.body as { Meshreg?: { Zone?: string } }).Meshreg?.Zone, 'zone-b');

  // The control plane, each role from its own workload.
  const roles: [string, string, string, string][] = [
    ['StatefulSet', 'meshreg-meta', 'meta', 'meshreg-meta-0'],
    ['StatefulSet', 'meshreg-data', 'data', 'meshreg-data-0'],
    ['Deployment', 'meshreg-session', 'session', 'meshreg-session-7d9f-x2'],
  ];
  for (const [kind, name, containerName, podName] of roles) {
    const o = workload(objects, kind, name);
    const c = container(o, containerName);
    const pod = await standIn(o, podName);
    const role = await start(c, pod);
    const seen = await probesAnswer(c, pod).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${role.logs()}`);
    });
    assert.deepEqual(seen, ['/health', '/live'], name);
  }
  // The agent finds a session through the headless name it was given.
  await waitFor(
    'agent connected',
    async () => upstreamConnected((await http('GET', `${agentUrl}/v1/agent/self`)).body),
    20_000,
  );

  // The sidecar example: registers its app from the service-definition volume.
  const sidecarObjects = await render(path.join(KUSTOMIZE_ROOT, 'sidecar'));
  const app = workload(sidecarObjects, 'Deployment', 'web');
  const sidecar = container(app, 'meshreg-agent', true);
  const sidecarPod = await standIn(app, 'web-5c7d-x3', sidecarObjects);
  const sidecarProcess = await start(sidecar, sidecarPod, sidecarObjects);
  await probesAnswer(sidecar, sidecarPod).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${sidecarProcess.logs()}`);
  });
  const services = await waitFor(
    'web registered from the file',
    async () => {
      const res = await http(
        'GET',
        `http://127.0.0.1:${String(sidecarPod.ports.get(8500))}/v1/agent/services`,
      );
      return (
        Object.values(res.body as Record<string, { Service: string }>).some((s) => s.Service === 'web') && res
      );
    },
    10_000,
  );
  assert.equal(services.status, 200);
});
