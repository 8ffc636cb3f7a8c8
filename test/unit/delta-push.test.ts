/**
 * Protocol 2 end to end in memory: the agent's real upstream code (AgentSync over UpstreamLink) on
 * one side of a socket pair, the session's real AgentConnection and PushDispatcher on the other, and
 * a scripted data server behind them whose datums the test sets.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { LocalServices } from '../../agent/local/local-services.js';
import { AgentSync } from '../../agent/upstream/sync.js';
import { ServiceView } from '../../agent/view/service-view.js';
import type { ChangeListener, DataApi, DataWatch, DatumView } from '../../control-plane/link/data-api.js';
import { AgentConnection } from '../../control-plane/session/agent-connection.js';
import { DataRouter } from '../../control-plane/session/data-router.js';
import { PushDispatcher } from '../../control-plane/session/push-dispatcher.js';
import { decodeSessionFrame, PROTOCOL_VERSION, type SessionFrame } from '../../proto/agent-link.js';
import type { Instance } from '../../proto/instance.js';
import { ok } from '../../proto/result.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { VersionClock } from '../../proto/version.js';
import { FakeConnectionHost, memoryTransport } from '../support/fake-connection-host.js';
import { FakeSessions, sentBy } from '../support/fake-session.js';
import { makeInstance, settle } from '../support/fixtures.js';
import { frameText } from '../../proto/runtime/link-socket.js';
import { socketPair } from '../support/socket-pair.js';

const ACK_TIMEOUT_MS = 100;

/** A data server whose datums the test sets; each set notifies the watching session. */
class ScriptedData implements DataApi {
  readonly id = 'data-1';
  readonly datums = new Map<string, DatumView>();
  readonly #listeners = new Set<ChangeListener>();
  #version = 100;

  /** Sets the datum of `key` at a new version and notifies; returns the version. */
  set(key: string, instances: readonly Instance[], complete = true): number {
    const version = ++this.#version;
    this.datums.set(key, { key, version, complete, instances });
    for (const l of this.#listeners) l.onChange([{ key, version }]);
    return version;
  }

  publish = () => Promise.resolve(ok([]));
  unpublish = () => Promise.resolve(ok([]));
  dropOwner = () => Promise.resolve();
  fetchCatalog = () => Promise.resolve({ version: 0, complete: true, services: {} });

  fetch(key: string): Promise<DatumView> {
    return Promise.resolve(this.datums.get(key) ?? { key, version: 0, complete: true, instances: [] });
  }

  versions(keys: readonly string[]): Promise<ReadonlyMap<string, number>> {
    return Promise.resolve(new Map(keys.map((k) => [k, this.datums.get(k)?.version ?? 0])));
  }

  watch(_session: string, listener: ChangeListener): DataWatch {
    this.#listeners.add(listener);
    return {
      interest: () => undefined,
      catalogInterest: () => undefined,
      close: () => this.#listeners.delete(listener),
    };
  }
}

/** One agent: its view, its sync, and every frame its session wrote to it (as sent on the wire). */
interface TestAgent {
  readonly view: ServiceView;
  readonly sync: AgentSync;
  /** Frames the session wrote, including dropped ones (marked). */
  readonly frames: { readonly frame: SessionFrame; readonly text: string; readonly dropped: boolean }[];
  /** How many instances of `web` the agent showed after each visible change. */
  readonly sizes: number[];
  count(): number;
}

interface Harness {
  readonly data: ScriptedData;
  readonly dispatcher: PushDispatcher;
  readonly host: FakeConnectionHost;
  /** Starts an agent watching `web`; `drop` decides which session frames never arrive. */
  agent(opts?: {
    cached?: { version: number; instances: Instance[] };
    drop?: (f: SessionFrame) => boolean;
  }): TestAgent;
  advance(ms: number): Promise<void>;
}

function harness(t: TestContext): Harness {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: Date.UTC(2025, 0, 1) });
  t.mock.method(performance, 'now', () => Date.now());
  const data = new ScriptedData();
  const router = new DataRouter();
  router.addServer(data);
  router.applyTable({
    epoch: 1,
    slotCount: 1,
    slots: [{ id: 0, leader: 'data-1', leaderEpoch: 1, followers: [] }],
  });
  const dispatcher = new PushDispatcher('session-1', router, {
    ackClock: () => performance.now(),
    coalesceMs: 0,
    ackTimeoutMs: ACK_TIMEOUT_MS,
    maxRetries: 3,
    reconcileIntervalMs: 3_600_000,
    logger: silentLogger,
  });
  const host = new FakeConnectionHost('secret', {}, dispatcher);
  const syncs: AgentSync[] = [];
  t.after(async () => {
    for (const s of syncs) s.stop();
    dispatcher.close();
    await settle();
  });
  let n = 0;
  const agent: Harness['agent'] = (opts = {}) => {
    const id = ++n;
    const nodeId = `node-${id}`;
    const sizes: number[] = [];
    const view: ServiceView = new ServiceView(nodeId, {
      onWatch: () => undefined,
      onWatchCatalog: () => undefined,
      localInstances: () => [],
      onChanged: () => sizes.push(view.instances('web').length),
    });
    if (opts.cached !== undefined) view.restore('web', opts.cached.version, opts.cached.instances);
    else view.ensure('web');
    const frames: TestAgent['frames'] = [];
    const sync = new AgentSync(
      new LocalServices(new VersionClock()),
      view,
      { nodeId, node: nodeId, address: '10.0.0.1', zone: '', region: '' },
      {
        link: {
          urls: ['ws://session/v1/agent-link'],
          token: 'secret',
          connectTimeoutMs: 10_000,
          maxFrameBytes: 1 << 24,
          backoff: { initialMs: 10, maxMs: 10, multiplier: 1, jitter: 0 },
          connect: () => {
            const { a, b } = socketPair();
            const transport = memoryTransport(b);
            const sendEncoded = transport.sendEncoded.bind(transport);
            // The test hook: a frame the session wrote that the network loses.
            transport.sendEncoded = (frame, written) => {
              const text = frame.toString('utf8');
              const d = decodeSessionFrame(JSON.parse(text));
              assert.ok(d.ok);
              const dropped = opts.drop?.(d.value) ?? false;
              frames.push({ frame: d.value, text, dropped });
              if (dropped) written?.();
              else sendEncoded(frame, written);
            };
            new AgentConnection(`conn-${id}`, transport, '127.0.0.1', id, host);
            setImmediate(() => {
              a.open();
            });
            return a;
          },
        },
        fullSyncIntervalMs: 3_600_000,
        logger: silentLogger,
      },
    );
    syncs.push(sync);
    sync.start();
    return { view, sync, frames, sizes, count: () => view.instances('web').length };
  };
  return {
    data,
    dispatcher,
    host,
    agent,
    advance: async (ms) => {
      t.mock.timers.tick(ms);
      await settle(10);
    },
  };
}

