/**
 * Consul check definitions (a service's `Check`/`Checks`, or `PUT /v1/agent/check/register`), with
 * keys matched ignoring case and underscores. HTTP, TCP and TTL checks are supported; other kinds
 * (script, gRPC, Docker, alias) are refused by name rather than silently ignored.
 */
import { HEALTH_STATES, type Health } from '../../proto/instance.js';
import {
  Issues,
  at,
  isRecord,
  readBool,
  readInt,
  readOneOf,
  readString,
  setOwn,
} from '../../proto/validate.js';
import { ADDRESSABLE_ID, ADDRESSABLE_ID_HINT, foldKeys } from '../consul/consul-fields.js';
import { boundedDurationMs, type DurationBounds } from '../consul/duration.js';

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

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/**
 * The bounds of each check duration (README, "Limits"). A value outside them is refused with a 400
 * naming the field, so no definition can hand a timer a delay it would overflow (Node fires those at
 * once: a busy loop) or one that never ends. Inside them, Consul's rules apply: shorter intervals are
 * raised to `minIntervalMs`, a zero Timeout means the default.
 */
export const CHECK_DURATION_BOUNDS: Readonly<
  Record<'interval' | 'timeout' | 'ttl' | 'deregister', DurationBounds>
> = Object.freeze({
  interval: { minMs: 0, maxMs: DAY_MS },
  timeout: { minMs: 0, maxMs: 10 * MINUTE_MS },
  ttl: { minMs: 1, maxMs: 7 * DAY_MS },
  // Compared with elapsed time by the reaper, never handed to a timer.
  deregister: { minMs: 0, maxMs: 30 * DAY_MS },
});

/** A probe's timeout when the definition gives none (Consul's default). */
const DEFAULT_TIMEOUT_MS = 10_000;

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
  const dur = (key: string, label: string, bounds: DurationBounds): number | undefined => {
    const v = f.get(key);
    if (v === undefined || v === null || v === '') return undefined;
    const ms = boundedDurationMs(v, bounds);
    if (typeof ms === 'number') return ms;
    issues.add(at(path, label), ms);
    return undefined;
  };
  const serviceId =
    ctx.serviceId !== ''
      ? ctx.serviceId
      : (readString(issues, f.get('serviceid'), at(path, 'ServiceID'), { maxLength: 256 }) ?? '');
  const generated = ctx.count > 1 ? `service:${ctx.serviceId}:${ctx.index + 1}` : `service:${ctx.serviceId}`;
  const explicitId = readString(issues, f.get('checkid') ?? f.get('id'), at(path, 'CheckID'), {
    maxLength: 256,
    pattern: ADDRESSABLE_ID,
    patternHint: ADDRESSABLE_ID_HINT,
  });
  const id =
    explicitId !== undefined && explicitId !== '' ? explicitId : ctx.serviceId !== '' ? generated : undefined;
  const name = readString(issues, f.get('name'), at(path, 'Name'), { maxLength: 256 });
  if (id === undefined && (name === undefined || name === ''))
    issues.add(at(path, 'Name'), 'is required for a check without a service');
  const interval = dur('interval', 'Interval', CHECK_DURATION_BOUNDS.interval);
  const rawInterval = f.get('interval');
  if (kind !== 'ttl' && (rawInterval === undefined || rawInterval === null || rawInterval === ''))
    issues.add(at(path, 'Interval'), `is required for a ${kind.toUpperCase()} check`);
  const ttl = kind === 'ttl' ? dur('ttl', 'TTL', CHECK_DURATION_BOUNDS.ttl) : undefined;
  const timeout = dur('timeout', 'Timeout', CHECK_DURATION_BOUNDS.timeout) ?? 0;
  const deregister = dur(
    'deregistercriticalserviceafter',
    'DeregisterCriticalServiceAfter',
    CHECK_DURATION_BOUNDS.deregister,
  );
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
    timeoutMs: timeout === 0 ? DEFAULT_TIMEOUT_MS : Math.max(1, timeout),
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
        if (Array.isArray(v) && v.every((x) => typeof x === 'string')) setOwn(headers, k, v);
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
