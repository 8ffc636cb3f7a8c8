/**
 * Property tests of the decoders that are not link frames (those live in link-decoders.prop.test.ts):
 * random and mutated input never makes a decoder throw, and every valid value survives the trip
 * through JSON and back unchanged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { readCheck } from '../../agent/consul/consul-check.js';
import { decodeDiscoveryRequest } from '../../agent/eds/discovery-request.js';
import { parseWait } from '../../agent/eds/rest-gateway.js';
import { parseFlag } from '../../agent/http/blocking.js';
import { decodeServiceDefinition } from '../../agent/consul/consul-register.js';
import { parseDefinitions } from '../../agent/local/definition-files.js';
import { decodeLocalState } from '../../agent/local/local-services.js';
import { decodeCachedView } from '../../agent/view/view-cache.js';
import { MeshregError } from '../../proto/errors.js';
import { decodeInstance } from '../../proto/instance.js';
import { decodeSlotTableInto } from '../../proto/slot-table.js';
import { decodeDrain, decodeListEdit, decodePushSwitch, decodeSwitches } from '../../proto/switches.js';
import { readTraceparent } from '../../proto/trace-context.js';
import { Issues, type Decoded } from '../../proto/validate.js';
import { anyJson, anyText, instance, mutated, serviceName, text } from '../support/arbitraries.js';

const RUNS = { numRuns: 300 };

/** A decoder's answer is well-formed: a value, or a non-empty list of errors each with path and message. */
function wellFormed(d: Decoded<unknown>): void {
  if (d.ok) return;
  assert.ok(d.errors.length > 0);
  for (const e of d.errors)
    assert.ok(typeof e.path === 'string' && e.path !== '' && typeof e.message === 'string');
}

const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;

test('instance - property: valid instances round-trip; any other input never throws', () => {
  fc.assert(
    fc.property(instance, (i) => {
      const d = decodeInstance(roundTrip(i));
      assert.ok(d.ok, d.ok ? '' : JSON.stringify(d.errors));
      assert.deepEqual(d.value, roundTrip(i));
    }),
    RUNS,
  );
  fc.assert(
    fc.property(fc.oneof(anyJson, mutated(instance), fc.anything()), (raw) => {
      wellFormed(decodeInstance(raw));
    }),
    RUNS,
  );
});

const slotTable = fc.tuple(fc.nat(1e9), fc.constantFrom(1, 2, 4, 8)).chain(([epoch, slotCount]) =>
  fc.record({
    epoch: fc.constant(epoch),
    slotCount: fc.constant(slotCount),
    slots: fc.tuple(
      ...Array.from({ length: slotCount }, (_, id) =>
        fc.record({
          id: fc.constant(id),
          leader: text(16),
          leaderEpoch: fc.nat(1e6),
          followers: fc.array(text(16, 1), { maxLength: 3 }),
        }),
      ),
    ),
  }),
);

test('slot table - property: valid tables round-trip; mutated ones never throw', () => {
  fc.assert(
    fc.property(slotTable, (t) => {
      const issues = new Issues();
      const back = decodeSlotTableInto(issues, roundTrip(t) as Record<string, unknown>);
      assert.deepEqual(issues.list, []);
      assert.deepEqual(back, roundTrip(t));
    }),
    RUNS,
  );
  fc.assert(
    fc.property(mutated(slotTable), (raw) => {
      const issues = new Issues();
      const o = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
      const back = decodeSlotTableInto(issues, o);
      assert.ok(back !== undefined || issues.list.length > 0);
    }),
    RUNS,
  );
});

const switches = fc.record({
  version: fc.nat(),
  pushStopped: fc.boolean(),
  pushAllow: fc.array(fc.stringMatching(/^[a-z0-9.-]{1,20}$/), { maxLength: 3 }),
  clientOff: fc.array(fc.stringMatching(/^[a-z0-9.-]{1,20}$/), { maxLength: 3 }),
  publishBlacklist: fc.array(serviceName, { maxLength: 3 }),
  subscribeBlacklist: fc.array(serviceName, { maxLength: 3 }),
});

test('switches - property: valid switch states round-trip; any input never throws', () => {
  fc.assert(
    fc.property(switches, (s) => {
      const d = decodeSwitches(roundTrip(s));
      assert.ok(d.ok, d.ok ? '' : JSON.stringify(d.errors));
      assert.deepEqual(d.value, roundTrip(s));
    }),
    RUNS,
  );
  fc.assert(
    fc.property(fc.oneof(anyJson, mutated(switches)), (raw) => {
      wellFormed(decodeSwitches(raw));
      wellFormed(decodePushSwitch(raw));
      wellFormed(decodeListEdit(raw, 'clients'));
      wellFormed(decodeListEdit(raw, 'services'));
      wellFormed(decodeDrain(raw));
    }),
    RUNS,
  );
});

