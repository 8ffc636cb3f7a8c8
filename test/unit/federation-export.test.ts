/**
 * The exporter of federation, over an in-memory link: who may import (a configured peer with its
 * token, never this data center's own name), what is subscribed and sent (the export list, whole
 * datums as `datum` notices and deltas as `delta` notices, acknowledged at once), what `digest` and `fetch` answer, and that
 * nothing qualified (another data center's copy) is ever exported: the no-relay rule.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { DatumView } from '../../proto/cluster-records.js';
import type { FederationConfig } from '../../proto/federation.js';
import { FEDERATION_LINK, type DatumNotice, type DeltaNotice } from '../../proto/federation-link.js';
import { CLUSTER_PROTOCOL_VERSION, type LinkHello } from '../../proto/rpc.js';
import { silentLogger } from '../../proto/runtime/log.js';
import type { DataApi } from '../../control-plane/link/data-api.js';
import { RpcPeer } from '../../control-plane/link/rpc-peer.js';
import { FederationExporter, type ExportPush } from '../../control-plane/federation/exporter.js';
import type { PushTarget } from '../../control-plane/session/push-subscriptions.js';
import { socketPair } from '../support/socket-pair.js';
import { waitFor } from '../support/wait.js';
import { makeInstance } from '../support/fixtures.js';

const hello = (id: string, token: string): LinkHello => ({
  role: 'federation',
  id,
  url: '',
  protocolVersion: CLUSTER_PROTOCOL_VERSION,
  token,
});

function config(exports: string[]): FederationConfig {
  return {
    version: 1,
    datacenter: 'dc1',
    peers: [
      { name: 'dc2', addresses: ['ws://127.0.0.1:1'], token: 'secret-2', exports },
      { name: 'dc3', addresses: ['ws://127.0.0.1:2'], token: 'secret-3', exports: [] },
    ],
  };
}

/** A push dispatcher that records subscriptions and acks, and lets the test send a frame. */
class RecordingPush implements ExportPush {
  readonly subscribed = new Map<string, PushTarget>();
  readonly acks: string[] = [];
  subscribe(target: PushTarget, key: string): void {
    this.subscribed.set(key, target);
  }
  unsubscribe(_target: PushTarget, key: string): void {
    this.subscribed.delete(key);
  }
  removeTarget(target: PushTarget, keys: Iterable<string>): void {
    for (const k of keys) this.unsubscribe(target, k);
  }
  ack(_target: PushTarget, key: string, version: number): void {
    this.acks.push(`${key}@${String(version)}`);
  }
}

const LOCAL: Record<string, DatumView> = {
  web: { key: 'web', version: 7, complete: true, instances: [] },
  secret: { key: 'secret', version: 9, complete: true, instances: [] },
};
const data = {
  id: 'data-1',
  fetch: (key: string) => Promise.resolve(LOCAL[key] ?? { key, version: 1, complete: true, instances: [] }),
  versions: (keys: readonly string[]) =>
    Promise.resolve(new Map(keys.filter((k) => k in LOCAL).map((k) => [k, LOCAL[k]?.version ?? 0]))),
} as unknown as DataApi;

function setup(t: TestContext, exports: string[]) {
  let cfg = config(exports);
  const push = new RecordingPush();
  const exporter = new FederationExporter({
    config: () => cfg,
    push,
    forKey: () => data,
    logger: silentLogger,
  });
  const { a, b } = socketPair();
  const opts = { callTimeoutMs: 1000, logger: silentLogger, pageBytes: 1 << 16 };
  const importer = new RpcPeer(a, opts);
  const served = new RpcPeer(b, opts);
  const notices: DatumNotice[] = [];
  const lists: string[][] = [];
  importer.on(FEDERATION_LINK.datum, (n) => notices.push(n));
  const deltas: DeltaNotice[] = [];
  importer.on(FEDERATION_LINK.delta, (n) => deltas.push(n));
  importer.on(FEDERATION_LINK.exports, (e) => lists.push([...e.services]));
  a.open();
  t.after(() => {
    importer.terminate();
  });
  return {
    exporter,
    push,
    importer,
    notices,
    deltas,
    lists,
    accept: () => exporter.policy().accepted(served, hello('dc2', 'secret-2')),
    reconfigure: (next: string[] | FederationConfig) => {
      cfg = Array.isArray(next) ? config(next) : next;
      exporter.configChanged();
    },
  };
}