const instances = (count: number, port = 8080): Instance[] =>
  Array.from({ length: count }, (_, i) =>
    makeInstance({ id: `web-${i}`, service: 'web', nodeId: `host-${i % 7}`, port }),
  );

/** A drop rule that loses the first delta and nothing else. */
function firstDelta(): (f: SessionFrame) => boolean {
  let lost = false;
  return (f) => {
    if (f.type !== 'delta' || lost) return false;
    lost = true;
    return true;
  };
}

const kinds = (a: TestAgent): string[] =>
  a.frames.map((f) => {
    const fr = f.frame;
    const tag = f.dropped ? ' (lost)' : '';
    if (fr.type === 'delta') return `delta ${fr.base}->${fr.version}${tag}`;
    if (fr.type === 'push') return `push ${fr.version}${fr.complete ? '' : ' incomplete'}${tag}`;
    return fr.type;
  });

test('delta push - an agent holding the previous version gets only the change, the same bytes as every agent at that base', async (t) => {
  const h = harness(t);
  const list = instances(50);
  const v1 = h.data.set('web', list);
  const a = h.agent();
  const b = h.agent();
  await settle(20);
  assert.deepEqual(kinds(a), [`push ${v1}`]);
  assert.deepEqual(kinds(b), [`push ${v1}`]);

  const changed = list.map((i, n) => (n === 3 ? { ...i, port: 9999 } : i)).filter((_, n) => n !== 7);
  const v2 = h.data.set('web', changed);
  await settle(20);
  assert.deepEqual(kinds(a), [`push ${v1}`, `delta ${v1}->${v2}`]);
  const delta = a.frames[1];
  assert.equal(delta?.text, b.frames[1]?.text, 'one encoding, written to both');
  assert.ok(delta !== undefined && delta.frame.type === 'delta');
  assert.deepEqual(
    delta.frame.upserts.map((i) => `${i.id}:${i.port}`),
    ['web-3:9999'],
  );
  assert.deepEqual(delta.frame.removed, ['host-0/web-7']);
  assert.ok(delta.text.length * 10 < (a.frames[0]?.text.length ?? 0), 'the delta is far smaller');
  for (const agent of [a, b]) {
    assert.equal(agent.view.get('web')?.version, v2);
    assert.deepEqual(
      agent.view
        .instances('web')
        .map((i) => `${i.id}:${i.port}`)
        .sort(),
      changed.map((i) => `${i.id}:${i.port}`).sort(),
    );
  }
  assert.equal(h.dispatcher.stats.deltas, 2);
  assert.equal(h.dispatcher.unacknowledged, 0, 'both acknowledged');
  assert.ok(h.host.calls.includes(`ack web@${v2}`));
});

