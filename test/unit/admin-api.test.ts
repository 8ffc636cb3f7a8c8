/**
 * The admin answer decoders: they accept what the servers send (samples taken from a running dev
 * process), refuse wrong answers with the path of every bad field, and never throw.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import * as api from '../../proto/admin-api.js';
import type { Decoded } from '../../proto/validate.js';
import { anyJson, anyText, mutated } from '../support/arbitraries.js';

const SESSION_ID = 'session-vm-17064#7a1480';
const EPOCH = 894333394866176;

const member = {
  id: 'data-vm-17064',
  role: 'data',
  url: 'ws://127.0.0.1:39475/v1/data-link',
  http: 'http://127.0.0.1:39475',
  connected: true,
  leaseLeftMs: 4986,
  draining: false,
};
const members = {
  members: [
    member,
    {
      id: SESSION_ID,
      role: 'session',
      url: 'ws://127.0.0.1:38499/v1/agent-link',
      http: 'http://127.0.0.1:38499',
      connected: true,
      leaseLeftMs: 4998,
      draining: false,
    },
  ],
};
const slots = {
  epoch: EPOCH,
  slotCount: 4,
  leaders: { 'data-vm-17064': 3, 'data-b': 1 },
  slots: [0, 1, 2, 3].map((id) => ({
    id,
    leader: id === 3 ? 'data-b' : 'data-vm-17064',
    leaderEpoch: 1,
    followers: id === 3 ? ['data-vm-17064'] : [],
  })),
};
const replicas = {
  service: 'web',
  slot: 108,
  epoch: EPOCH,
  replicas: [
    { id: 'data-vm-17064', role: 'leader', http: 'http://127.0.0.1:39475' },
    // A follower meta no longer lists as a member has no address.
    { id: 'data-gone', role: 'follower', http: '' },
  ],
};
const switches = {
  version: 1700000000123,
  pushStopped: true,
  pushAllow: ['10.0.0.7'],
  clientOff: [],
  publishBlacklist: ['legacy'],
  subscribeBlacklist: [],
};
const connections = {
  sessionId: SESSION_ID,
  connections: [
    {
      id: `${SESSION_ID}:1`,
      nodeId: '32dea03f-58f8-4590-9e2e-660db9841698',
      nodeName: 'vm',
      address: '127.0.0.1',
      remote: '127.0.0.1:49180',
      subscriptions: 0,
      publishers: 1,
    },
  ],
};
const datum = {
  dataId: 'data-vm-17064',
  slot: 108,
  state: 'ready',
  epoch: EPOCH,
  key: 'web',
  version: 894333416390657,
  instances: [
    {
      id: 'web',
      service: 'web',
      nodeId: '32dea03f-58f8-4590-9e2e-660db9841698',
      node: 'vm',
      nodeAddress: '127.0.0.1',
      address: '',
      port: 80,
      tags: ['a'],
      meta: {},
      weights: { passing: 1, warning: 1 },
      health: 'critical',
      checks: [
        { id: 'service:web', name: "Service 'web' check", status: 'critical', output: '', type: 'ttl' },
      ],
      zone: '',
      region: '',
    },
  ],
};
const error = {
  error: {
    code: 'invalid_argument',
    message: 'add[0]: must be a service name',
    fields: [{ path: 'add[0]', message: 'must be a service name' }],
  },
};

/** Every decoder with an answer its server sends. */
const SAMPLES: readonly (readonly [string, (raw: unknown) => Decoded<unknown>, unknown])[] = [
  ['members', api.decodeAdminMembers, members],
  ['member', api.decodeAdminMember, member],
  ['slots', api.decodeAdminSlots, slots],
  ['replicas', api.decodeAdminServiceReplicas, replicas],
  ['switches', api.decodeAdminSwitches, switches],
  ['connections', api.decodeAdminConnections, connections],
  ['datum', api.decodeAdminDatum, datum],
  ['error', api.decodeAdminError, error],
];

function errorPaths(d: Decoded<unknown>): string[] {
  assert.equal(d.ok, false, 'must be refused');
  return d.ok ? [] : d.errors.map((e) => e.path).sort();
}

test('admin api - every decoder accepts what its server sends, unchanged', () => {
  for (const [name, decode, sample] of SAMPLES) {
    const d = decode(JSON.parse(JSON.stringify(sample)));
    assert.ok(d.ok, `${name}: ${JSON.stringify(d)}`);
    assert.deepEqual(d.value, sample, name);
  }
});

