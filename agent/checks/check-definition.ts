/**
 * Consul check definitions (a service's `Check`/`Checks`, or `PUT /v1/agent/check/register`), with
 * keys matched ignoring case and underscores. HTTP, TCP and TTL checks are supported; other kinds
 * (script, gRPC, Docker, alias) are refused by name rather than silently ignored.
 */
import { HEALTH_STATES, type Health } from '../../proto/instance.js';
import { Issues, at, isRecord, readBool, readInt, readOneOf, readString } from '../../proto/validate.js';
import { foldKeys } from '../http/consul-fields.js';
import { durationFieldMs } from './duration.js';

export type CheckKind = 'http' | 'tcp' | 'ttl';

export interface HttpTarget {
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly body: string;
  readonly tlsSkipVerify: boolean;
  readonly disableRedirects: boolean;
}

export interface CheckDefinition {
  readonly id: string;
  readonly name: string;
  readonly notes: string;
  /** '' for a node-level check (it counts for every service of the node). */
  readonly serviceId: string;
  readonly kind: CheckKind;
  readonly http?: HttpTarget;
  readonly tcp?: string;
  readonly ttlMs?: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly initialStatus: Health;
  readonly successBeforePassing: number;
  readonly failuresBeforeWarning: number;
  readonly failuresBeforeCritical: number;
  /** Deregister the service after this long critical; undefined = never. */
  readonly deregisterAfterMs?: number;
  readonly outputMaxSize: number;
  /** The definition as sent, kept so it can be persisted and decoded again. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface CheckRules {
  /** Shorter intervals are raised to this (Consul: 1 s). */
  readonly minIntervalMs: number;
  /** Shorter DeregisterCriticalServiceAfter values are raised to this (Consul: 1 min). */
  readonly minDeregisterMs: number;
}

export interface CheckContext {
  readonly serviceId: string;
  readonly serviceName: string;
  /** Position among the service's checks, and how many it has (for generated IDs). */
  readonly index: number;
  readonly count: number;
}

const UNSUPPORTED = [
  'script',
  'args',
  'grpc',
  'dockercontainerid',
  'aliasservice',
  'aliasnode',
  'h2ping',
  'udp',
  'osservice',
];