test('delta push - an unknown or too old base, or a delta no smaller than the datum, gets the whole datum', async (t) => {
  const h = harness(t);
  const v1 = h.data.set('web', instances(20));
  // A cached copy from before this session saw the service: its base is unknown here.
  const cached = h.agent({ cached: { version: v1 - 50, instances: instances(3) } });
  await settle(20);
  assert.deepEqual(kinds(cached), [`push ${v1}`]);
  assert.equal(cached.count(), 20);

  // Every instance changes: the delta would be as large as the datum.
  const v2 = h.data.set('web', instances(20, 7000));
  await settle(20);
  assert.deepEqual(kinds(cached), [`push ${v1}`, `push ${v2}`]);

  // More changes than the history keeps: an agent still at v2 is too far behind for a delta.
  const versions: number[] = [];
  for (let port = 1; port <= 9; port++) {
    versions.push(
      h.data.set('web', [...instances(19, 7000), makeInstance({ id: 'x', service: 'web', port })]),
    );
    await settle(10);
  }
  const late = h.agent({ cached: { version: v2, instances: instances(20, 7000) } });
  await settle(20);
  assert.deepEqual(kinds(late), [`push ${versions.at(-1) ?? 0}`]);
  assert.equal(late.count(), 20);
});

test('delta push - a lost delta is repaired from the acknowledged base once its ack is overdue', async (t) => {
  const h = harness(t);
  const list = instances(30);
  const v1 = h.data.set('web', list);
  const a = h.agent({ drop: firstDelta() });
  await settle(20);
  const v2 = h.data.set('web', [...list, makeInstance({ id: 'new', service: 'web' })]);
  await settle(20);
  assert.equal(a.view.get('web')?.version, v1, 'the delta never arrived');
  assert.equal(h.dispatcher.unacknowledged, 1);

  await h.advance(ACK_TIMEOUT_MS * 2);
  assert.deepEqual(kinds(a), [`push ${v1}`, `delta ${v1}->${v2} (lost)`, `delta ${v1}->${v2}`]);
  assert.equal(a.view.get('web')?.version, v2);
  assert.equal(a.count(), 31);
  assert.equal(h.dispatcher.unacknowledged, 0);
  assert.deepEqual(a.sizes, [30, 31], 'the list only grew');
});

test('delta push - a delta from another base is not applied; the agent asks again with the version it holds', async (t) => {
  const h = harness(t);
  const list = instances(30);
  const v1 = h.data.set('web', list);
  const a = h.agent({ drop: firstDelta() });
  await settle(20);
  const v2 = h.data.set('web', [...list, makeInstance({ id: 'n1', service: 'web' })]);
  await settle(20);
  // The next change arrives before the lost one is missed: its base is one the agent never held.
  const v3 = h.data.set('web', [
    ...list,
    makeInstance({ id: 'n1', service: 'web' }),
    makeInstance({ id: 'n2', service: 'web' }),
  ]);
  await settle(30);
  assert.deepEqual(kinds(a), [
    `push ${v1}`,
    `delta ${v1}->${v2} (lost)`,
    `delta ${v2}->${v3}`,
    `delta ${v1}->${v3}`,
  ]);
  assert.equal(a.sync.counters.deltasRefused, 1);
  assert.ok(h.host.calls.includes(`subscribe web@${v1}`), 'asked again from the version held');
  assert.equal(a.view.get('web')?.version, v3);
  assert.equal(a.count(), 32);
  assert.deepEqual(a.sizes, [30, 32]);
});

test('delta push - an incomplete datum never reaches an agent holding a copy, whose list never shrinks', async (t) => {
  const h = harness(t);
  const full = instances(10);
  const v1 = h.data.set('web', full);
  const holder = h.agent({ cached: { version: v1, instances: full } });
  await settle(20);
  assert.deepEqual(kinds(holder), [], 'already current');

  // The data layer rebuilds: what it serves meanwhile is missing instances.
  h.data.set('web', full.slice(0, 2), false);
  const fresh = h.agent();
  await settle(20);
  const v3 = h.data.set('web', full.slice(0, 5), false);
  await settle(20);
  assert.deepEqual(kinds(holder), [], 'nothing incomplete for an agent with a copy');
  assert.equal(holder.count(), 10);
  assert.deepEqual(
    kinds(fresh).map((k) => k.replace(/\d+/g, 'v')),
    ['push v incomplete', 'push v incomplete'],
    'an agent holding nothing gets what there is',
  );
  assert.ok(kinds(fresh).at(-1)?.includes(String(v3)));

  const v4 = h.data.set('web', [...full, makeInstance({ id: 'web-10', service: 'web' })]);
  await settle(20);
  assert.deepEqual(kinds(holder), [`delta ${v1}->${v4}`]);
  assert.equal(holder.count(), 11);
  assert.deepEqual(holder.sizes, [10, 11], 'restored, then grew: never shrank');
  assert.ok(holder.frames.every((f) => f.frame.type !== 'push' || f.frame.complete));
  assert.equal(fresh.count(), 11);
});