test('admin api - the empty slot table meta answers before it arranged slots is accepted', () => {
  const empty = { epoch: 0, slotCount: 0, leaders: {}, slots: [] };
  assert.deepEqual(api.decodeAdminSlots(empty), { ok: true, value: empty });
  assert.deepEqual(errorPaths(api.decodeAdminSlots({ ...empty, slots: [slots.slots[0]] })), ['slots']);
  // A member id is data: even `__proto__` stays a plain key of the leaders.
  const odd = api.decodeAdminSlots(
    JSON.parse('{"epoch":0,"slotCount":0,"leaders":{"__proto__":2},"slots":[]}'),
  );
  assert.ok(odd.ok);
  assert.deepEqual(Object.entries(odd.value.leaders), [['__proto__', 2]]);
});

test('admin api - optional fields stay absent: a connection before its hello named the node', () => {
  const bare = {
    id: `${SESSION_ID}:2`,
    address: '10.0.0.7',
    remote: '10.0.0.7:5000',
    subscriptions: 0,
    publishers: 0,
  };
  const d = api.decodeAdminConnections({ sessionId: SESSION_ID, connections: [bare] });
  assert.ok(d.ok);
  assert.deepEqual(d.value.connections[0], bare);
  const plain = api.decodeAdminError({ error: { code: 'not_found', message: 'no member "x"' } });
  assert.deepEqual(plain, { ok: true, value: { error: { code: 'not_found', message: 'no member "x"' } } });
});

test('admin api - wrong answers are refused with the path of every bad field', () => {
  const [m0, m1] = members.members;
  assert.deepEqual(
    errorPaths(
      api.decodeAdminMembers({
        members: [
          { ...m0, role: 'meta' },
          { ...m1, leaseLeftMs: '5s' },
        ],
      }),
    ),
    ['members[0].role', 'members[1].leaseLeftMs'],
  );
  assert.deepEqual(errorPaths(api.decodeAdminMembers({ member: [] })), ['members']);
  assert.deepEqual(errorPaths(api.decodeAdminMember({ ...member, connected: 'yes', http: undefined })), [
    'connected',
    'http',
  ]);
  assert.deepEqual(errorPaths(api.decodeAdminSlots({ ...slots, leaders: { a: -1 }, slotCount: 3 })), [
    'leaders.a',
    'slotCount',
    'slots',
  ]);
  assert.deepEqual(
    errorPaths(api.decodeAdminServiceReplicas({ ...replicas, replicas: [{ id: 'd', role: 'primary' }] })),
    ['replicas[0].role'],
  );
  assert.deepEqual(errorPaths(api.decodeAdminSwitches({ ...switches, pushAllow: 'all' })), ['pushAllow']);
  const conn = connections.connections[0];
  assert.deepEqual(
    errorPaths(
      api.decodeAdminConnections({ sessionId: '', connections: [{ ...conn, publishers: undefined }] }),
    ),
    ['connections[0].publishers', 'sessionId'],
  );
  const inst = datum.instances[0];
  assert.deepEqual(
    errorPaths(api.decodeAdminDatum({ ...datum, state: 'leading', instances: [{ ...inst, port: 70000 }] })),
    ['instances[0].port', 'state'],
  );
  assert.deepEqual(
    errorPaths(api.decodeAdminError({ error: { code: 'teapot', message: 'x', fields: [{ path: 'a' }] } })),
    ['error.code', 'error.fields[0].message'],
  );
  assert.deepEqual(errorPaths(api.decodeAdminError('Bad Gateway')), ['(body)']);
});

test('admin api - no input makes a decoder throw, and every refusal carries paths', () => {
  const anyInput = fc.oneof(anyJson, anyText, ...SAMPLES.map(([, , sample]) => mutated(fc.constant(sample))));
  fc.assert(
    fc.property(anyInput, (raw) => {
      for (const [, decode] of SAMPLES) {
        const d = decode(raw);
        if (d.ok) continue;
        assert.ok(d.errors.length > 0);
        for (const e of d.errors) assert.ok(e.path.length > 0 && e.message.length > 0);
      }
    }),
    { numRuns: 500 },
  );
});
