/**
 * A subscriber that stops reading cannot exhaust the session: a real `meshreg server` and a real
 * agent watching a service through a fault proxy whose session → agent direction is blackholed (the
 * agent's socket is never read, as with a stalled or hung host). A stream of changes many times
 * the size of the datum flows to it. The session closes the connection as a slow consumer (4014),
 * its queued bytes stay within the limit plus one frame, and its heap does not grow with the
 * stream. Once the proxy heals, the agent reconnects and resumes with the latest version.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, decodeSessionFrame, type Publish } from '../../proto/agent-link.js';
import type { Instance } from '../../proto/instance.js';
import { httpBase, scrape, value } from '../support/admin.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { makeInstance } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { GC_ENV, measureAfterGc, startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'slow-consumer-token';
const MiB = 1024 * 1024;
const MAX_QUEUED_BYTES = 256 * 1024;
/** 200 instances of ~16 KiB (64 tags of 250 characters): a datum of ~3.2 MiB. */
const INSTANCES = 200;
const BATCH = 20;
/** Every round changes every instance: ~3.2 MiB of deltas toward the watcher per round. */
const ROUNDS = 12;
/** Heap the session may gain over the stream (after a full GC): far less than the ~38 MiB streamed. */
const HEAP_BOUND_BYTES = 16 * MiB;

let server: Started;
let watcher: Started;
let proxy: FaultProxy;
let cleanup: () => Promise<void>;

before(async () => {
  server = await startMeshreg('server', {
    ...GC_ENV,
    MESHREG_TOKEN: TOKEN,
    MESHREG_SESSION_MAX_QUEUED_BYTES: String(MAX_QUEUED_BYTES),
  });
  const session = server.addresses['session'] ?? '';
  proxy = await FaultProxy.start(session, { maxHeldBytes: 64 * 1024 });
  const d = await tempDir();
  cleanup = d.cleanup;
  watcher = await startMeshreg('agent', {
    MESHREG_TOKEN: TOKEN,
    MESHREG_AGENT_UPSTREAM: proxy.rewrite(session),
    MESHREG_NODE_NAME: 'watcher',
    MESHREG_AGENT_DATA_DIR: d.dir,
  });
});

after(async () => {
  await watcher.stop();
  await server.stop();
  await proxy.close();
  await cleanup();
});

function instance(i: number, round: number): Instance {
  const tags = [`round-${round}`, ...Array.from({ length: 63 }, (_, k) => `${k}-${'t'.repeat(246)}`)];
  return makeInstance({ id: `bulk-${i}`, service: 'bulk', nodeId: 'publisher', node: 'publisher', tags });
}

/** A raw agent-link connection that publishes and waits for each batch's confirm. */
async function publisher(
  url: string,
): Promise<{ publish: (f: Publish) => Promise<void>; close: () => void }> {
  const ws = new WebSocket(url);
  let waiting: (() => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocolVersion: PROTOCOL_VERSION,
          nodeId: 'publisher',
          nodeName: 'publisher',
          token: TOKEN,
        }),
      );
    });
    ws.on('message', (data: Buffer) => {
      const d = decodeSessionFrame(JSON.parse(data.toString('utf8')));
      assert.ok(d.ok);
      if (d.value.type === 'welcome') resolve();
      if (d.value.type === 'confirm') waiting?.();
    });
  });
  return {
    publish: (f) =>
      new Promise<void>((resolve) => {
        waiting = resolve;
        ws.send(JSON.stringify(f));
      }),
    close: () => {
      ws.close();
    },
  };
}

async function publishRound(p: { publish: (f: Publish) => Promise<void> }, round: number): Promise<void> {
  for (let i = 0; i < INSTANCES; i += BATCH) {
    const registrations = [];
    for (let k = i; k < i + BATCH; k++)
      registrations.push({ instance: instance(k, round), version: round * 1000 + k + 1 });
    await p.publish({ type: 'publish', registrations });
  }
}

interface Entry {
  readonly Service: { readonly Tags: readonly string[] };
}

async function watched(agent: string): Promise<Entry[]> {
  const r = await http('GET', `${agent}/v1/health/service/bulk`);
  assert.equal(r.status, 200);
  return r.body as Entry[];
}

test('slow consumer - a reader that stops reading is closed with 4014, the session stays bounded, and the agent resumes', async () => {
  const session = server.addresses['session'] ?? '';
  const base = httpBase(session);
  const agent = watcher.addresses['agent'] ?? '';
  const pub = await publisher(session);
  try {
    // The watcher watches and holds round 0.
    await watched(agent);
    await publishRound(pub, 0);
    await waitFor(
      'the watcher to hold round 0',
      async () => (await watched(agent)).length === INSTANCES,
      15_000,
    );
    const before = await measureAfterGc(server);

    // The watcher stops reading; the changes keep flowing.
    proxy.blackhole('down');
    let maxQueued = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      await publishRound(pub, round);
      const health = await http('GET', `${base}/health`);
      const overload = (health.body as { overload?: { queuedBytes: number } }).overload;
      maxQueued = Math.max(maxQueued, overload?.queuedBytes ?? 0);
    }
    const closes = await waitFor(
      'the slow consumer to be closed',
      async () => {
        const n = value(await scrape(`${base}/metrics`), 'meshreg_session_slow_consumer_closes_total');
        return n !== undefined && n >= 1 ? n : undefined;
      },
      15_000,
    );
    assert.ok(closes >= 1);
    assert.match(server.logs(), /"code":"slow_consumer"/);
    // Within the limit plus one frame: a delta may merge several batches when the machine is busy,
    // at most the whole datum (~3.2 MiB). Without the limit the same stream left ~33 MB queued for
    // the watcher (and RSS after GC grew ~107 MB instead of ~55 MB).
    assert.ok(maxQueued <= MAX_QUEUED_BYTES + 4 * MiB, `queued at most ${maxQueued} bytes`);
    const afterStream = await measureAfterGc(server);
    const grew = afterStream.heapBytes - before.heapBytes;
    assert.ok(grew < HEAP_BOUND_BYTES, `session heap grew ${(grew / MiB).toFixed(1)} MiB over the stream`);

    // The agent reads again: it reconnects and converges on the last round.
    proxy.heal();
    await waitFor(
      'the watcher to hold the last round',
      async () => {
        const list = await watched(agent);
        return list.length === INSTANCES && list.every((e) => e.Service.Tags[0] === `round-${ROUNDS}`);
      },
      30_000,
      200,
    );
  } finally {
    pub.close();
  }
});