test('federation export - only a configured peer with its token may import; never our own name', () => {
  const policy = new FederationExporter({
    config: () => config([]),
    push: new RecordingPush(),
    forKey: () => data,
    logger: silentLogger,
  }).policy();
  assert.deepEqual(policy.roles, ['federation']);
  assert.equal(policy.authorize(hello('dc2', 'secret-2')), undefined);
  assert.equal(policy.authorize(hello('dc3', 'secret-3')), undefined);
  assert.equal(policy.authorize(hello('dc2', 'secret-3'))?.code, 'unauthorized');
  assert.equal(policy.authorize(hello('dc9', 'secret-2'))?.code, 'unauthorized');
  assert.equal(policy.authorize(hello('dc2', ''))?.code, 'unauthorized');
  assert.equal(policy.authorize(hello('dc1', 'secret-2'))?.code, 'wrong_datacenter');
});

test('federation export - the export list is subscribed, sent, and followed when it changes', async (t) => {
  const s = setup(t, ['web']);
  s.accept();
  assert.deepEqual([...s.push.subscribed.keys()], ['web']);
  s.reconfigure(['api', 'web']);
  assert.deepEqual([...s.push.subscribed.keys()].sort(), ['api', 'web']);
  s.reconfigure(['api']);
  assert.deepEqual([...s.push.subscribed.keys()], ['api']);
  await waitFor('three export lists', () => s.lists.length === 3);
  assert.deepEqual(s.lists, [['web'], ['api', 'web'], ['api']]);
});

test('federation export - a pushed datum becomes a notice, acknowledged at once; a qualified one is never sent', async (t) => {
  const s = setup(t, ['web']);
  s.accept();
  const target = s.push.subscribed.get('web');
  assert.ok(target !== undefined);
  assert.equal(target.deltas, true, 'the dispatcher may send deltas: they become delta notices');
  const frame = (service: string, version: number): Buffer =>
    Buffer.from(JSON.stringify({ type: 'push', service, version, complete: true, instances: [] }));
  target.send(frame('web', 11));
  target.send(frame('web@dc3', 12));
  await waitFor('one notice', () => s.notices.length === 1);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.notices.length, 1);
  assert.equal(s.notices[0]?.datum.key, 'web');
  assert.equal(s.notices[0]?.datum.version, 11);
  assert.deepEqual(s.push.acks, ['web@11']);
  assert.equal(s.exporter.counts('dc2').noticesOut, 1);
  const upsert = makeInstance({ id: 'web-2', service: 'web' });
  target.send(
    Buffer.from(
      JSON.stringify({
        type: 'delta',
        service: 'web',
        base: 11,
        version: 13,
        complete: true,
        upserts: [upsert],
        removed: ['n/web-1'],
      }),
    ),
  );
  await waitFor('one delta notice', () => s.deltas.length === 1);
  assert.deepEqual(
    { ...s.deltas[0]?.delta, upserts: s.deltas[0]?.delta.upserts.map((i) => i.id) },
    { key: 'web', base: 11, version: 13, complete: true, upserts: ['web-2'], removed: ['n/web-1'] },
  );
  assert.deepEqual(s.push.acks, ['web@11', 'web@13']);
});

test('federation export - digest lists the exports only; fetch refuses what is not exported and any qualified key', async (t) => {
  const s = setup(t, ['web', 'never-registered']);
  s.accept();
  const digest = await s.importer.call(FEDERATION_LINK.digest, {});
  assert.deepEqual(digest.services, { web: 7, 'never-registered': 0 });
  assert.equal((await s.importer.call(FEDERATION_LINK.fetch, { key: 'web' })).version, 7);
  await assert.rejects(s.importer.call(FEDERATION_LINK.fetch, { key: 'secret' }), { code: 'forbidden' });
  // A qualified key does not even decode as a fetch (service names only): refused before the exporter.
  await assert.rejects(s.importer.call(FEDERATION_LINK.fetch, { key: 'web@dc3' }), {
    code: 'invalid_argument',
  });
});

test('federation export - a qualified name in the export list is never subscribed (no relay)', (t) => {
  const s = setup(t, ['web', 'web@dc3']);
  s.accept();
  assert.deepEqual([...s.push.subscribed.keys()], ['web']);
});

test('federation export - a peer removed from the configuration is disconnected', async (t) => {
  const s = setup(t, ['web']);
  s.accept();
  assert.equal(s.exporter.counts('dc2').importers, 1);
  s.reconfigure({ version: 2, datacenter: 'dc1', peers: [] });
  await waitFor('the importer closed and unsubscribed', () => s.push.subscribed.size === 0);
  assert.equal(s.exporter.counts('dc2').importers, 0);
});
