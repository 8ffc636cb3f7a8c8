/**
 * Data center names, qualified watch keys and the `datacenters` frame: keys split back into what made
 * them, a service name can never pass for a qualified key, and hostile `datacenters` frames are
 * refused with paths, within their bounds, never thrown.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeAgentFrame, decodeSessionFrame, MAX_PEERS } from '../../proto/agent-link.js';
import {
  DATACENTER_PATTERN,
  isRemoteKey,
  isServiceName,
  remoteKey,
  splitKey,
  WATCH_KEY_PATTERN,
} from '../../proto/datacenter.js';
import { FederationView } from '../../agent/federation-view.js';
import { serviceName } from '../support/arbitraries.js';

const dcName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,20}$/);

test('datacenter - a qualified key splits back into its service and data center', () => {
  fc.assert(
    fc.property(serviceName, dcName, (service, dc) => {
      const key = remoteKey(service, dc);
      assert.ok(isRemoteKey(key));
      assert.ok(WATCH_KEY_PATTERN.test(key));
      assert.deepEqual(splitKey(key), { service, datacenter: dc });
      assert.deepEqual(splitKey(service), { service, datacenter: undefined });
      assert.ok(!isRemoteKey(service));
    }),
  );
});

test('datacenter - a service name never holds the separator, and bad names are refused', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (s) => {
      if (isServiceName(s)) assert.ok(!s.includes('@'));
      if (DATACENTER_PATTERN.test(s)) assert.ok(!/[@./\s]/.test(s));
    }),
  );
  for (const bad of ['web@', '@dc1', 'web@dc1@dc2', 'web@dc 1', 'web@dc.1', ''])
    assert.ok(!WATCH_KEY_PATTERN.test(bad), bad);
});

test('datacenter - subscribe frames take qualified keys; publishes still refuse them in a service name', () => {
  const sub = decodeAgentFrame({ type: 'subscribe', services: [{ service: 'web@dc2', knownVersion: 3 }] });
  assert.ok(sub.ok);
  const un = decodeAgentFrame({
    type: 'unpublish',
    registrations: [{ id: 'a', service: 'web@dc2', version: 1 }],
  });
  assert.ok(!un.ok, 'a registration is always of the local data center');
  const hello = decodeAgentFrame({
    type: 'hello',
    protocolVersion: 4,
    nodeId: 'n',
    nodeName: 'n',
    token: 't',
    datacenter: 'dc 1',
  });
  assert.ok(!hello.ok);
  assert.match(hello.errors[0]?.path ?? '', /datacenter/);
});

test('datacenter - datacenters frames are bounded and name the bad field', () => {
  const ok = decodeSessionFrame({
    type: 'datacenters',
    local: 'dc1',
    peers: [{ name: 'dc2', linked: true, ageMs: 12, services: ['web'] }],
  });
  assert.ok(ok.ok);
  const tooMany = decodeSessionFrame({
    type: 'datacenters',
    local: 'dc1',
    peers: Array.from({ length: MAX_PEERS + 1 }, (_, i) => ({
      name: `dc${i}`,
      linked: true,
      ageMs: 0,
      services: [],
    })),
  });
  assert.ok(!tooMany.ok);
  const badService = decodeSessionFrame({
    type: 'datacenters',
    local: 'dc1',
    peers: [{ name: 'dc2', linked: true, ageMs: 0, services: ['web@dc3'] }],
  });
  assert.ok(!badService.ok, 'a peer exports plain services only');
  assert.equal(badService.errors[0]?.path, 'peers[0].services[0]');
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (peers) => {
      const d = decodeSessionFrame({ type: 'datacenters', local: 'dc1', peers });
      if (!d.ok) for (const e of d.errors) assert.ok(e.path.length > 0);
    }),
  );
});

test('datacenter - the agent federation view: peers from frames, ages on the agent clock, restored offline as not linked', () => {
  const v = new FederationView('dc1');
  let changes = 0;
  v.onChange(() => changes++);
  v.apply(
    {
      type: 'datacenters',
      local: 'dc1',
      peers: [
        { name: 'dc3', linked: false, ageMs: 500, services: ['web'] },
        { name: 'dc2', linked: true, ageMs: 0, services: ['web', 'api'] },
        { name: 'dc1', linked: true, ageMs: 0, services: ['web'] },
      ],
    },
    10_000,
  );
  assert.deepEqual(v.known(), ['dc1', 'dc2', 'dc3'], 'own first, then peers by name; never itself as a peer');
  assert.deepEqual(v.exporting('web'), ['dc2', 'dc3']);
  assert.deepEqual(v.exporting('api'), ['dc2']);
  assert.equal(v.peer('dc3')?.syncedAt, 9_500);
  assert.equal(v.isKnown('dc9'), false);
  assert.equal(changes, 1);
  v.apply(
    {
      type: 'datacenters',
      local: 'dc1',
      peers: [
        { name: 'dc2', linked: true, ageMs: 0, services: ['web', 'api'] },
        { name: 'dc3', linked: false, ageMs: 500, services: ['web'] },
      ],
    },
    10_000,
  );
  assert.equal(changes, 1, 'the same state again is no change');
  const restored = new FederationView('dc1');
  restored.restore(v.toSaved());
  assert.deepEqual(restored.known(), ['dc1', 'dc2', 'dc3']);
  assert.equal(restored.peer('dc2')?.linked, false, 'from disk nothing is known to be linked');
  assert.equal(restored.peer('dc3')?.syncedAt, 9_500);
});
