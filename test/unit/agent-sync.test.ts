import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { LocalServices, type ServiceDefinition } from '../../agent/local/local-services.js';
import { AgentSync } from '../../agent/upstream/sync.js';
import { ServiceView } from '../../agent/view/service-view.js';
import type { AgentFrame } from '../../proto/agent-link.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { VersionClock } from '../../proto/version.js';
import { settle } from '../support/fixtures.js';
import { FakeSessions, send, sentBy, type Dial } from '../support/fake-session.js';

const NODE = { nodeId: 'node-id-1', node: 'node-1', address: '10.0.0.1', zone: '', region: '' };
const BACKOFF_MS = 100;

function def(id: string, name: string): ServiceDefinition {
  return {
    id,
    name,
    tags: [],
    address: '10.0.0.1',
    port: 8080,
    meta: {},
    weights: { passing: 1, warning: 1 },
    enableTagOverride: false,
  };
}

interface Harness {
  readonly sync: AgentSync;
  readonly local: LocalServices;
  readonly view: ServiceView;
  readonly sessions: FakeSessions;
  advance(ms: number): Promise<void>;
}

function harness(t: TestContext): Harness {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const local = new LocalServices(new VersionClock());
  const view = new ServiceView(NODE.nodeId, {
    onWatch: () => undefined,
    onWatchCatalog: () => undefined,
    localInstances: () => [],
    onChanged: () => undefined,
  });
  const sessions = new FakeSessions();
  const sync = new AgentSync(local, view, NODE, {
    link: {
      urls: ['ws://s1/v1/agent-link', 'ws://s2/v1/agent-link'],
      token: 'secret',
      connectTimeoutMs: 1000,
      maxFrameBytes: 1 << 20,
      backoff: { initialMs: BACKOFF_MS, maxMs: BACKOFF_MS, multiplier: 1, jitter: 0 },
      connect: sessions.connect,
    },
    fullSyncIntervalMs: 3_600_000,
    logger: silentLogger,
  });
  t.after(async () => {
    sync.stop();
    await settle();
  });
  return {
    sync,
    local,
    view,
    sessions,
    advance: async (ms) => {
      t.mock.timers.tick(ms);
      await settle();
    },
  };
}

/** What the agent sent on `d` after its hello, as `type` plus the items that identify each frame. */
function summary(d: Dial): string[] {
  return sentBy(d)
    .slice(1)
    .map((f: AgentFrame) => {
      switch (f.type) {
        case 'publish':
          return `publish ${f.registrations.map((r) => `${r.instance.id}@${r.version}`).join(',')}`;
        case 'unpublish':
          return `unpublish ${f.registrations.map((r) => `${r.id}@${r.version}`).join(',')}`;
        case 'subscribe':
          return `subscribe ${f.services.map((s) => `${s.service}@${String(s.knownVersion)}`).join(',')}`;
        case 'ack':
          return `ack ${f.service}@${f.version}`;
        case 'acks':
          return `acks ${f.acks.map((a) => `${a.service}@${a.version}`).join(',')}`;
        default:
          return f.type;
      }
    });
}

test('agent sync - every (re)connect re-sends the whole state and re-subscribes with the versions held', async (t) => {
  const h = harness(t);
  const web = h.local.register(def('web-1', 'web'));
  h.local.register(def('db-1', 'db'));
  const gone = h.local.deregister('db-1');
  h.view.ensure('web');
  h.view.ensure('api');
  h.view.applyPush({ type: 'push', service: 'web', version: 7, complete: true, instances: [] });
  h.sync.start();
  const first = await h.sessions.accept();
  assert.deepEqual(summary(first), [
    `publish web-1@${web.version}`,
    `unpublish db-1@${String(gone?.version)}`,
    'subscribe web@7,api@undefined',
  ]);

  await send(first, { type: 'push', service: 'api', version: 3, complete: true, instances: [] });
  assert.equal(summary(first).at(-1), 'acks api@3', 'a push is acknowledged by version');

  // Nothing was confirmed: after a reconnect everything goes again, with the version now held.
  await h.sessions.close(1001, 'shutting_down');
  await h.advance(BACKOFF_MS);
  const second = await h.sessions.accept();
  assert.deepEqual(summary(second), [
    `publish web-1@${web.version}`,
    `unpublish db-1@${String(gone?.version)}`,
    'subscribe web@7,api@3',
  ]);
  assert.deepEqual(h.sessions.urls, ['ws://s1/v1/agent-link', 'ws://s2/v1/agent-link']);
});

test('agent sync - a record is in sync only once its version is confirmed; a tombstone stays until confirmed', async (t) => {
  const h = harness(t);
  const v1 = h.local.register(def('web-1', 'web')).version;
  h.sync.start();
  const d = await h.sessions.accept();
  assert.equal(h.local.get('web-1')?.synced, false, 'sent, not yet confirmed');

  const v2 = h.local.register(def('web-1', 'web')).version;
  await settle();
  assert.equal(summary(d).at(-1), `publish web-1@${v2}`, 'a local change goes out as a partial sync');
  await send(d, { type: 'confirm', results: [{ op: 'publish', id: 'web-1', version: v1 }] });
  assert.equal(h.local.get('web-1')?.synced, false, 'confirming an older version does not count');
  await send(d, { type: 'confirm', results: [{ op: 'publish', id: 'web-1', version: v2 }] });
  assert.equal(h.local.get('web-1')?.synced, true);

  const t1 = h.local.deregister('web-1');
  await settle();
  assert.equal(summary(d).at(-1), `unpublish web-1@${String(t1?.version)}`);
  const refused = { code: 'unavailable', message: 'no leader' };
  await send(d, {
    type: 'confirm',
    results: [{ op: 'unpublish', id: 'web-1', version: t1?.version ?? 0, error: refused }],
  });
  assert.deepEqual(h.local.tombstones(), [t1], 'a refused removal keeps its tombstone');
  assert.equal(h.sync.counters.refusals, 1);
  await send(d, { type: 'confirm', results: [{ op: 'unpublish', id: 'web-1', version: t1?.version ?? 0 }] });
  assert.deepEqual(h.local.tombstones(), [], 'the confirmed removal drops it');
  assert.equal(h.sync.counters.confirms, 3, 'every confirm counts, even of a version since replaced');
});

test('agent sync - the link state is reported to listeners in order, and changes made offline go out on reconnect', async (t) => {
  const h = harness(t);
  const seen: string[] = [];
  h.sync.onStateChange((s) => seen.push(s));
  h.sync.start();
  await h.sessions.accept();
  assert.equal(h.sync.status().connected, true);
  await h.sessions.close(1006);
  const offline = h.local.register(def('api-1', 'api'));
  await settle();
  assert.equal(h.sync.status().connected, false);
  await h.advance(BACKOFF_MS);
  const d = await h.sessions.accept();
  assert.deepEqual(summary(d), [`publish api-1@${offline.version}`]);
  assert.deepEqual(seen, ['connecting', 'open', 'backoff', 'connecting', 'open']);
});
