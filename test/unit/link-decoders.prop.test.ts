/**
 * Properties of the link decoders (agent link and server links): arbitrary JSON and mutated valid
 * frames never throw, a refused hello maps only to documented codes, and valid frames round-trip.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  AGENT_LINK_NAME,
  PROTOCOL_VERSION,
  decodeAgentFrame,
  decodeSessionFrame,
  parseJsonFrame,
  type AgentFrame,
} from '../../proto/agent-link.js';
import { decodeOwnedPublisher } from '../../proto/cluster-records.js';
import { DATA_LINK } from '../../proto/data-link.js';
import { ERROR_TABLE, MeshregError } from '../../proto/errors.js';
import { decodeExportEdit, decodeFederationFile, FEDERATION_MEMBER } from '../../proto/federation.js';
import { FEDERATION_LINK } from '../../proto/federation-link.js';
import { META_LINK } from '../../proto/meta-link.js';
import { REPLICATION_LINK, decodeReplicaItem } from '../../proto/replication-link.js';
import {
  CLUSTER_PROTOCOL_VERSION,
  PAGE_METHOD,
  decodeLinkHello,
  decodePage,
  decodeRpcFrame,
  protocolMismatch,
  type Decoder,
  type LinkHello,
} from '../../proto/rpc.js';
import type { Decoded } from '../../proto/validate.js';
import { makeInstance } from '../support/fixtures.js';

const RUNS = { numRuns: 300 };

/** Every decoder of a contract: each method's params and result (or page item), each event's payload. */
function contractDecoders(contract: Readonly<Record<string, object>>): Decoder<unknown>[] {
  return Object.values(contract).flatMap((def) => {
    const d = def as { params?: Decoder<unknown>; result?: Decoder<unknown>; item?: Decoder<unknown> };
    const e = def as { decode?: Decoder<unknown> };
    return [d.params, d.result, d.item, e.decode].filter((x): x is Decoder<unknown> => x !== undefined);
  });
}

const DECODERS: readonly Decoder<unknown>[] = [
  decodeAgentFrame,
  decodeSessionFrame,
  decodeRpcFrame,
  PAGE_METHOD.params,
  PAGE_METHOD.result,
  (raw) => decodePage(raw, decodeOwnedPublisher),
  ...contractDecoders(META_LINK),
  ...contractDecoders(DATA_LINK),
  ...contractDecoders(REPLICATION_LINK),
  ...contractDecoders(FEDERATION_LINK),
  ...contractDecoders(FEDERATION_MEMBER),
  decodeFederationFile,
  decodeExportEdit,
];

test('link decoders - the properties reach every method and event of the three contracts', () => {
  for (const contract of [META_LINK, DATA_LINK, REPLICATION_LINK, FEDERATION_LINK, FEDERATION_MEMBER])
    for (const [name, def] of Object.entries<object>(contract)) {
      const want = 'decode' in def ? 1 : 2; // an event's payload; a method's params and result (or item)
      assert.equal(contractDecoders({ [name]: def }).length, want, name);
    }
});

/** What a hello turns into on either link: accepted, or the MeshregError that closes it. */
function helloOutcome(
  decoded: Decoded<{ protocolVersion: number }>,
  want: number,
  link: string,
): MeshregError | 'ok' {
  if (!decoded.ok) return new MeshregError('invalid_frame', 'bad hello');
  return protocolMismatch(link, decoded.value.protocolVersion, want) ?? 'ok';
}

function assertWellFormed(d: Decoded<unknown>): void {
  if (d.ok) return;
  assert.ok(d.errors.length > 0);
  for (const e of d.errors) {
    assert.equal(typeof e.path, 'string');
    assert.ok(e.path.length > 0);
    assert.equal(typeof e.message, 'string');
  }
}

const validHello = fc.record({
  type: fc.constant('hello' as const),
  protocolVersion: fc.constant(PROTOCOL_VERSION),
  nodeId: fc.string({ minLength: 1, maxLength: 128 }),
  nodeName: fc.string({ minLength: 1, maxLength: 256 }),
  token: fc.string({ maxLength: 64 }),
});

const validLinkHello = fc.record({
  role: fc.constantFrom('data' as const, 'session' as const, 'federation' as const),
  id: fc.string({ minLength: 1, maxLength: 256 }),
  url: fc.string({ maxLength: 512 }),
  protocolVersion: fc.constant(CLUSTER_PROTOCOL_VERSION),
  token: fc.string({ maxLength: 64 }),
});

/** Replaces one field of `value` with an arbitrary JSON value, or deletes it. */
function mutated<T extends object>(valid: fc.Arbitrary<T>): fc.Arbitrary<Record<string, unknown>> {
  return fc.tuple(valid, fc.nat(), fc.option(fc.jsonValue(), { nil: undefined })).map(([v, i, x]) => {
    const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(o);
    const key = keys[i % keys.length] ?? 'type';
    if (x === undefined) Reflect.deleteProperty(o, key);
    else o[key] = x;
    return o;
  });
}

