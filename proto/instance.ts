/**
 * The unit of registration: one instance of a service on one node (agent), with its health.
 * This is what travels agent → session → data, and back out in pushes.
 */
import {
  Issues,
  at,
  readArray,
  readBool,
  readInt,
  readObject,
  readOneOf,
  readString,
  readStringMap,
  type Decoded,
} from './validate.js';

export const HEALTH_STATES = ['passing', 'warning', 'critical'] as const;
export type Health = (typeof HEALTH_STATES)[number];

/** A health check's latest result as subscribers see it (Consul's `Checks[]` entry). */
export interface CheckState {
  readonly id: string;
  readonly name: string;
  readonly status: Health;
  readonly output: string;
  /** `http`, `tcp`, `ttl`, or `` for checks with no runner. */
  readonly type: string;
}

export interface Weights {
  readonly passing: number;
  readonly warning: number;
}

/** One registered service instance. Immutable once built; a change is a new object. */
export interface Instance {
  /** Service ID, unique on its node (Consul `ID`). */
  readonly id: string;
  /** Service name: the key subscribers watch (Consul `Service`/`Name`). */
  readonly service: string;
  /** Node ID of the agent that owns it (stable across agent restarts). */
  readonly nodeId: string;
  /** Node name of that agent (Consul `Node`). */
  readonly node: string;
  readonly nodeAddress: string;
  /** Service address; empty means "use nodeAddress" (Consul's rule). */
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  readonly weights: Weights;
  /** The worst of its checks' statuses; `passing` when it has none. */
  readonly health: Health;
  readonly checks: readonly CheckState[];
  /** Locality, used by EDS; empty when unknown. */
  readonly zone: string;
  readonly region: string;
  /**
   * Deregistered and draining: still listed for a drain period so proxies can finish in-flight
   * requests (EDS shows it DRAINING); it carries a critical check, so it is out of every `?passing` list.
   */
  readonly draining?: true;
}

/** The registry-wide identity of an instance: its node and its service ID. */
export function registrationId(instance: Pick<Instance, 'nodeId' | 'id'>): string {
  return `${instance.nodeId}/${instance.id}`;
}

/** Limits that keep one instance record small; the HTTP layer enforces the same ones. */
export const INSTANCE_LIMITS = Object.freeze({
  maxIdLength: 256,
  maxNameLength: 256,
  maxTags: 64,
  maxTagLength: 256,
  maxMetaEntries: 64,
  maxChecks: 32,
  maxOutputLength: 4096,
});

/** Service names: what Consul accepts in DNS-friendly form, plus `.` and `_` which it tolerates. */
export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function decodeInstance(raw: unknown, path = ''): Decoded<Instance> {
  const issues = new Issues();
  const value = readInstance(issues, raw, path);
  return issues.result(value);
}

/** Reads an instance into `issues`; used inside larger decoders. */
export function readInstance(issues: Issues, raw: unknown, path: string): Instance | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const before = issues.list.length;
  const id = readString(issues, o['id'], at(path, 'id'), {
    required: true,
    maxLength: INSTANCE_LIMITS.maxIdLength,
  });
  const service = readString(issues, o['service'], at(path, 'service'), {
    required: true,
    maxLength: INSTANCE_LIMITS.maxNameLength,
    pattern: SERVICE_NAME_PATTERN,
    patternHint: 'must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
  });
  const nodeId = readString(issues, o['nodeId'], at(path, 'nodeId'), { required: true, maxLength: 128 });
  const node = readString(issues, o['node'], at(path, 'node'), { required: true, maxLength: 256 });
  const nodeAddress = readString(issues, o['nodeAddress'], at(path, 'nodeAddress'), { maxLength: 256 }) ?? '';
  const address = readString(issues, o['address'], at(path, 'address'), { maxLength: 256 }) ?? '';
  const port = readInt(issues, o['port'], at(path, 'port'), { min: 0, max: 65535 }) ?? 0;
  const tags =
    readArray(
      issues,
      o['tags'],
      at(path, 'tags'),
      (t, p) => readString(issues, t, p, { maxLength: INSTANCE_LIMITS.maxTagLength }),
      { maxItems: INSTANCE_LIMITS.maxTags },
    ) ?? [];
  const meta =
    readStringMap(issues, o['meta'], at(path, 'meta'), { maxEntries: INSTANCE_LIMITS.maxMetaEntries }) ?? {};
  const weights = readWeights(issues, o['weights'], at(path, 'weights'));
  const health = readOneOf(issues, o['health'], at(path, 'health'), HEALTH_STATES) ?? 'passing';
  const checks =
    readArray(issues, o['checks'], at(path, 'checks'), (c, p) => readCheckState(issues, c, p), {
      maxItems: INSTANCE_LIMITS.maxChecks,
    }) ?? [];
  const zone = readString(issues, o['zone'], at(path, 'zone'), { maxLength: 128 }) ?? '';
  const region = readString(issues, o['region'], at(path, 'region'), { maxLength: 128 }) ?? '';
  const draining = readBool(issues, o['draining'], at(path, 'draining')) === true;
  if (issues.list.length > before || id === undefined || service === undefined) return undefined;
  if (nodeId === undefined || node === undefined) return undefined;
  return {
    id,
    service,
    nodeId,
    node,
    nodeAddress,
    address,
    port,
    tags,
    meta,
    weights,
    health,
    checks,
    zone,
    region,
    ...(draining ? { draining: true as const } : {}),
  };
}

function readWeights(issues: Issues, raw: unknown, path: string): Weights {
  if (raw === undefined || raw === null) return { passing: 1, warning: 1 };
  const o = readObject(issues, raw, path);
  if (o === undefined) return { passing: 1, warning: 1 };
  const passing = readInt(issues, o['passing'], at(path, 'passing'), { min: 0, max: 65535 }) ?? 1;
  const warning = readInt(issues, o['warning'], at(path, 'warning'), { min: 0, max: 65535 }) ?? 1;
  return { passing, warning };
}

function readCheckState(issues: Issues, raw: unknown, path: string): CheckState | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const id = readString(issues, o['id'], at(path, 'id'), { required: true, maxLength: 256 });
  const name = readString(issues, o['name'], at(path, 'name'), { maxLength: 256 }) ?? '';
  const status = readOneOf(issues, o['status'], at(path, 'status'), HEALTH_STATES, true);
  const output =
    readString(issues, o['output'], at(path, 'output'), { maxLength: INSTANCE_LIMITS.maxOutputLength }) ?? '';
  const type = readString(issues, o['type'], at(path, 'type'), { maxLength: 32 }) ?? '';
  if (id === undefined || status === undefined) return undefined;
  return { id, name, status, output, type };
}

/** The worst status among checks (critical > warning > passing); `passing` with no checks. */
export function worstHealth(checks: readonly Pick<CheckState, 'status'>[]): Health {
  let worst: Health = 'passing';
  for (const c of checks) {
    if (c.status === 'critical') return 'critical';
    if (c.status === 'warning') worst = 'warning';
  }
  return worst;
}