/** Decodes one check into `issues` (paths under `path`). */
export function readCheck(
  issues: Issues,
  raw: unknown,
  path: string,
  ctx: CheckContext,
  rules: CheckRules,
): CheckDefinition | undefined {
  if (!isRecord(raw)) return issues.add(path, 'must be an object');
  const before = issues.list.length;
  const f = foldKeys(raw);
  const kinds = (['http', 'tcp', 'ttl'] as const).filter(
    (k) => f.get(k) !== undefined && f.get(k) !== null && f.get(k) !== '',
  );
  for (const k of UNSUPPORTED)
    if (f.get(k) !== undefined)
      issues.add(at(path, k), 'this check type is not supported (use HTTP, TCP or TTL)');
  if (kinds.length !== 1) return issues.add(path, 'must have exactly one of HTTP, TCP or TTL');
  const kind = kinds[0] ?? 'ttl';
  const dur = (key: string, label: string): number | undefined => {
    const v = f.get(key);
    if (v === undefined || v === null || v === '') return undefined;
    const ms = durationFieldMs(v);
    if (ms === undefined) issues.add(at(path, label), 'must be a duration like 10s');
    return ms;
  };
  const serviceId =
    ctx.serviceId !== ''
      ? ctx.serviceId
      : (readString(issues, f.get('serviceid'), at(path, 'ServiceID'), { maxLength: 256 }) ?? '');
  const generated = ctx.count > 1 ? `service:${ctx.serviceId}:${ctx.index + 1}` : `service:${ctx.serviceId}`;
  const explicitId = readString(issues, f.get('checkid') ?? f.get('id'), at(path, 'CheckID'), {
    maxLength: 256,
  });
  const id =
    explicitId !== undefined && explicitId !== '' ? explicitId : ctx.serviceId !== '' ? generated : undefined;
  const name = readString(issues, f.get('name'), at(path, 'Name'), { maxLength: 256 });
  if (id === undefined && (name === undefined || name === ''))
    issues.add(at(path, 'Name'), 'is required for a check without a service');
  const interval = dur('interval', 'Interval');
  if (kind !== 'ttl' && interval === undefined)
    issues.add(at(path, 'Interval'), `is required for a ${kind.toUpperCase()} check`);
  const ttl = kind === 'ttl' ? dur('ttl', 'TTL') : undefined;
  const timeout = dur('timeout', 'Timeout') ?? 10_000;
  const deregister = dur('deregistercriticalserviceafter', 'DeregisterCriticalServiceAfter');
  const initialStatus =
    readOneOf(
      issues,
      f.get('status') === '' ? undefined : f.get('status'),
      at(path, 'Status'),
      HEALTH_STATES,
    ) ?? 'critical';
  const successBeforePassing =
    readInt(issues, f.get('successbeforepassing'), at(path, 'SuccessBeforePassing'), { max: 1000 }) ?? 0;
  const failuresBeforeCritical =
    readInt(issues, f.get('failuresbeforecritical'), at(path, 'FailuresBeforeCritical'), { max: 1000 }) ?? 0;
  const failuresBeforeWarning =
    readInt(issues, f.get('failuresbeforewarning'), at(path, 'FailuresBeforeWarning'), { max: 1000 }) ??
    failuresBeforeCritical;
  const outputMaxSize =
    readInt(issues, f.get('outputmaxsize'), at(path, 'OutputMaxSize'), { min: 1, max: 1 << 20 }) ?? 4096;
  const notes = readString(issues, f.get('notes'), at(path, 'Notes'), { maxLength: 4096 }) ?? '';
  const http = kind === 'http' ? readHttp(issues, f, path) : undefined;
  const tcp =
    kind === 'tcp'
      ? readString(issues, f.get('tcp'), at(path, 'TCP'), {
          maxLength: 512,
          pattern: /^.+:\d+$/,
          patternHint: 'must be host:port',
        })
      : undefined;
  if (issues.list.length > before || (id === undefined && name === undefined)) return undefined;
  const checkId = id ?? name ?? '';
  return {
    id: checkId,
    name:
      name !== undefined && name !== ''
        ? name
        : ctx.serviceName !== ''
          ? `Service '${ctx.serviceName}' check`
          : checkId,
    notes,
    serviceId,
    kind,
    ...(http !== undefined ? { http } : {}),
    ...(tcp !== undefined ? { tcp } : {}),
    ...(ttl !== undefined ? { ttlMs: ttl } : {}),
    intervalMs: Math.max(interval ?? 0, rules.minIntervalMs),
    timeoutMs: timeout,
    initialStatus,
    successBeforePassing,
    failuresBeforeWarning,
    failuresBeforeCritical,
    ...(deregister !== undefined ? { deregisterAfterMs: Math.max(deregister, rules.minDeregisterMs) } : {}),
    outputMaxSize,
    raw,
  };
}

function readHttp(issues: Issues, f: ReadonlyMap<string, unknown>, path: string): HttpTarget | undefined {
  const url = readString(issues, f.get('http'), at(path, 'HTTP'), { required: true, maxLength: 2048 });
  if (url !== undefined) {
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:')
        issues.add(at(path, 'HTTP'), 'must be an http or https URL');
    } catch {
      issues.add(at(path, 'HTTP'), 'must be an http or https URL');
    }
  }
  const method =
    readString(issues, f.get('method'), at(path, 'Method'), {
      maxLength: 16,
      pattern: /^[A-Za-z]+$/,
      patternHint: 'must be an HTTP method',
    }) ?? 'GET';
  const headers: Record<string, string[]> = {};
  const h = f.get('header');
  if (h !== undefined && h !== null) {
    if (!isRecord(h)) issues.add(at(path, 'Header'), 'must be an object of string arrays');
    else {
      for (const [k, v] of Object.entries(h)) {
        if (Array.isArray(v) && v.every((x) => typeof x === 'string')) headers[k] = v;
        else issues.add(at(at(path, 'Header'), k), 'must be an array of strings');
      }
    }
  }
  const body = readString(issues, f.get('body'), at(path, 'Body'), { maxLength: 65536 }) ?? '';
  const tlsSkipVerify = readBool(issues, f.get('tlsskipverify'), at(path, 'TLSSkipVerify')) ?? false;
  const disableRedirects = readBool(issues, f.get('disableredirects'), at(path, 'DisableRedirects')) ?? false;
  return url === undefined
    ? undefined
    : { url, method: method.toUpperCase(), headers, body, tlsSkipVerify, disableRedirects };
}
