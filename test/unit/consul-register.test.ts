import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeServiceDefinition, type RegisterRequest } from '../../agent/consul/consul-register.js';

function decoded(raw: unknown): RegisterRequest {
  const d = decodeServiceDefinition(raw);
  assert.ok(d.ok, d.ok ? '' : JSON.stringify(d.errors));
  return d.value;
}

function errors(raw: unknown): string[] {
  const d = decodeServiceDefinition(raw);
  assert.equal(d.ok, false);
  return d.ok ? [] : d.errors.map((e) => `${e.path}: ${e.message}`);
}

const expectedDef = {
  id: 'web-1',
  name: 'web',
  tags: ['v1'],
  address: '10.0.0.9',
  port: 8080,
  meta: { Version: '1.0', build_id: 'x' },
  weights: { passing: 3, warning: 1 },
  enableTagOverride: true,
};

test('consul register - PascalCase, camelCase and snake_case keys decode alike', () => {
  const pascal = decoded({
    Name: 'web',
    ID: 'web-1',
    Tags: ['v1'],
    Address: '10.0.0.9',
    Port: 8080,
    Meta: { Version: '1.0', build_id: 'x' },
    Weights: { Passing: 3, Warning: 1 },
    EnableTagOverride: true,
  });
  const camel = decoded({
    name: 'web',
    id: 'web-1',
    tags: ['v1'],
    address: '10.0.0.9',
    port: 8080,
    meta: { Version: '1.0', build_id: 'x' },
    weights: { passing: 3, warning: 1 },
    enableTagOverride: true,
  });
  const snake = decoded({
    name: 'web',
    id: 'web-1',
    tags: ['v1'],
    address: '10.0.0.9',
    port: 8080,
    meta: { Version: '1.0', build_id: 'x' },
    weights: { passing: 3, warning: 1 },
    enable_tag_override: true,
  });
  for (const r of [pascal, camel, snake]) assert.deepEqual(r, { def: expectedDef, checks: [] });
});

test('consul register - ID defaults to Name, and every other field has a default', () => {
  const expected = {
    id: 'web',
    name: 'web',
    tags: [],
    address: '',
    port: 0,
    meta: {},
    weights: { passing: 1, warning: 1 },
    enableTagOverride: false,
  };
  assert.deepEqual(decoded({ Name: 'web' }).def, expected);
  assert.deepEqual(decoded({ Name: 'web', ID: '' }).def, expected);
  assert.deepEqual(decoded({ Name: 'web', ID: null, Tags: null, Meta: null }).def, expected);
});

test('consul register - Meta keys keep their case, including keys that differ only in case', () => {
  const r = decoded({ Name: 'web', Meta: { Version: '1', version: '2', SNAKE_CASE: '3' } });
  assert.deepEqual(r.def.meta, { Version: '1', version: '2', SNAKE_CASE: '3' });
});

test('consul register - Check and Checks are decoded in order, each into its kind', () => {
  const r = decoded({
    Name: 'web',
    Check: { TTL: '10s' },
    Checks: [
      { HTTP: 'http://x', Interval: '5s' },
      { TCP: 'x:1', Interval: '5s' },
    ],
  });
  assert.deepEqual(
    r.checks.map((c) => [c.id, c.kind]),
    [
      ['service:web:1', 'ttl'],
      ['service:web:2', 'http'],
      ['service:web:3', 'tcp'],
    ],
  );
  const [ttl, http, tcp] = r.checks;
  assert.equal(ttl?.kind === 'ttl' && ttl.ttlMs, 10_000);
  assert.equal(http?.kind === 'http' && http.http.url, 'http://x');
  assert.equal(tcp?.kind === 'tcp' && tcp.tcp, 'x:1');
});

test('consul register - a bad check fails the whole registration, naming the check field', () => {
  assert.deepEqual(errors({ Name: 'web', Checks: [{ TTL: '10s' }, { HTTP: 'http://x' }] }), [
    'Checks[1].Interval: is required for a HTTP check',
  ]);
  assert.deepEqual(errors({ Name: 'web', Check: { TCP: 'x:1', TTL: '1s' } }), [
    'Check: must have exactly one of HTTP, TCP or TTL',
  ]);
  // The checks' own errors are named next to the service's.
  assert.deepEqual(errors({ Name: 'bad name', Check: { TTL: 'soon' } }), [
    'Name: must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
    'Check.TTL: must be a duration like 10s, 1m30s or 250ms',
  ]);
});

test('consul register - every error is reported with its path', () => {
  assert.deepEqual(
    errors({
      Name: '',
      ID: 'a/b',
      Tags: ['ok', 5],
      Address: 7,
      Port: 70000,
      Meta: { good: 'x', bad: 1 },
      EnableTagOverride: 'yes',
      Weights: { Passing: 0, Warning: -1 },
      Checks: { TTL: '1s' },
    }),
    [
      'Name: must not be empty',
      'ID: must not contain "/" and must not be "." or ".."',
      'Tags[1]: must be a string',
      'Address: must be a string',
      'Port: must be an integer 0..65535',
      'Meta.bad: must be a string',
      'EnableTagOverride: must be true or false',
      'Weights.Passing: must be an integer 1..65535',
      'Weights.Warning: must be an integer 0..65535',
      'Checks: must be an array',
    ],
  );
});

test('consul register - a missing or malformed name, body or weights is named', () => {
  assert.deepEqual(errors({}), ['Name: is required']);
  assert.deepEqual(errors({ Name: 'bad name' }), [
    'Name: must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
  ]);
  assert.deepEqual(errors([]), ['(body): must be an object']);
  assert.deepEqual(errors(undefined), ['(body): must be an object']);
  assert.deepEqual(errors({ Name: 'web', Weights: 3 }), ['Weights: must be an object']);
  assert.deepEqual(errors({ Name: 'web', Checks: Array.from({ length: 33 }, () => ({})) }), [
    'Checks: must have at most 32 checks',
  ]);
});
