import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeInstance, registrationId, worstHealth, type Instance } from '../../proto/instance.js';
import { makeCheck, makeInstance } from '../support/fixtures.js';

test('instance - the minimal instance decodes with every default filled in', () => {
  const d = decodeInstance({ id: 'web-1', service: 'web', nodeId: 'n-1', node: 'a' });
  const expected: Instance = {
    id: 'web-1',
    service: 'web',
    nodeId: 'n-1',
    node: 'a',
    nodeAddress: '',
    address: '',
    port: 0,
    tags: [],
    meta: {},
    weights: { passing: 1, warning: 1 },
    health: 'passing',
    checks: [],
    zone: '',
    region: '',
  };
  assert.deepEqual(d, { ok: true, value: expected });
});

test('instance - a full instance survives a JSON round trip', () => {
  const full = makeInstance({
    id: 'web-1',
    service: 'web.api_v2',
    tags: ['a', 'b'],
    meta: { Owner: 'team' },
    weights: { passing: 10, warning: 0 },
    health: 'warning',
    checks: [makeCheck('c1', 'warning')],
    zone: 'z1',
    region: 'r1',
  });
  assert.deepEqual(decodeInstance(JSON.parse(JSON.stringify(full))), { ok: true, value: full });
});

test('instance - every error is reported under the given path', () => {
  const d = decodeInstance(
    {
      id: 1,
      service: '_web',
      node: '',
      port: 65536,
      tags: ['ok', 1],
      meta: { k: 2 },
      weights: { passing: -1 },
      health: 'dead',
      checks: [{ status: 'passing' }, { id: 'c', status: 'bad' }],
    },
    'instances[2]',
  );
  assert.equal(d.ok, false);
  assert.deepEqual(d.ok ? [] : d.errors.map((e) => `${e.path}: ${e.message}`), [
    'instances[2].id: must be a string',
    'instances[2].service: must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
    'instances[2].nodeId: is required',
    'instances[2].node: must not be empty',
    'instances[2].port: must be an integer 0..65535',
    'instances[2].tags[1]: must be a string',
    'instances[2].meta.k: must be a string',
    'instances[2].weights.passing: must be an integer 0..65535',
    'instances[2].health: must be one of passing, warning, critical',
    'instances[2].checks[0].id: is required',
    'instances[2].checks[1].status: must be one of passing, warning, critical',
  ]);
});

test('instance - a value that is not an object is one error at the root', () => {
  const d = decodeInstance('web');
  assert.deepEqual(d, { ok: false, errors: [{ path: '(body)', message: 'must be an object' }] });
});

test('instance - worstHealth orders critical over warning over passing', () => {
  assert.equal(worstHealth([]), 'passing');
  assert.equal(worstHealth([{ status: 'passing' }, { status: 'passing' }]), 'passing');
  assert.equal(worstHealth([{ status: 'passing' }, { status: 'warning' }]), 'warning');
  assert.equal(
    worstHealth([{ status: 'warning' }, { status: 'critical' }, { status: 'passing' }]),
    'critical',
  );
  assert.equal(worstHealth([{ status: 'critical' }, { status: 'warning' }]), 'critical');
});

test('instance - registrationId joins node and service ID', () => {
  assert.equal(registrationId({ nodeId: 'n-1', id: 'web-1' }), 'n-1/web-1');
});
