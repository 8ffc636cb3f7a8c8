import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeAgentFrame,
  decodeSessionFrame,
  parseJsonFrame,
  type AgentFrame,
  type SessionFrame,
} from '../../proto/agent-link.js';
import type { FieldError } from '../../proto/validate.js';
import { makeInstance } from '../support/fixtures.js';

const web1 = makeInstance({ id: 'web-1', service: 'web', tags: ['v1'], meta: { Version: '1' } });

function errorsOf(result: { ok: true } | { ok: false; errors: readonly FieldError[] }): string[] {
  assert.equal(result.ok, false, 'expected the frame to be refused');
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
}

/** Every frame survives a JSON round trip through its decoder unchanged. */
function roundTrip<T>(frame: T, decode: (raw: unknown) => { ok: boolean; value?: T }): void {
  const decoded = decode(JSON.parse(JSON.stringify(frame)));
  assert.deepEqual(decoded, { ok: true, value: frame });
}

test('agent link - every agent frame type decodes', () => {
  const frames: AgentFrame[] = [
    { type: 'hello', protocolVersion: 1, nodeId: 'n-1', nodeName: 'a', token: 's3cret' },
    { type: 'publish', registrations: [{ instance: web1, version: 3 }] },
    { type: 'unpublish', registrations: [{ id: 'web-1', service: 'web', version: 4 }] },
    { type: 'subscribe', services: [{ service: 'web', knownVersion: 9 }, { service: 'db' }] },
    { type: 'unsubscribe', services: ['web', 'db'] },
    { type: 'catalogSubscribe' },
    { type: 'catalogSubscribe', knownVersion: 0 },
    { type: 'ack', service: 'web', version: 9 },
    {
      type: 'acks',
      acks: [
        { service: 'web', version: 9 },
        { service: 'db', version: 2 },
      ],
    },
    { type: 'ping', sentAt: 1_700_000_000_000 },
  ];
  for (const f of frames) roundTrip(f, decodeAgentFrame);
});

test('agent link - hello without a token decodes with an empty token', () => {
  assert.deepEqual(decodeAgentFrame({ type: 'hello', protocolVersion: 1, nodeId: 'n', nodeName: 'a' }), {
    ok: true,
    value: { type: 'hello', protocolVersion: 1, nodeId: 'n', nodeName: 'a', token: '' },
  });
});

test('agent link - every session frame type decodes', () => {
  const frames: SessionFrame[] = [
    { type: 'welcome', protocolVersion: 1, sessionId: 's1', sessions: ['ws://a/x'], pingIntervalMs: 5000 },
    {
      type: 'confirm',
      results: [
        { op: 'publish', id: 'web-1', version: 3 },
        { op: 'unpublish', id: 'web-2', version: 4, error: { code: 'forbidden', message: 'no' } },
      ],
    },
    { type: 'push', service: 'web', version: 10, complete: false, instances: [web1] },
    {
      type: 'delta',
      service: 'web',
      base: 10,
      version: 12,
      complete: true,
      upserts: [web1],
      removed: ['node-b/web-2'],
    },
    { type: 'catalog', version: 11, complete: true, services: { web: ['v1'], db: [] } },
    { type: 'pong', sentAt: 5 },
  ];
  for (const f of frames) roundTrip(f, decodeSessionFrame);
});

test('agent link - welcome without sessions decodes with an empty list', () => {
  const d = decodeSessionFrame({ type: 'welcome', protocolVersion: 1, sessionId: 's', pingIntervalMs: 10 });
  assert.deepEqual(d, {
    ok: true,
    value: { type: 'welcome', protocolVersion: 1, sessionId: 's', sessions: [], pingIntervalMs: 10 },
  });
});

test('agent link - a bad publish reports every error with its full path', () => {
  const d = decodeAgentFrame({
    type: 'publish',
    registrations: [
      { instance: { id: '', service: 'bad name', nodeId: 'n', node: 'a', port: 70000 }, version: 0 },
      { instance: web1, version: 2 },
      'x',
      { version: 1 },
    ],
  });
  assert.deepEqual(errorsOf(d), [
    'registrations[0].instance.id: must not be empty',
    'registrations[0].instance.service: must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
    'registrations[0].instance.port: must be an integer 0..65535',
    'registrations[0].version: must be an integer 1..9007199254740991',
    'registrations[2]: must be an object',
    'registrations[3].instance: must be an object',
  ]);
});

