/**
 * Renders the Kubernetes manifests with `kubectl kustomize` and turns a rendered container into the
 * command line and environment of a real local process: field references resolved as the kubelet
 * would on one test node, `$(VAR)` expanded, ports remapped to free loopback ports, and every mounted
 * volume (secret, configMap, emptyDir, hostPath) replaced by a temporary folder with the same files.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A rendered Kubernetes object, loosely typed: the test reads what it needs and checks shapes. */
export type K8sObject = Record<string, unknown> & { kind: string; metadata: { name: string } };
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
export interface Probe {
  httpGet?: { path: string; port: string | number };
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string }[];
  restartPolicy?: string;
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; secret?: object; configMap?: { name: string }; projected?: object }[];
}

/** Fails with a clear message when kubectl is missing: .ci/run installs it. */
export function requireKubectl(): void {
  const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0)
    throw new Error('kubectl is not installed: .ci/run installs it (Debian kubernetes-client) where missing');
}

/**
 * `kubectl kustomize dir`, converted to JSON without a cluster (`annotate --local` prints each object
 * as JSON; `create --dry-run` would ask a server for its API groups).
 */
export async function render(dir: string): Promise<K8sObject[]> {
  const yaml = (await run('kubectl', ['kustomize', dir], { maxBuffer: 16 * 1024 * 1024 })).stdout;
  const json = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      'kubectl',
      ['annotate', '--local', '-f', '-', '-o', 'json', 'meshreg.io/rendered=test'],
      { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, KUBECONFIG: '/dev/null' } },
      (err, stdout) => {
        if (err === null) resolve(stdout);
        else reject(new Error(`kubectl annotate --local: ${err.message}`));
      },
    );
    child.stdin?.end(yaml);
  });
  return splitJson(json) as K8sObject[];
}

/** Splits concatenated JSON values (what kubectl prints for several objects). */
export function splitJson(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && --depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
  }
  return out;
}

/** The pod template of a workload (Deployment, StatefulSet, DaemonSet), or undefined. */
export function podSpec(o: K8sObject): PodSpec | undefined {
  const spec = o['spec'] as { template?: { spec?: PodSpec } } | undefined;
  return spec?.template?.spec;
}

/** Every MESHREG_ variable a container sets, directly or through a ConfigMap in `objects`. */
export function meshregVars(c: Container, objects: readonly K8sObject[]): string[] {
  const names = (c.env ?? []).map((e) => e.name);
  for (const from of c.envFrom ?? []) {
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === from.configMapRef?.name);
    names.push(...Object.keys((cm?.['data'] as Record<string, string> | undefined) ?? {}));
  }
  return names.filter((n) => n.startsWith('MESHREG_'));
}

/** How the test stands in for one pod on one node. */
export interface PodStandIn {
  readonly podName: string;
  /** Original port → free loopback port, for listen ports and for references to other services. */
  readonly ports: ReadonlyMap<number, number>;
  /** Volume name → the temporary folder mounted in its place. */
  readonly volumes: ReadonlyMap<string, string>;
  /** Replaces host:port of a reference (a URL or endpoint list), by original port. */
  readonly hosts?: ReadonlyMap<number, string>;
}

const FIELD_VALUES: Record<string, (pod: PodStandIn) => string> = {
  'status.podIP': () => '127.0.0.1',
  'status.hostIP': () => '127.0.0.1',
  'spec.nodeName': () => 'test-node',
  'metadata.name': (pod) => pod.podName,
};

/**
 * The environment the kubelet would give container `c` in `pod`, mapped onto this machine. Values
 * from ConfigMaps come first and `env` entries override them, as in Kubernetes.
 */
export function containerEnv(
  c: Container,
  objects: readonly K8sObject[],
  pod: PodStandIn,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === from.configMapRef?.name);
    Object.assign(env, (cm?.['data'] as Record<string, string> | undefined) ?? {});
  }
  for (const e of c.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (field !== undefined) {
      const value = FIELD_VALUES[field];
      if (value === undefined) throw new Error(`${c.name}: field ${field} has no stand-in`);
      env[e.name] = value(pod);
    } else env[e.name] = (e.value ?? '').replace(/\$\(([A-Za-z0-9_]+)\)/g, (m, v: string) => env[v] ?? m);
  }
  const mounts = c.volumeMounts ?? [];
  for (const [name, value] of Object.entries(env)) env[name] = mapValue(name, value, mounts, pod);
  return env;
}

function mapValue(
  name: string,
  value: string,
  mounts: readonly { name: string; mountPath: string }[],
  pod: PodStandIn,
): string {
  if (/^MESHREG_\w+_HOST$/.test(name) && value === '0.0.0.0') return '127.0.0.1';
  if (/^MESHREG_\w+_PORT$/.test(name)) return String(pod.ports.get(Number(value)) ?? value);
  let out = value.replace(/([A-Za-z0-9.-]+):(\d+)/g, (m, host: string, port: string) => {
    const mapped = pod.ports.get(Number(port));
    if (mapped === undefined) return m;
    return `${pod.hosts?.get(Number(port)) ?? (host === '0.0.0.0' ? '0.0.0.0' : '127.0.0.1')}:${String(mapped)}`;
  });
  for (const m of mounts) {
    const dir = pod.volumes.get(m.name);
    if (dir !== undefined && (out === m.mountPath || out.startsWith(m.mountPath + '/')))
      out = dir + out.slice(m.mountPath.length);
  }
  return out;
}

/**
 * Creates a folder per volume of `spec` under `root`: a secret's files are random tokens (named by
 * the file variables that point into it; the same key holds the same token in every secret, as the
 * deploy instructions create them, kept in `tokens`), a ConfigMap's are its data; others start empty.
 */
export async function volumeStandIns(
  spec: PodSpec,
  objects: readonly K8sObject[],
  root: string,
  tokens: Map<string, string>,
): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  const containers = [...(spec.initContainers ?? []), ...spec.containers];
  for (const v of spec.volumes ?? []) {
    const dir = path.join(root, v.name);
    await mkdir(dir, { recursive: true });
    dirs.set(v.name, dir);
    if (v.configMap !== undefined) {
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === v.configMap?.name);
      for (const [k, text] of Object.entries((cm?.['data'] as Record<string, string> | undefined) ?? {}))
        await writeFile(path.join(dir, k), text);
    }
    if (v.secret === undefined) continue;
    for (const c of containers) {
      const mount = c.volumeMounts?.find((m) => m.name === v.name);
      if (mount === undefined) continue;
      for (const e of c.env ?? []) {
        if (!e.name.endsWith('_FILE') || e.value?.startsWith(mount.mountPath + '/') !== true) continue;
        const key = e.value.slice(mount.mountPath.length + 1);
        const token = tokens.get(key) ?? randomBytes(24).toString('hex');
        tokens.set(key, token);
        await writeFile(path.join(dir, key), token);
      }
    }
  }
  return dirs;
}

/** The port a probe calls: a named container port or a number. */
export function probePort(c: Container, probe: Probe): number {
  const port = probe.httpGet?.port;
  if (typeof port === 'number') return port;
  const found = c.ports?.find((p) => p.name === port)?.containerPort;
  if (found === undefined) throw new Error(`${c.name}: probe port ${String(port)} is not a container port`);
  return found;
}
