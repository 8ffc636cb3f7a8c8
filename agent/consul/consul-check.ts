/**
 * Consul check definitions (a service's `Check`/`Checks`, or `PUT /v1/agent/check/register`), with
 * keys matched ignoring case and underscores, decoded into a {@link CheckSpec} by kind. HTTP, TCP
 * and TTL checks are supported; other kinds (script, gRPC, Docker, alias) are refused by name
 * rather than silently ignored. Every problem is reported with its path; nothing throws.
 */
import { HEALTH_STATES } from '../../proto/instance.js';
import type { FieldError } from '../../proto/validate.js';
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
import type { CheckRules, CheckSpec, HttpTarget } from '../checks/check-definition.js';
import { ADDRESSABLE_ID, ADDRESSABLE_ID_HINT, foldKeys } from './consul-fields.js';
import { boundedDurationMs, type DurationBounds } from './duration.js';

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

/** Checks that run a command: never supported (Consul's script checks were remote code execution). */
const EXEC_KINDS = ['script', 'args', 'dockercontainerid', 'shell'];

const UNSUPPORTED = ['grpc', 'aliasservice', 'aliasnode', 'h2ping', 'udp', 'osservice'];

const given = (v: unknown): boolean => v !== undefined && v !== null && v !== '';

/** One check's folded keys and where its problems go. */
interface Source {
  readonly issues: Issues;
  readonly f: ReadonlyMap<string, unknown>;
  readonly path: string;
}

/** Decodes one check into `issues` (paths under `path`); `undefined` when it has a problem. */
export function readCheck(
  issues: Issues,
  raw: unknown,
  path: string,
  ctx: CheckContext,
  rules: CheckRules,
): CheckSpec | undefined {
  if (!isRecord(raw)) return issues.add(path, 'must be an object');
  const before = issues.list.length;
  const src: Source = { issues, f: foldKeys(raw), path };
  const kinds = (['http', 'tcp', 'ttl'] as const).filter((k) => given(src.f.get(k)));
  for (const k of EXEC_KINDS)
    if (src.f.get(k) !== undefined)
      issues.add(at(path, k), 'checks that run commands do not exist in meshreg (use HTTP, TCP or TTL)');
  for (const k of UNSUPPORTED)
    if (src.f.get(k) !== undefined)
      issues.add(at(path, k), 'this check type is not supported (use HTTP, TCP or TTL)');
  if (kinds.length !== 1) return issues.add(path, 'must have exactly one of HTTP, TCP or TTL');
  const kind = kinds[0] ?? 'ttl';
  const base = readBase(src, raw, ctx, rules);
  const interval = duration(src, 'interval', 'Interval', CHECK_DURATION_BOUNDS.interval);
  if (kind !== 'ttl' && !given(src.f.get('interval')))
    issues.add(at(path, 'Interval'), `is required for a ${kind.toUpperCase()} check`);
  const timeout = duration(src, 'timeout', 'Timeout', CHECK_DURATION_BOUNDS.timeout) ?? 0;
  const timing = {
    intervalMs: Math.max(interval ?? 0, rules.minIntervalMs),
    timeoutMs: timeout === 0 ? DEFAULT_TIMEOUT_MS : Math.max(1, timeout),
  };
  let spec: CheckSpec | undefined;
  if (kind === 'http') {
    const http = readHttp(src);
    if (http !== undefined && URL.canParse(http.url))
      targetAllowed(src, 'HTTP', new URL(http.url).hostname, rules);
    spec = base && http && { ...base, ...timing, kind, http };
  } else if (kind === 'tcp') {
    const tcp = readString(issues, src.f.get('tcp'), at(path, 'TCP'), {
      maxLength: 512,
      pattern: /^.+:\d+$/,
      patternHint: 'must be host:port',
    });
    if (tcp !== undefined) targetAllowed(src, 'TCP', tcp.slice(0, tcp.lastIndexOf(':')), rules);
    spec = base && tcp !== undefined ? { ...base, ...timing, kind, tcp } : undefined;
  } else {
    const ttlMs = duration(src, 'ttl', 'TTL', CHECK_DURATION_BOUNDS.ttl);
    spec = base && ttlMs !== undefined ? { ...base, kind, ttlMs } : undefined;
  }
  return issues.list.length > before ? undefined : spec;
}

/** Notes a literal target address outside `MESHREG_CHECK_ALLOW` (names are resolved later, at registration). */
function targetAllowed(src: Source, label: string, host: string, rules: CheckRules): void {
  const why = rules.net?.targets.literalRefusal(host);
  if (why !== undefined) src.issues.add(at(src.path, label), `check target refused: ${why}`);
}

/** A duration field within its bounds; `undefined` when absent or bad (the latter noted). */
function duration(src: Source, key: string, label: string, bounds: DurationBounds): number | undefined {
  const v = src.f.get(key);
  if (!given(v)) return undefined;
  const ms = boundedDurationMs(v, bounds);
  if (typeof ms === 'number') return ms;
  src.issues.add(at(src.path, label), ms);
  return undefined;
}

type Base = Omit<CheckSpec, 'kind' | 'http' | 'tcp' | 'ttlMs' | 'intervalMs' | 'timeoutMs'>;

