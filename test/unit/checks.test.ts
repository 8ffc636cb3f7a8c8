import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentChecks } from '../../agent/checks/agent-checks.js';
import { readCheck } from '../../agent/consul/consul-check.js';
import { LocalServices } from '../../agent/local/local-services.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { VersionClock } from '../../proto/version.js';
import { durationFieldMs, formatDurationMs, parseDurationMs } from '../../agent/consul/duration.js';
import { StatusHandler } from '../../agent/checks/status-handler.js';
import { Issues } from '../../proto/validate.js';

const RULES = { minIntervalMs: 1000, minDeregisterMs: 60_000 };
const CTX = { serviceId: 'web-1', serviceName: 'web', index: 0, count: 1 };

test('durations - Go syntax, nanosecond numbers, formatting', () => {
  assert.equal(parseDurationMs('10s'), 10_000);
  assert.equal(parseDurationMs('1m30s'), 90_000);
  assert.equal(parseDurationMs('250ms'), 250);
  assert.equal(parseDurationMs('1h'), 3_600_000);
  assert.equal(parseDurationMs('0'), 0);
  assert.equal(parseDurationMs('10'), undefined);
  assert.equal(parseDurationMs('soon'), undefined);
  assert.equal(durationFieldMs(5_000_000_000), 5000);
  assert.equal(formatDurationMs(90_000), '1m30s');
  assert.equal(formatDurationMs(250), '250ms');
});

test('status handler - the first result applies at once, then the thresholds apply', () => {
  const h = new StatusHandler({
    successBeforePassing: 2,
    failuresBeforeWarning: 1,
    failuresBeforeCritical: 3,
  });
  assert.deepEqual(
    ['passing', 'critical', 'critical', 'critical', 'passing', 'passing', 'warning'].map((r) =>
      h.next(r as 'passing'),
    ),
    ['passing', 'warning', 'warning', 'critical', undefined, 'passing', 'warning'],
  );
});

test('status handler - zero thresholds apply every result', () => {
  const h = new StatusHandler({
    successBeforePassing: 0,
    failuresBeforeWarning: 0,
    failuresBeforeCritical: 0,
  });
  assert.deepEqual(
    ['critical', 'passing', 'warning'].map((r) => h.next(r as 'passing')),
    ['critical', 'passing', 'warning'],
  );
});

test('check definitions - keys in any case, defaults, generated ID and name', () => {
  const issues = new Issues();
  const d = readCheck(
    issues,
    { http: 'http://127.0.0.1:8080/health', interval: '100ms', failures_before_critical: 3 },
    'Check',
    CTX,
    RULES,
  );
  assert.deepEqual(issues.list, []);
  assert.ok(d?.kind === 'http', 'an HTTP check');
  assert.equal(d.id, 'service:web-1');
  assert.equal(d.name, "Service 'web' check");
  assert.equal(d.initialStatus, 'critical');
  assert.equal(d.intervalMs, 1000, 'raised to the minimum interval');
  assert.equal(d.timeoutMs, 10_000);
  assert.equal(d.failuresBeforeCritical, 3);
  assert.equal(d.failuresBeforeWarning, 3, 'defaults to FailuresBeforeCritical');
  assert.equal(d.http.method, 'GET');
  const two = readCheck(issues, { TTL: '15s' }, 'Checks[1]', { ...CTX, index: 1, count: 2 }, RULES);
  assert.equal(two?.id, 'service:web-1:2');
});

test('check definitions - each kind carries exactly its own fields', () => {
  const decode = (raw: Record<string, unknown>): unknown => {
    const issues = new Issues();
    const d = readCheck(issues, raw, 'Check', CTX, RULES);
    assert.deepEqual(issues.list, []);
    return d === undefined ? [] : Object.keys(d).sort();
  };
  const base = [
    'failuresBeforeCritical',
    'failuresBeforeWarning',
    'id',
    'initialStatus',
    'kind',
    'name',
    'notes',
    'outputMaxSize',
    'raw',
    'serviceId',
    'successBeforePassing',
  ];
  const sorted = (extra: string[]): string[] => [...base, ...extra].sort();
  assert.deepEqual(
    decode({ HTTP: 'http://127.0.0.1:1/', Interval: '5s' }),
    sorted(['http', 'intervalMs', 'timeoutMs']),
  );
  assert.deepEqual(
    decode({ TCP: '127.0.0.1:1', Interval: '5s' }),
    sorted(['tcp', 'intervalMs', 'timeoutMs']),
  );
  // A TTL check is never probed: an Interval it was given is checked but not carried.
  assert.deepEqual(decode({ TTL: '5s', Interval: '5s', Timeout: '1s' }), sorted(['ttlMs']));
});

test('check definitions - every error is named with its path', () => {
  const issues = new Issues();
  readCheck(issues, { HTTP: 'ftp://x', Interval: 'often', Status: 'ok' }, 'Checks[0]', CTX, RULES);
  readCheck(issues, { TCP: 'nohost', TTL: '1s' }, 'Checks[1]', CTX, RULES);
  readCheck(issues, { Script: 'x', Interval: '1s' }, 'Checks[2]', CTX, RULES);
  const paths = issues.list.map((e) => e.path);
  assert.ok(paths.includes('Checks[0].HTTP'));
  assert.ok(paths.includes('Checks[0].Interval'));
  assert.ok(paths.includes('Checks[0].Status'));
  assert.ok(paths.includes('Checks[1]'), 'two kinds at once');
  assert.ok(paths.includes('Checks[2].script'));
});

test('agent checks - a decoded check is taken as is; one naming an unknown service changes nothing', (t) => {
  const checks = new AgentChecks(new LocalServices(new VersionClock()), {
    ...RULES,
    reapIntervalMs: 60_000,
    logger: silentLogger,
    deregister: () => Promise.resolve(),
  });
  t.after(() => {
    checks.close();
  });
  const decode = (
    raw: Record<string, unknown>,
    serviceId: string,
  ): NonNullable<ReturnType<typeof readCheck>> => {
    const issues = new Issues();
    const d = readCheck(issues, raw, '', { serviceId, serviceName: '', index: 0, count: 1 }, RULES);
    assert.ok(d !== undefined, JSON.stringify(issues.list));
    return d;
  };
  assert.equal(checks.registerCheck(decode({ Name: 'orphan', TTL: '10s' }, 'gone')), false);
  assert.deepEqual(checks.list(), []);
  assert.equal(checks.registerCheck(decode({ Name: 'disk', TTL: '10s', Status: 'passing' }, '')), true);
  assert.deepEqual(
    checks.list().map((c) => [c.def.id, c.def.kind, c.status]),
    [['disk', 'ttl', 'passing']],
  );
  assert.deepEqual(checks.persisted().nodeChecks, [
    { Name: 'disk', TTL: '10s', Status: 'passing', CheckID: 'disk' },
  ]);
});
