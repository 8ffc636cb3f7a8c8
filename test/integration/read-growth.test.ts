/**
 * Reads leave nothing behind: a real `meshreg dev` (control plane + agent) and a second agent.
 * Thousands of reads of names nobody registered must not grow the data server, the session or the
 * agent once the (short) idle time has passed; what is in use stays watched and current; the
 * session's per-agent subscription cap refuses with `limit_exceeded` and keeps the connection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, decodeSessionFrame, type SessionFrame } from '../../proto/agent-link.js';
import { httpBase } from '../support/admin.js';
import { header, http } from '../support/http.js';
import { GC_ENV, measureAfterGc, startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'growth-token';
const IDLE_MS = 1500;
const READS = 3000;
const CONCURRENCY = 20;
const SUB_CAP = 3100;
const MiB = 1024 * 1024;
/**
 * Allowed growth per round of READS unknown names, measured after a full GC in the child. Before
 * reads were bounded, one round left ~18 MiB behind (a datum, a subscription and a watch per name).
 */
const HEAP_ROUND_BOUND_BYTES = 3 * MiB;
/** RSS includes allocator slack the GC does not return at once: a looser bound, once the heap is warm. */
const RSS_ROUND_BOUND_BYTES = 16 * MiB;
const CLA = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

interface Counts {
  readonly datums: number;
  readonly interests: number;
  readonly subscriptions: number;
  readonly watched: number;
}

interface Memory {
  readonly heapBytes: number;
  readonly rssBytes: number;
}

interface Watched {
  readonly Service: string;
  readonly Version: number;
}