/** The fields every kind has. */
function readBase(
  src: Source,
  raw: Readonly<Record<string, unknown>>,
  ctx: CheckContext,
  rules: CheckRules,
): Base | undefined {
  const { issues, f, path } = src;
  const serviceId =
    ctx.serviceId !== ''
      ? ctx.serviceId
      : (readString(issues, f.get('serviceid'), at(path, 'ServiceID'), { maxLength: 256 }) ?? '');
  const identity = readIdentity(src, ctx);
  const deregister = duration(
    src,
    'deregistercriticalserviceafter',
    'DeregisterCriticalServiceAfter',
    CHECK_DURATION_BOUNDS.deregister,
  );
  const fields = {
    notes: readString(issues, f.get('notes'), at(path, 'Notes'), { maxLength: 4096 }) ?? '',
    serviceId,
    initialStatus:
      readOneOf(
        issues,
        f.get('status') === '' ? undefined : f.get('status'),
        at(path, 'Status'),
        HEALTH_STATES,
      ) ?? 'critical',
    ...readThresholds(src),
    ...(deregister !== undefined ? { deregisterAfterMs: Math.max(deregister, rules.minDeregisterMs) } : {}),
    outputMaxSize:
      readInt(issues, f.get('outputmaxsize'), at(path, 'OutputMaxSize'), { min: 1, max: 1 << 20 }) ?? 4096,
    raw,
  };
  return identity === undefined ? undefined : { ...identity, ...fields };
}

/** The check's ID (given, or generated from its service) and display name. */
function readIdentity(
  { issues, f, path }: Source,
  ctx: CheckContext,
): { id: string; name: string } | undefined {
  const generated = ctx.count > 1 ? `service:${ctx.serviceId}:${ctx.index + 1}` : `service:${ctx.serviceId}`;
  const explicitId = readString(issues, f.get('checkid') ?? f.get('id'), at(path, 'CheckID'), {
    maxLength: 256,
    pattern: ADDRESSABLE_ID,
    patternHint: ADDRESSABLE_ID_HINT,
  });
  const id =
    explicitId !== undefined && explicitId !== '' ? explicitId : ctx.serviceId !== '' ? generated : undefined;
  const name = readString(issues, f.get('name'), at(path, 'Name'), { maxLength: 256 });
  const checkId = id ?? name;
  if (checkId === undefined || checkId === '') {
    issues.add(at(path, 'Name'), 'is required for a check without a service');
    return undefined;
  }
  if (name !== undefined && name !== '') return { id: checkId, name };
  return { id: checkId, name: ctx.serviceName !== '' ? `Service '${ctx.serviceName}' check` : checkId };
}

/** Consul's flap-damping thresholds; FailuresBeforeWarning defaults to FailuresBeforeCritical. */
function readThresholds({
  issues,
  f,
  path,
}: Source): Pick<Base, 'successBeforePassing' | 'failuresBeforeWarning' | 'failuresBeforeCritical'> {
  const count = (key: string, label: string): number | undefined =>
    readInt(issues, f.get(key), at(path, label), { max: 1000 });
  const failuresBeforeCritical = count('failuresbeforecritical', 'FailuresBeforeCritical') ?? 0;
  return {
    successBeforePassing: count('successbeforepassing', 'SuccessBeforePassing') ?? 0,
    failuresBeforeWarning: count('failuresbeforewarning', 'FailuresBeforeWarning') ?? failuresBeforeCritical,
    failuresBeforeCritical,
  };
}

function readHttp({ issues, f, path }: Source): HttpTarget | undefined {
  const url = readString(issues, f.get('http'), at(path, 'HTTP'), { required: true, maxLength: 2048 });
  if (url !== undefined && !isHttpUrl(url)) issues.add(at(path, 'HTTP'), 'must be an http or https URL');
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

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * A service's checks (`Check` then `Checks`, as the registration gave them), each decoded with the
 * service as its context. Paths are `Check` for a single check and `Checks[i]` otherwise.
 */
export function readServiceChecks(
  issues: Issues,
  raws: readonly unknown[],
  service: { readonly id: string; readonly name: string },
  rules: CheckRules,
): CheckSpec[] {
  const count = raws.length;
  return raws.flatMap((raw, index) => {
    const path = count === 1 ? 'Check' : `Checks[${index}]`;
    const ctx = { serviceId: service.id, serviceName: service.name, index, count };
    const spec = readCheck(issues, raw, path, ctx, rules);
    return spec === undefined ? [] : [spec];
  });
}

/** The host a probed check connects to ('' for a TTL check). */
function targetHost(spec: CheckSpec): string {
  if (spec.kind === 'http') return new URL(spec.http.url).hostname;
  if (spec.kind === 'tcp') return spec.tcp.slice(0, spec.tcp.lastIndexOf(':'));
  return '';
}

/**
 * The decoded checks whose target name resolves outside `MESHREG_CHECK_ALLOW` (resolved now, at
 * registration; each probe checks again after its own lookup), each with the path the decoder
 * would give it (`Check`, `Checks[i]`, or `prefix` for a standalone check).
 */
export async function checkTargetIssues(
  specs: readonly CheckSpec[],
  rules: CheckRules,
  prefix?: string,
): Promise<FieldError[]> {
  const targets = rules.net?.targets;
  if (targets?.restricted !== true) return [];
  const out: FieldError[] = [];
  for (const [i, spec] of specs.entries()) {
    const host = targetHost(spec);
    if (host === '') continue;
    const why = await targets.refusal(host);
    const base = prefix ?? (specs.length === 1 ? 'Check' : `Checks[${String(i)}]`);
    const label = spec.kind === 'http' ? 'HTTP' : 'TCP';
    if (why !== undefined) out.push({ path: at(base, label), message: `check target refused: ${why}` });
  }
  return out;
}
