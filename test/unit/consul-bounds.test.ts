/**
 * The agent's Consul edge refuses what it could not honour: durations past their documented bounds
 * (a timer would overflow into a busy loop), IDs no URL can name again, and loose index syntax; and it
 * keeps what Consul keeps (a `Meta` key `__proto__`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CHECK_DURATION_BOUNDS, readCheck } from '../../agent/consul/consul-check.js';
import { MAX_TIMER_MS, boundedDurationMs } from '../../agent/consul/duration.js';
import { parseBlocking } from '../../agent/http/blocking.js';
import { decodeServiceDefinition } from '../../agent/consul/consul-register.js';
import { MeshregError } from '../../proto/errors.js';
import { Issues } from '../../proto/validate.js';

const RULES = { minIntervalMs: 1000, minDeregisterMs: 60_000 };
const CTX = { serviceId: 'web-1', serviceName: 'web', index: 0, count: 1 };

function checkErrors(raw: Record<string, unknown>): string[] {
  const issues = new Issues();
  readCheck(issues, raw, 'Check', CTX, RULES);
  return issues.list.map((e) => `${e.path}: ${e.message}`);
}

test('check durations - values past their bounds are a 400 naming the field', () => {
  assert.deepEqual(checkErrors({ HTTP: 'http://127.0.0.1:1/', Interval: '1000000h' }), [
    'Check.Interval: must be between 0s and 24h',
  ]);
  assert.deepEqual(checkErrors({ TTL: '1000000h' }), ['Check.TTL: must be between 1ms and 168h']);
  assert.deepEqual(checkErrors({ TCP: '127.0.0.1:1', Interval: '10s', Timeout: '1000000h' }), [
    'Check.Timeout: must be between 0s and 10m',
  ]);
  assert.deepEqual(checkErrors({ TTL: '10s', DeregisterCriticalServiceAfter: '1000000h' }), [
    'Check.DeregisterCriticalServiceAfter: must be between 0s and 720h',
  ]);
  // Nanosecond numbers, as Consul's JSON takes them, are bounded the same way.
  assert.deepEqual(checkErrors({ TTL: 1e30 }), ['Check.TTL: must be between 1ms and 168h']);
  assert.deepEqual(checkErrors({ TTL: '0s' }), ['Check.TTL: must be between 1ms and 168h']);
});

test('check durations - inside the bounds Consul rules apply (raised interval, default timeout)', () => {
  const issues = new Issues();
  const d = readCheck(
    issues,
    { HTTP: 'http://127.0.0.1:1/', Interval: '10ms', Timeout: '0s' },
    'Check',
    CTX,
    RULES,
  );
  assert.deepEqual(issues.list, []);
  assert.ok(d?.kind === 'http');
  assert.equal(d.intervalMs, 1000);
  assert.equal(d.timeoutMs, 10_000);
  const ttl = readCheck(new Issues(), { TTL: '168h' }, 'Check', CTX, RULES);
  assert.ok(ttl?.kind === 'ttl');
  assert.equal(ttl.ttlMs, 7 * 24 * 3_600_000);
});

test('check durations - property: any input is refused or lands within the timer-safe bounds', () => {
  const durationText = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc
      .tuple(fc.double({ min: 0, max: 1e12, noNaN: true }), fc.constantFrom('ns', 'us', 'ms', 's', 'm', 'h'))
      .map(([n, u]) => `${n}${u}`),
  );
  const anyDuration = fc.oneof(durationText, fc.double(), fc.integer(), fc.constant(null), fc.object());
  fc.assert(
    fc.property(anyDuration, anyDuration, anyDuration, anyDuration, (interval, timeout, ttl, dereg) => {
      for (const base of [{ HTTP: 'http://127.0.0.1:1/' }, { TTL: ttl }]) {
        const d = readCheck(
          new Issues(),
          { ...base, Interval: interval, Timeout: timeout, DeregisterCriticalServiceAfter: dereg },
          'Check',
          CTX,
          RULES,
        );
        if (d === undefined) continue;
        for (const ms of d.kind === 'ttl' ? [d.ttlMs] : [d.intervalMs, d.timeoutMs]) {
          assert.ok(Number.isFinite(ms) && ms >= 1 && ms <= MAX_TIMER_MS, `timer delay ${ms}`);
        }
        if (d.kind !== 'ttl') assert.ok(d.intervalMs <= CHECK_DURATION_BOUNDS.interval.maxMs);
        assert.ok((d.deregisterAfterMs ?? 0) <= CHECK_DURATION_BOUNDS.deregister.maxMs);
      }
    }),
    { numRuns: 500 },
  );
});

test('durations - property: boundedDurationMs never throws and honours its bounds', () => {
  fc.assert(
    fc.property(fc.anything(), fc.nat(1e9), fc.nat(1e9), (raw, a, b) => {
      const bounds = { minMs: Math.min(a, b), maxMs: Math.max(a, b) };
      const r = boundedDurationMs(raw, bounds);
      if (typeof r === 'number') assert.ok(r >= bounds.minMs && r <= bounds.maxMs);
      else assert.equal(typeof r, 'string');
    }),
    { numRuns: 1000 },
  );
});

function registerErrors(raw: unknown): string[] {
  const d = decodeServiceDefinition(raw);
  return d.ok ? [] : d.errors.map((e) => `${e.path}: ${e.message}`);
}

test('consul register - IDs a URL cannot name again are refused', () => {
  for (const id of ['.', '..', 'a/b'])
    assert.deepEqual(registerErrors({ Name: 'web', ID: id }), [
      'ID: must not contain "/" and must not be "." or ".."',
    ]);
  assert.deepEqual(registerErrors({ Name: 'web', ID: 'web\ud800' }), [
    'ID: must be well-formed Unicode (no lone surrogates)',
  ]);
  // Dots inside an ID, and well-formed astral characters, are fine.
  assert.deepEqual(registerErrors({ Name: 'web', ID: '...' }), []);
  assert.deepEqual(registerErrors({ Name: 'web', ID: 'web-😀' }), []);
});

test('consul register - a Meta key __proto__ is kept as data, as Consul keeps it', () => {
  const raw = JSON.parse('{"Name":"web","Meta":{"__proto__":"x","a":"b"}}') as unknown;
  const d = decodeServiceDefinition(raw);
  assert.ok(d.ok);
  const meta = d.value.def.meta;
  assert.equal(Object.getPrototypeOf(meta), Object.prototype, 'the prototype is untouched');
  assert.deepEqual(Object.keys(meta), ['__proto__', 'a']);
  assert.equal(JSON.stringify(meta), '{"__proto__":"x","a":"b"}');
});

test('blocking - index takes decimal digits only, as Consul does', () => {
  for (const bad of ['0x10', '+5', ' 5', '5 ', '1e3', '-1', '5.0', '99999999999999999'])
    assert.throws(
      () => parseBlocking(new URLSearchParams({ index: bad })),
      (e: unknown) =>
        e instanceof MeshregError && e.code === 'invalid_argument' && e.fields[0]?.path === 'index',
      bad,
    );
  assert.equal(parseBlocking(new URLSearchParams({ index: '0016' })).index, 16);
});

test('blocking - property: any query yields a bounded wait or an invalid_argument naming the field', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), (index, wait) => {
      try {
        const p = parseBlocking(new URLSearchParams({ index, wait }), () => 1);
        assert.ok(p.waitMs >= 0 && p.waitMs <= 10 * 60_000 * (17 / 16));
        assert.ok(p.index === undefined || Number.isSafeInteger(p.index));
      } catch (e) {
        assert.ok(e instanceof MeshregError && e.code === 'invalid_argument');
        assert.ok(['index', 'wait'].includes(e.fields[0]?.path ?? ''));
      }
    }),
    { numRuns: 1000 },
  );
});