test('delta push - a protocol-1 agent on the same session gets whole pushes only and acks one by one', async (t) => {
  const h = harness(t);
  const list = instances(10);
  const v1 = h.data.set('web', list);
  const modern = h.agent();
  const { a, b } = socketPair();
  const old = new AgentConnection('conn-old', memoryTransport(b), '127.0.0.1', 1, h.host);
  const received: SessionFrame[] = [];
  a.on('message', (raw) => {
    const d = decodeSessionFrame(JSON.parse(frameText(raw)));
    assert.ok(d.ok);
    received.push(d.value);
    if (d.value.type === 'welcome')
      a.send(JSON.stringify({ type: 'subscribe', services: [{ service: 'web' }] }));
    if (d.value.type === 'push')
      a.send(JSON.stringify({ type: 'ack', service: 'web', version: d.value.version }));
  });
  a.open();
  a.send(
    JSON.stringify({ type: 'hello', protocolVersion: 1, nodeId: 'old', nodeName: 'old', token: 'secret' }),
  );
  await settle(20);
  const v2 = h.data.set('web', [...list, makeInstance({ id: 'n', service: 'web' })]);
  await settle(20);
  assert.deepEqual(
    received.map((f) =>
      f.type === 'welcome' ? `welcome ${f.protocolVersion}` : `${f.type} ${'version' in f ? f.version : ''}`,
    ),
    ['welcome 1', `push ${v1}`, `push ${v2}`],
  );
  assert.equal(old.deltas, false);
  assert.deepEqual(kinds(modern), [`push ${v1}`, `delta ${v1}->${v2}`]);
  assert.equal(modern.count(), 11);
  assert.equal(h.dispatcher.unacknowledged, 0, 'both kinds of ack were taken');
});

test('delta push - an agent refused with 4002 dials the same session again speaking the previous protocol', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const sessions = new FakeSessions();
  const view = new ServiceView('node-1', {
    onWatch: () => undefined,
    onWatchCatalog: () => undefined,
    localInstances: () => [],
    onChanged: () => undefined,
  });
  view.ensure('web');
  const sync = new AgentSync(
    new LocalServices(new VersionClock()),
    view,
    { nodeId: 'node-1', node: 'n', address: '10.0.0.1', zone: '', region: '' },
    {
      link: {
        urls: ['ws://old/v1/agent-link', 'ws://other/v1/agent-link'],
        token: 'secret',
        connectTimeoutMs: 1000,
        maxFrameBytes: 1 << 20,
        backoff: { initialMs: 5000, maxMs: 5000, multiplier: 1, jitter: 0 },
        connect: sessions.connect,
      },
      fullSyncIntervalMs: 3_600_000,
      logger: silentLogger,
    },
  );
  t.after(() => {
    sync.stop();
  });
  sync.start();
  const first = await sessions.open();
  assert.deepEqual(sentBy(first)[0], {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    nodeId: 'node-1',
    nodeName: 'n',
    token: 'secret',
  });
  await sessions.close(
    4002,
    `unsupported_protocol: agent link protocol ${PROTOCOL_VERSION} is not supported (want ${PROTOCOL_VERSION - 1})`,
  );
  t.mock.timers.tick(0);
  await settle();
  const second = await sessions.open();
  assert.deepEqual(
    sessions.urls,
    ['ws://old/v1/agent-link', 'ws://old/v1/agent-link'],
    'the same session, at once',
  );
  assert.equal((sentBy(second)[0] as { protocolVersion: number }).protocolVersion, PROTOCOL_VERSION - 1);
  second.session.send(
    JSON.stringify({
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION - 1,
      sessionId: 's',
      sessions: [],
      pingIntervalMs: 60_000,
    }),
  );
  await settle();
  second.session.send(
    JSON.stringify({ type: 'push', service: 'web', version: 3, complete: true, instances: [] }),
  );
  await settle();
  assert.equal(sync.state, 'open');
  assert.deepEqual(
    sentBy(second).at(-1),
    { type: 'acks', acks: [{ service: 'web', version: 3 }] },
    'protocol 2 acks',
  );
});