test('agent link - bad agent frames of each type name their fields', () => {
  const cases: [unknown, string[]][] = [
    [null, ['(body): must be an object']],
    [[], ['(body): must be an object']],
    [
      { type: 'bogus' },
      [
        'type: must be one of hello, publish, unpublish, subscribe, unsubscribe, catalogSubscribe, ack, acks, ping',
      ],
    ],
    [
      {},
      [
        'type: must be one of hello, publish, unpublish, subscribe, unsubscribe, catalogSubscribe, ack, acks, ping',
      ],
    ],
    [
      { type: 'hello', protocolVersion: '1', nodeName: 7, token: 1 },
      [
        'protocolVersion: must be a number',
        'nodeId: is required',
        'nodeName: must be a string',
        'token: must be a string',
      ],
    ],
    [{ type: 'publish' }, ['registrations: is required']],
    [
      { type: 'publish', registrations: Array.from({ length: 501 }, () => ({})) },
      ['registrations: must have at most 500 items'],
    ],
    [
      { type: 'unpublish', registrations: [{ id: '', service: '-x', version: -1 }] },
      [
        'registrations[0].id: must not be empty',
        'registrations[0].service: must be a service name',
        'registrations[0].version: must be an integer 1..9007199254740991',
      ],
    ],
    [
      { type: 'subscribe', services: [{ service: 'web', knownVersion: -1 }, { knownVersion: 1 }, 3] },
      [
        'services[0].knownVersion: must be an integer 0..9007199254740991',
        'services[1].service: is required',
        'services[2]: must be an object',
      ],
    ],
    [
      { type: 'unsubscribe', services: ['ok', '', 'a b'] },
      [
        'services[1]: must not be empty',
        'services[2]: must be a service name, optionally followed by @ and a data center name',
      ],
    ],
    [
      { type: 'catalogSubscribe', knownVersion: 'x' },
      ['knownVersion: must be an integer 0..9007199254740991'],
    ],
    [
      { type: 'ack', version: 1.5 },
      ['service: is required', 'version: must be an integer 0..9007199254740991'],
    ],
    [{ type: 'acks' }, ['acks: is required']],
    [
      { type: 'acks', acks: [{ service: 'web', version: -2 }, { version: 1 }, 'x'] },
      [
        'acks[0].version: must be an integer 0..9007199254740991',
        'acks[1].service: is required',
        'acks[2]: must be an object',
      ],
    ],
    [
      { type: 'acks', acks: Array.from({ length: 501 }, () => ({ service: 'web', version: 1 })) },
      ['acks: must have at most 500 items'],
    ],
    [{ type: 'ping' }, ['sentAt: is required']],
  ];
  for (const [raw, expected] of cases)
    assert.deepEqual(errorsOf(decodeAgentFrame(raw)), expected, JSON.stringify(raw));
});

test('agent link - a frame with one bad item is refused, not decoded without it', () => {
  const d = decodeAgentFrame({ type: 'unsubscribe', services: ['web', 5] });
  assert.deepEqual(errorsOf(d), ['services[1]: must be a string']);
});

test('agent link - bad session frames of each type name their fields', () => {
  const cases: [unknown, string[]][] = [
    [
      { type: 'hello' },
      ['type: must be one of welcome, confirm, push, delta, catalog, pong, refused, slow_down, datacenters'],
    ],
    [
      { type: 'slow_down', retryAfterMs: -1, reason: 7 },
      ['retryAfterMs: must be an integer 0..9007199254740991', 'reason: must be a string'],
    ],
    [
      { type: 'welcome', protocolVersion: 0, sessions: ['ok', 3], pingIntervalMs: 9 },
      [
        'protocolVersion: must be an integer 1..9007199254740991',
        'sessionId: is required',
        'sessions[1]: must be a string',
        'pingIntervalMs: must be an integer 10..9007199254740991',
      ],
    ],
    [
      {
        type: 'confirm',
        results: [
          { op: 'delete', id: 'a', version: 1 },
          { op: 'publish', version: 'x' },
          { op: 'publish', id: 'b', version: 1, error: { message: 2 } },
        ],
      },
      [
        'results[0].op: must be publish or unpublish',
        'results[1].id: is required',
        'results[1].version: must be an integer 0..9007199254740991',
        'results[2].error.code: is required',
        'results[2].error.message: must be a string',
      ],
    ],
    [
      {
        type: 'push',
        service: 'web',
        version: 1,
        instances: [web1, { ...web1, port: -1, checks: [{ id: 'c', status: 'sick' }] }],
      },
      [
        'complete: is required',
        'instances[1].port: must be an integer 0..65535',
        'instances[1].checks[0].status: must be one of passing, warning, critical',
      ],
    ],
    [
      {
        type: 'delta',
        service: 'web',
        base: 0,
        version: 'x',
        upserts: [{ ...web1, port: -1 }],
        removed: ['ok', 7, ''],
      },
      [
        'base: must be an integer 1..9007199254740991',
        'version: must be an integer 1..9007199254740991',
        'complete: is required',
        'upserts[0].port: must be an integer 0..65535',
        'removed[1]: must be a string',
        'removed[2]: must not be empty',
      ],
    ],
    [
      { type: 'delta', service: 'web', base: 5, version: 5, complete: true, upserts: [], removed: [] },
      ['version: must be greater than base'],
    ],
    [
      { type: 'delta', service: 'web', base: 1, version: 2, complete: true },
      ['upserts: is required', 'removed: is required'],
    ],
    [
      { type: 'catalog', version: 1, complete: 'yes', services: { web: ['v1', 2], db: 'x' } },
      [
        'complete: must be true or false',
        'services.web[1]: must be a string',
        'services.db: must be an array',
      ],
    ],
    [{ type: 'catalog', version: 1, complete: true }, ['services: must be an object']],
    [{ type: 'pong', sentAt: 'now' }, ['sentAt: must be an integer 0..9007199254740991']],
  ];
  for (const [raw, expected] of cases)
    assert.deepEqual(errorsOf(decodeSessionFrame(raw)), expected, JSON.stringify(raw));
});

test('agent link - parseJsonFrame returns undefined for text that is not JSON', () => {
  assert.equal(parseJsonFrame('{"type":'), undefined);
  assert.equal(parseJsonFrame(''), undefined);
  assert.deepEqual(parseJsonFrame('{"type":"ping","sentAt":1}'), { type: 'ping', sentAt: 1 });
});
