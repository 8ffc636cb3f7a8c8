/**
 * `meshreg topology`: the init step of the agent's pod on Kubernetes. It reads this node's Node
 * object from the API server (RBAC `get nodes`, with the pod's service-account token and CA) and
 * writes its zone and region to `MESHREG_TOPOLOGY_FILE`, which the agent reads at start. The agent
 * itself never talks to the Kubernetes API: a restarted agent container starts from the file and its
 * disk cache even when the API server is unreachable.
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import envVar from 'env-var';
import { type Result, fail, ok } from '../proto/result.js';
import { boundedInt } from '../proto/runtime/env-bounds.js';
import type { VarDoc } from './config.js';
import type { Logger } from '../proto/runtime/log.js';
import { describe } from '../proto/validate.js';
import { decodeNodeTopology, writeTopologyFile, type Topology } from './topology.js';

/** Where Kubernetes mounts a pod's service-account token and the cluster CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A Node object is tens of KiB; an answer past this is refused rather than buffered. */
const MAX_NODE_BYTES = 4 * 1024 * 1024;
const RETRY_DELAY_MS = 500;

/** How to reach the Kubernetes API server. */
export interface KubernetesApi {
  /** `https://host:port` of the API server. */
  readonly url: string;
  /** Bearer token (the service account's). */
  readonly token: string;
  /** PEM of the CA that signed the API server's certificate. */
  readonly ca: string;
}

/** The variables only `meshreg topology` reads (with MESHREG_NODE_NAME and MESHREG_TOPOLOGY_FILE). */
export const TOPOLOGY_VARS: readonly VarDoc[] = [
  {
    name: 'MESHREG_KUBERNETES_API',
    default: '(https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)',
    doc: '`meshreg topology`: the Kubernetes API server it reads the Node object from.',
  },
  {
    name: 'MESHREG_KUBERNETES_SA_DIR',
    default: '/var/run/secrets/kubernetes.io/serviceaccount',
    doc: '`meshreg topology`: folder with the service-account `token` and `ca.crt`.',
  },
  {
    name: 'MESHREG_TOPOLOGY_TIMEOUT_MS',
    default: '30000',
    doc: '`meshreg topology`: how long it retries an unreachable API server (100..600000).',
  },
];

/** Settings of `meshreg topology`, read once from the environment. */
export interface TopologyInitConfig {
  readonly nodeName: string;
  readonly file: string;
  readonly apiUrl: string;
  readonly serviceAccountDir: string;
  readonly timeoutMs: number;
}

/** Reads the init step's settings; a missing node name or file is an error naming the variable. */
export function readTopologyInitConfig(env: NodeJS.ProcessEnv): TopologyInitConfig {
  const e = envVar.from(env);
  const nodeName = e.get('MESHREG_NODE_NAME').default('').asString();
  const file = e.get('MESHREG_TOPOLOGY_FILE').default('').asString();
  if (nodeName === '') throw new Error('MESHREG_NODE_NAME is required (the downward API spec.nodeName)');
  if (file === '') throw new Error('MESHREG_TOPOLOGY_FILE is required: where to write the topology');
  const host = e.get('KUBERNETES_SERVICE_HOST').default('').asString();
  const port = e.get('KUBERNETES_SERVICE_PORT').default('443').asString();
  // An IPv6 service host needs brackets in a URL.
  const derived = host === '' ? '' : `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const apiUrl = e.get('MESHREG_KUBERNETES_API').default(derived).asString();
  if (apiUrl === '') throw new Error('MESHREG_KUBERNETES_API is required outside a pod');
  if (!URL.canParse(apiUrl) || new URL(apiUrl).protocol !== 'https:')
    throw new Error(`MESHREG_KUBERNETES_API: ${JSON.stringify(apiUrl)} is not an https:// URL`);
  return Object.freeze({
    nodeName,
    file,
    apiUrl,
    serviceAccountDir: e.get('MESHREG_KUBERNETES_SA_DIR').default(SERVICE_ACCOUNT_DIR).asString(),
    timeoutMs: boundedInt(env, 'MESHREG_TOPOLOGY_TIMEOUT_MS', 30_000, 100, 600_000),
  });
}

/**
 * Reads Node `nodeName` and returns its topology labels. Expected failures are values: 401/403
 * `forbidden` (RBAC), 404 `not_found`, anything else (network, 5xx, a bad body) `unavailable`.
 */
export function fetchNodeTopology(
  api: KubernetesApi,
  nodeName: string,
  timeoutMs: number,
): Promise<Result<Topology>> {
  const url = new URL(`/api/v1/nodes/${encodeURIComponent(nodeName)}`, api.url);
  return new Promise((resolve) => {
    const req = https.get(
      url,
      {
        ca: api.ca,
        headers: { authorization: `Bearer ${api.token}`, accept: 'application/json' },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_NODE_BYTES)
            req.destroy(new Error(`Node object over ${String(MAX_NODE_BYTES)} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          resolve(nodeAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), nodeName));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${String(timeoutMs)} ms`)));
    req.on('error', (err) => {
      resolve(fail('unavailable', `Kubernetes API ${api.url}: ${err.message}`));
    });
  });
}

function nodeAnswer(status: number, text: string, nodeName: string): Result<Topology> {
  if (status === 401 || status === 403)
    return fail('forbidden', `Kubernetes API refused get node ${nodeName} (${String(status)}): check RBAC`);
  if (status === 404) return fail('not_found', `no Node named ${nodeName}`);
  if (status !== 200) return fail('unavailable', `Kubernetes API answered ${String(status)}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail('unavailable', 'Kubernetes API answered a body that is not JSON');
  }
  const decoded = decodeNodeTopology(raw);
  return decoded.ok
    ? ok(decoded.value)
    : fail('unavailable', `Node ${nodeName}: ${describe(decoded.errors)}`);
}

/**
 * Runs the init step: retries `unavailable` until `timeoutMs` has passed (the API server may be
 * starting), stops at once on `forbidden`/`not_found` (configuration, not luck), writes the file.
 * Returns the process exit code: 0 written, 1 not.
 */
export async function runTopologyInit(config: TopologyInitConfig, logger: Logger): Promise<number> {
  const api: KubernetesApi = {
    url: config.apiUrl,
    token: (await readFile(path.join(config.serviceAccountDir, 'token'), 'utf8')).trim(),
    ca: await readFile(path.join(config.serviceAccountDir, 'ca.crt'), 'utf8'),
  };
  const deadline = performance.now() + config.timeoutMs;
  for (;;) {
    const left = Math.max(1, Math.ceil(deadline - performance.now()));
    const result = await fetchNodeTopology(api, config.nodeName, left);
    if (result.ok) {
      await writeTopologyFile(config.file, result.value);
      if (result.value.zone === '') logger.warn('node has no zone label', { node: config.nodeName });
      logger.info('topology written', { file: config.file, ...result.value });
      return 0;
    }
    const retry = result.error.code === 'unavailable' && performance.now() + RETRY_DELAY_MS < deadline;
    logger[retry ? 'warn' : 'error']('cannot read the node topology', {
      code: result.error.code,
      reason: result.error.message,
    });
    if (!retry) return 1;
    await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
  }
}