test('trace context - property: any value is a valid traceparent or an issue, never a throw', () => {
  const hex = (n: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
  const valid = fc
    .tuple(hex(2), hex(32), hex(16), hex(2))
    .filter(([, t, p]) => !/^0+$/.test(t) && !/^0+$/.test(p))
    .map((parts) => parts.join('-'));
  fc.assert(
    fc.property(valid, (tp) => {
      const issues = new Issues();
      assert.equal(readTraceparent(issues, tp, 'traceparent'), tp);
      assert.deepEqual(issues.list, []);
    }),
    RUNS,
  );
  fc.assert(
    fc.property(fc.oneof(anyText, anyJson), (raw) => {
      const issues = new Issues();
      const v = readTraceparent(issues, raw, 'traceparent');
      assert.ok(v === undefined || (typeof v === 'string' && v.length === 55));
    }),
    RUNS,
  );
});

/** A Consul register body, in one of the key spellings Consul accepts. */
const registerBody = fc
  .record({
    Name: serviceName,
    ID: text(40, 1).filter((id) => !id.includes('/') && id !== '.' && id !== '..'),
    Tags: fc.array(text(20), { maxLength: 4 }),
    Address: text(30),
    Port: fc.integer({ min: 0, max: 65535 }),
    Meta: fc.dictionary(text(16, 1), text(20), { maxKeys: 4 }),
    Weights: fc.record({
      Passing: fc.integer({ min: 1, max: 65535 }),
      Warning: fc.integer({ min: 0, max: 65535 }),
    }),
    EnableTagOverride: fc.boolean(),
  })
  .chain((b) =>
    fc.constantFrom(
      b,
      Object.fromEntries(Object.entries(b).map(([k, v]) => [k.toLowerCase(), v])),
      Object.fromEntries(
        Object.entries(b).map(([k, v]) => [k.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase(), v]),
      ),
    ),
  );

test('consul register - property: valid bodies decode to what was sent, in every key spelling', () => {
  fc.assert(
    fc.property(registerBody, (body) => {
      body = roundTrip(body) as typeof body;
      const d = decodeServiceDefinition(body);
      assert.ok(d.ok, d.ok ? '' : JSON.stringify(d.errors));
      const get = (k: string): unknown =>
        Object.entries(body).find(([key]) => key.replace(/_/g, '').toLowerCase() === k)?.[1];
      const w = get('weights') as { Passing: number; Warning: number };
      assert.deepEqual(d.value.def, {
        id: get('id'),
        name: get('name'),
        tags: get('tags'),
        address: get('address'),
        port: get('port'),
        meta: get('meta'),
        weights: { passing: w.Passing, warning: w.Warning },
        enableTagOverride: get('enabletagoverride'),
      });
    }),
    RUNS,
  );
});

test('consul decoding - property: random and mutated bodies never throw, and errors name fields', () => {
  const ctx = { serviceId: 'web-1', serviceName: 'web', index: 0, count: 1 };
  const rules = { minIntervalMs: 1000, minDeregisterMs: 60_000 };
  const checkBody = fc.record({
    HTTP: fc.constantFrom('http://127.0.0.1:1/', 'https://[::1]:2/x'),
    Interval: fc.constantFrom('10s', '1m', 5e9),
    Timeout: fc.constantFrom('1s', '0'),
    Header: fc.dictionary(text(10, 1), fc.array(text(10), { maxLength: 2 }), { maxKeys: 2 }),
  });
  fc.assert(
    fc.property(fc.oneof(anyJson, mutated(registerBody), mutated(checkBody), fc.anything()), (raw) => {
      wellFormed(decodeServiceDefinition(raw));
      const issues = new Issues();
      const c = readCheck(issues, raw, 'Check', ctx, rules);
      assert.ok(c !== undefined || issues.list.length > 0);
      const files = parseDefinitions(JSON.stringify(raw) ?? 'null');
      assert.ok(typeof files === 'string' || Array.isArray(files));
      wellFormed(decodeDiscoveryRequest(raw));
      decodeCachedView(raw);
      decodeLocalState(raw);
    }),
    { numRuns: 500 },
  );
});

test('agent query decoding - property: wait and flags parse or fail with the documented error', () => {
  fc.assert(
    fc.property(anyText, fc.nat(600_000), (raw, max) => {
      const w = parseWait(raw, max);
      if (typeof w === 'number') assert.ok(w >= 0 && w <= max);
      else assert.equal(w.path, 'wait');
      try {
        assert.equal(typeof parseFlag(new URLSearchParams({ passing: raw }), 'passing'), 'boolean');
      } catch (e) {
        assert.ok(
          e instanceof MeshregError && e.code === 'invalid_argument' && e.fields[0]?.path === 'passing',
        );
      }
    }),
    { numRuns: 1000 },
  );
});

test('parseDefinitions - property: any text is registrations or a reason, never a throw', () => {
  fc.assert(
    fc.property(fc.oneof(anyText, fc.string({ maxLength: 200 })), (t) => {
      const r = parseDefinitions(t);
      assert.ok(typeof r === 'string' || Array.isArray(r));
    }),
    RUNS,
  );
});