/** Reads `names` through the agent's Consul API, at most CONCURRENCY at a time; each must be 200 []. */
async function readAll(agent: string, names: readonly string[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++] ?? '';
      const r = await http('GET', `${agent}/v1/health/service/${name}`);
      assert.equal(r.status, 200, `${name}: ${r.text}`);
      assert.deepEqual(r.body, []);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

describe('read growth', () => {
  let dev: Started;
  let other: Started;
  const cleanups: (() => Promise<void>)[] = [];
  const agent = (): string => dev.addresses['agent'] ?? '';
  const otherAgent = (): string => other.addresses['agent'] ?? '';
  const sessionUrl = (): string => dev.addresses['session'] ?? '';

  async function watched(): Promise<Watched[]> {
    const r = await http('GET', `${agent()}/v1/meshreg/sync-status`);
    return (r.body as { watched: Watched[] }).watched;
  }

  async function counts(): Promise<Counts> {
    const d = (await http('GET', `${httpBase(dev.addresses['data'] ?? '')}/health`)).body as Counts;
    const s = (await http('GET', `${httpBase(sessionUrl())}/health`)).body as {
      push: { subscriptions: number };
    };
    return {
      datums: d.datums,
      interests: d.interests,
      subscriptions: s.push.subscriptions,
      watched: (await watched()).length,
    };
  }

  before(async () => {
    const a = await tempDir();
    const b = await tempDir();
    cleanups.push(a.cleanup, b.cleanup);
    const env = {
      MESHREG_TOKEN: TOKEN,
      MESHREG_LOG_LEVEL: 'warn',
      MESHREG_AGENT_WATCH_IDLE_MS: String(IDLE_MS),
      MESHREG_AGENT_FIRST_READ_WAIT_MS: '500',
      MESHREG_SESSION_MAX_SUBSCRIPTIONS_PER_AGENT: String(SUB_CAP),
      // The frame-rate limit is not under test here: thousands of first reads are thousands of frames.
      MESHREG_SESSION_MAX_FRAMES_PER_SEC: '50000',
      MESHREG_SESSION_FRAME_BURST: '50000',
    };
    dev = await startMeshreg('dev', { ...env, ...GC_ENV, MESHREG_AGENT_DATA_DIR: a.dir });
    other = await startMeshreg('agent', {
      ...env,
      MESHREG_AGENT_DATA_DIR: b.dir,
      MESHREG_AGENT_UPSTREAM: sessionUrl(),
      MESHREG_NODE_NAME: 'other',
    });
    await waitFor('data warm-up over', async () => {
      const h = (await http('GET', `${httpBase(dev.addresses['data'] ?? '')}/health`)).body as {
        warming: boolean;
        migrating: number;
      };
      return !h.warming && h.migrating === 0;
    });
  });

  after(async () => {
    await other.stop();
    await dev.stop();
    for (const c of cleanups) await c();
  });

  test('read growth - unknown names read through the agent leave nothing once idle', async () => {
    const base = await counts();
    const settled = async (): Promise<Counts | undefined> => {
      const c = await counts();
      return JSON.stringify(c) === JSON.stringify(base) ? c : undefined;
    };
    const round = async (tag: string): Promise<Memory> => {
      const names = Array.from({ length: READS }, (_, i) => `ghost-${tag}-${i}`);
      await readAll(agent(), names);
      const during = await counts();
      assert.equal(during.datums, base.datums, 'reads never store a datum');
      assert.ok(during.watched > base.watched, 'the reads were watched for a while');
      await waitFor(() => `counts back to ${JSON.stringify(base)}`, settled, 30_000, 100);
      return measureAfterGc(dev);
    };
    const m0 = await measureAfterGc(dev);
    const m1 = await round('a');
    const m2 = await round('b');
    const mib = (n: number): string => (n / MiB).toFixed(1);
    const line =
      `after GC: heap ${mib(m0.heapBytes)} -> ${mib(m1.heapBytes)} -> ${mib(m2.heapBytes)} MiB, ` +
      `rss ${mib(m0.rssBytes)} -> ${mib(m1.rssBytes)} -> ${mib(m2.rssBytes)} MiB`;
    process.stdout.write(`# ${READS} unknown names per round; ${line}\n`);
    assert.ok(m1.heapBytes - m0.heapBytes < HEAP_ROUND_BOUND_BYTES, `first round: ${line}`);
    assert.ok(m2.heapBytes - m1.heapBytes < HEAP_ROUND_BOUND_BYTES, `second round: ${line}`);
    assert.ok(m2.rssBytes - m1.rssBytes < RSS_ROUND_BOUND_BYTES, `second round RSS: ${line}`);
  });

  test('read growth - a watch with a blocking query in progress is not evicted', async () => {
    const first = await http('GET', `${agent()}/v1/health/service/held`);
    const index = header(first, 'x-consul-index');
    const blocking = http('GET', `${agent()}/v1/health/service/held?index=${index}&wait=5s`);
    // Past the idle time plus a sweep: an unheld watch would be gone by now.
    await new Promise((r) => setTimeout(r, IDLE_MS * 2 + 500));
    assert.ok(
      (await watched()).some((w) => w.Service === 'held'),
      'still watched while blocking',
    );
    assert.equal((await blocking).status, 200);
    await waitFor('held evicted once the query ended', async () =>
      (await watched()).every((w) => w.Service !== 'held'),
    );
  });

  test('read growth - a service an xDS poller uses stays watched and keeps getting pushes', async () => {
    const reg = (id: string): Promise<unknown> =>
      http('PUT', `${otherAgent()}/v1/agent/service/register`, {
        Name: 'live',
        ID: id,
        Address: '127.0.0.1',
        Port: 9000 + Number(id.slice(-1)),
      });
    await reg('live-1');
    const req = { node: { id: 'envoy-1', cluster: 'edge' }, resource_names: ['live'], type_url: CLA };
    const endpoints = async (): Promise<number> => {
      const r = await http('POST', `${agent()}/v3/discovery:endpoints`, req);
      const body = r.body as { resources?: { endpoints?: { lb_endpoints?: unknown[] }[] }[] } | undefined;
      return (body?.resources?.[0]?.endpoints ?? []).reduce((n, e) => n + (e.lb_endpoints?.length ?? 0), 0);
    };
    await waitFor('live-1 over EDS', async () => (await endpoints()) === 1);
    await new Promise((r) => setTimeout(r, IDLE_MS * 2 + 500));
    assert.ok(
      (await watched()).some((w) => w.Service === 'live'),
      'kept by its xDS subscriber',
    );
    await reg('live-2');
    // Only a push can bring live-2: the agent did not subscribe again.
    const r = await http('GET', `${agent()}/v1/meshreg/sync-status`);
    assert.ok((r.body as { watched: Watched[] }).watched.some((w) => w.Service === 'live'));
    await waitFor('live-2 pushed', async () => (await endpoints()) === 2);
  });

  test('read growth - an evicted service read again gets its current instances, versions never going back', async () => {
    const reg = (id: string): Promise<unknown> =>
      http('PUT', `${otherAgent()}/v1/agent/service/register`, { Name: 'comeback', ID: id, Port: 80 });
    await reg('comeback-1');
    const one = await waitFor('comeback-1 visible', async () => {
      const r = await http('GET', `${agent()}/v1/health/service/comeback`);
      return (r.body as unknown[]).length === 1 ? r : undefined;
    });
    assert.equal(one.status, 200);
    const v1 = (await watched()).find((w) => w.Service === 'comeback')?.Version ?? 0;
    assert.ok(v1 > 0);
    await waitFor('comeback evicted', async () => (await watched()).every((w) => w.Service !== 'comeback'));
    await reg('comeback-2');
    // The first read after eviction waits for the first push, like any first read.
    const two = await http('GET', `${agent()}/v1/health/service/comeback`);
    assert.equal((two.body as unknown[]).length, 2, 'the current instances, not a stale copy');
    const v2 = (await watched()).find((w) => w.Service === 'comeback')?.Version ?? 0;
    assert.ok(v2 > v1, `version ${v2} after eviction is above ${v1} before`);
  });

  test('read growth - the subscription cap refuses the next subscription and the connection keeps working', async () => {
    const before = (await counts()).subscriptions;
    const frames: SessionFrame[] = [];
    const ws = new WebSocket(sessionUrl());
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => {
      const d = decodeSessionFrame(JSON.parse(data.toString('utf8')));
      if (!d.ok) return;
      frames.push(d.value);
      // Acknowledge pushes, or the session would close the connection for ack timeouts.
      if (d.value.type === 'push')
        ws.send(JSON.stringify({ type: 'ack', service: d.value.service, version: d.value.version }));
    });
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    await new Promise((r) => ws.once('open', r));
    ws.send(
      JSON.stringify({
        type: 'hello',
        protocolVersion: PROTOCOL_VERSION,
        nodeId: 'cap-node',
        nodeName: 'cap',
        token: TOKEN,
      }),
    );
    await waitFor('welcome', () => frames.some((f) => f.type === 'welcome'));
    for (let i = 0; i < SUB_CAP; i += 500) {
      const services = Array.from({ length: Math.min(500, SUB_CAP - i) }, (_, j) => ({
        service: `cap-${i + j}`,
      }));
      ws.send(JSON.stringify({ type: 'subscribe', services }));
    }
    await waitFor(
      'every allowed subscription pushed',
      () => frames.filter((f) => f.type === 'push').length === SUB_CAP,
      30_000,
    );
    assert.equal(frames.filter((f) => f.type === 'refused').length, 0, 'up to the cap nothing is refused');
    ws.send(JSON.stringify({ type: 'subscribe', services: [{ service: 'one-too-many' }] }));
    const refused = await waitFor('refused', () => frames.find((f) => f.type === 'refused'));
    assert.deepEqual(refused.type === 'refused' && [refused.service, refused.error.code], [
      'one-too-many',
      'limit_exceeded',
    ]);
    ws.send(JSON.stringify({ type: 'ping', sentAt: 42 }));
    await waitFor('pong on the same connection', () => frames.some((f) => f.type === 'pong'));
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.equal((await counts()).subscriptions, before + SUB_CAP);
    ws.close();
    await closed;
    await waitFor(
      'subscriptions of the closed connection dropped',
      async () => (await counts()).subscriptions === before,
    );
  });
});
