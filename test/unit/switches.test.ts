/** Switch decoders, the switch board's versions and a session's view of the switches. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SwitchBoard } from '../../control-plane/meta/switch-board.js';
import { SessionSwitches } from '../../control-plane/session/switches.js';
import { decodeAgentFrame } from '../../proto/agent-link.js';
import { decodeListEdit, decodePushSwitch, decodeSwitches, type Switches } from '../../proto/switches.js';

test('switches - decoders name every bad field', () => {
  const p = decodePushSwitch({ stopped: 1, allow: ['ok', ''] });
  assert.equal(p.ok, false);
  assert.deepEqual(!p.ok && p.errors.map((e) => e.path), ['stopped', 'allow[1]']);
  const l = decodeListEdit({ add: ['web', 'bad name'] }, 'services');
  assert.deepEqual(!l.ok && l.errors.map((e) => e.path), ['add[1]']);
  assert.equal(decodeListEdit({}, 'clients').ok, false, 'an empty edit is refused');
  assert.equal(decodeSwitches({ version: 1 }).ok, false);
});

test('switches - the board bumps the version and tells its listener', () => {
  const seen: Switches[] = [];
  const board = new SwitchBoard((s) => seen.push(s));
  const a = board.setPush({ stopped: true, allow: ['b', 'a', 'a'] });
  const b = board.edit('clientOff', { add: ['10.0.0.1', '10.0.0.2'], remove: [] });
  const c = board.edit('clientOff', { add: [], remove: ['10.0.0.1'] });
  assert.deepEqual(a.pushAllow, ['a', 'b']);
  assert.ok(a.version < b.version && b.version < c.version);
  assert.deepEqual(c.clientOff, ['10.0.0.2']);
  assert.equal(seen.length, 3);
  assert.equal(decodeSwitches(JSON.parse(JSON.stringify(c))).ok, true, 'what meta sends decodes');
  assert.deepEqual(board.setPush({ stopped: false }).pushAllow, [], 'resuming clears the allow list');
});

test('switches - a session applies only newer states and matches address or node name', () => {
  const s = new SessionSwitches();
  const base = { pushAllow: [], publishBlacklist: ['x'], subscribeBlacklist: [] };
  const d = s.apply({ ...base, version: 2, pushStopped: true, clientOff: ['10.0.0.1', 'node-b'] });
  assert.deepEqual([...(d?.newlyOff ?? [])], ['10.0.0.1', 'node-b']);
  assert.equal(
    s.apply({ ...base, version: 1, pushStopped: false, clientOff: [] }),
    undefined,
    'older ignored',
  );
  assert.ok(s.isOff({ address: '10.0.0.1', nodeName: 'a' }));
  assert.ok(s.isOff({ address: '10.0.0.9', nodeName: 'node-b' }));
  assert.ok(!s.isOff({ address: '10.0.0.9', nodeName: 'a' }));
  assert.ok(!s.mayPush({ address: '10.0.0.9', nodeName: 'a' }));
  assert.ok(s.publishRefused('x'));
});

test('trace context - publish frames carry a validated traceparent', () => {
  const registrations: unknown[] = [];
  const good = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const ok = decodeAgentFrame({ type: 'publish', registrations, traceparent: good });
  assert.ok(ok.ok && ok.value.type === 'publish' && ok.value.traceparent === good);
  const zero = decodeAgentFrame({
    type: 'publish',
    registrations,
    traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
  });
  assert.deepEqual(!zero.ok && zero.errors.map((e) => e.path), ['traceparent']);
});