test('link decoders - arbitrary JSON never throws and errors carry paths', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (raw) => {
      for (const decode of DECODERS) assertWellFormed(decode(raw));
    }),
    RUNS,
  );
});

test('link decoders - arbitrary text never throws through parseJsonFrame', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (text) => {
      const raw = parseJsonFrame(text);
      for (const decode of DECODERS) assertWellFormed(decode(raw));
    }),
    RUNS,
  );
});

test('link decoders - a mutated hello is accepted or refused with a documented code only', () => {
  const documented = new Set(['invalid_frame', 'unsupported_protocol']);
  fc.assert(
    fc.property(mutated(validHello), mutated(validLinkHello), (agent, link) => {
      const a = helloOutcome(
        decodeAgentFrame(agent) as Decoded<{ protocolVersion: number }>,
        PROTOCOL_VERSION,
        AGENT_LINK_NAME,
      );
      const l = helloOutcome(decodeLinkHello(link), CLUSTER_PROTOCOL_VERSION, 'cluster');
      for (const out of [a, l]) {
        if (out === 'ok') continue;
        assert.ok(out instanceof MeshregError);
        assert.ok(documented.has(out.code), out.code);
        assert.ok(out.closeCode === ERROR_TABLE.invalid_frame.ws || out.closeCode === 4002);
      }
    }),
    RUNS,
  );
});

test('link decoders - any number other than the version is unsupported_protocol (4002), a non-number is 4000', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.constant(0), fc.constant(-1)),
      fc.oneof(fc.string(), fc.boolean(), fc.array(fc.integer()), fc.constant(null)),
      (n, notNumber) => {
        const hello = { type: 'hello', nodeId: 'n', nodeName: 'a', token: 't' };
        const a = helloOutcome(
          decodeAgentFrame({ ...hello, protocolVersion: n }) as Decoded<{ protocolVersion: number }>,
          PROTOCOL_VERSION,
          AGENT_LINK_NAME,
        );
        const link = { role: 'data', id: 'd', protocolVersion: n };
        const l = helloOutcome(decodeLinkHello(link), CLUSTER_PROTOCOL_VERSION, 'cluster');
        if (n !== PROTOCOL_VERSION) assert.equal(a === 'ok' ? 'ok' : a.closeCode, 4002);
        if (n !== CLUSTER_PROTOCOL_VERSION) assert.equal(l === 'ok' ? 'ok' : l.closeCode, 4002);
        const bad = decodeAgentFrame({ ...hello, protocolVersion: notNumber });
        assert.equal(bad.ok, false);
        assert.equal(decodeLinkHello({ ...link, protocolVersion: notNumber }).ok, false);
      },
    ),
    RUNS,
  );
});

test('link decoders - valid frames round-trip through JSON', () => {
  const instance = fc
    .record({ id: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), port: fc.integer({ min: 1, max: 65535 }) })
    .map(({ id, port }) => makeInstance({ id, service: 'web', nodeAddress: '127.0.0.1', port }));
  const agentFrames: fc.Arbitrary<AgentFrame> = fc.oneof(
    validHello,
    fc.record({
      type: fc.constant('publish' as const),
      registrations: fc.array(fc.record({ instance, version: fc.integer({ min: 1 }) }), { maxLength: 5 }),
    }),
    fc.record({ type: fc.constant('ack' as const), service: fc.constant('web'), version: fc.nat() }),
    fc.record({ type: fc.constant('ping' as const), sentAt: fc.nat() }),
  );
  fc.assert(
    fc.property(agentFrames, validLinkHello, instance, (frame, link, inst) => {
      // Compared with plain objects: fast-check builds records without a prototype.
      const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
      assert.deepEqual(decodeAgentFrame(parseJsonFrame(JSON.stringify(frame))), {
        ok: true,
        value: plain(frame),
      });
      const l: LinkHello = link;
      assert.deepEqual(decodeLinkHello(plain(l)), { ok: true, value: plain(l) });
      const owned = { registrationId: `node-b/${inst.id}`, instance: inst, version: 1, owner: 's:1' };
      const page = { items: [owned], cursor: 'abc' };
      assert.deepEqual(decodePage(JSON.parse(JSON.stringify(page)), decodeOwnedPublisher), {
        ok: true,
        value: page,
      });
      const item = { slot: 3, key: 'web', version: 9, publisher: owned };
      assert.deepEqual(decodeReplicaItem(JSON.parse(JSON.stringify(item))), { ok: true, value: item });
    }),
    RUNS,
  );
});
