/**
 * The importing side of federation against a peer the test controls: a real `meshreg server` (dc2)
 * imports from a scripted dc1 that speaks the federation link from the test process, through a TCP
 * fault proxy. The script does what a real peer does only by accident: it changes a datum without
 * sending its notice (the digest must repair it), re-sends an older version (it must be ignored),
 * sends a delta from a version dc2 does not hold (dc2 must fetch the datum instead), and
 * its link is blackholed (dc2 must notice, keep the copy, mark it stale, and converge once healed).
 * What dc2 serves is read by a protocol-level subscriber of `web@dc1`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { sharedAdminToken } from '../../control-plane/admin/ops-http.js';
import { RoleServer } from '../../control-plane/link/role-server.js';
import type { RpcPeer } from '../../control-plane/link/rpc-peer.js';
import type { DatumView } from '../../proto/cluster-records.js';
import type { Instance } from '../../proto/instance.js';
import { MeshregError } from '../../proto/errors.js';
import { FEDERATION_LINK, FEDERATION_LINK_PATH } from '../../proto/federation-link.js';
import { silentLogger } from '../../proto/runtime/log.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { makeInstance } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';
import { decodeSessionFrame, type Datacenters } from '../../proto/agent-link.js';

const DIGEST_MS = 800;

/** dc1 as the test scripts it: its datum of `web`, what it tells importers, and when. */
class ScriptedPeer {
  datum: DatumView = { key: 'web', version: 100, complete: true, instances: [] };
  readonly peers = new Set<RpcPeer>();
  digests = 0;
  readonly server: RoleServer;

  constructor() {
    this.server = new RoleServer(
      'session',
      {
        host: '127.0.0.1',
        port: 0,
        token: 'unused',
        maxFrameBytes: 4 * 1024 * 1024,
        maxHelloBytes: 64 * 1024,
        callTimeoutMs: 2000,
        helloTimeoutMs: 2000,
        ops: { adminAuth: sharedAdminToken(''), adminRemote: false, scrape: undefined },
      },
      silentLogger,
    ).linkWith(FEDERATION_LINK_PATH, {
      roles: ['federation'],
      authorize: (hello) =>
        hello.id === 'dc2' ? undefined : new MeshregError('unauthorized', 'only dc2 imports here'),
      accepted: (peer) => {
        this.peers.add(peer);
        void peer.closed.then(() => this.peers.delete(peer));
        peer
          .handle(FEDERATION_LINK.digest, () => {
            this.digests++;
            return { services: { web: this.datum.version } };
          })
          .handle(FEDERATION_LINK.fetch, () => this.datum);
        setImmediate(() => peer.emit(FEDERATION_LINK.exports, { services: ['web'] }));
        return {};
      },
    });
  }

  set(version: number, ports: number[]): DatumView {
    this.datum = {
      key: 'web',
      version,
      complete: true,
      instances: ports.map((p) =>
        makeInstance({ id: `web-${p}`, service: 'web', port: p, nodeId: 'dc1-node' }),
      ),
    };
    return this.datum;
  }

  notifyDelta(d: { base: number; version: number; upserts: Instance[]; removed: string[] }): void {
    const delta = { key: 'web', complete: true, ...d };
    for (const p of this.peers) p.emit(FEDERATION_LINK.delta, { delta, sentAt: Date.now() });
  }

  notify(d: DatumView = this.datum): void {
    for (const p of this.peers) p.emit(FEDERATION_LINK.datum, { datum: d, sentAt: Date.now() });
  }
}

/** An agent-link subscriber of `web@dc1` that also keeps the latest `datacenters` frame. */
class Watcher {
  readonly versions: number[] = [];
  ports: number[] = [];
  datacenters: Datacenters | undefined;
  readonly #ws: WebSocket;
  readonly #byId = new Map<string, number>();

  constructor(url: string, token: string) {
    this.#ws = new WebSocket(url);
    this.#ws.on('open', () => {
      this.#ws.send(
        JSON.stringify({
          type: 'hello',
          protocolVersion: 4,
          nodeId: 'watcher',
          nodeName: 'watcher',
          token,
          datacenter: 'dc2',
        }),
      );
    });
    this.#ws.on('message', (data: Buffer) => {
      const d = decodeSessionFrame(JSON.parse(data.toString('utf8')));
      if (!d.ok) throw new Error(`invalid frame: ${JSON.stringify(d.errors)}`);
      const f = d.value;
      if (f.type === 'welcome')
        this.#ws.send(JSON.stringify({ type: 'subscribe', services: [{ service: 'web@dc1' }] }));
      if (f.type === 'datacenters') this.datacenters = f;
      if ((f.type === 'push' || f.type === 'delta') && f.service === 'web@dc1') {
        this.versions.push(f.version);
        // Applied as an agent applies them: a complete push replaces the list, a delta patches it.
        if (f.type === 'push') {
          if (f.complete) this.#byId.clear();
          for (const i of f.instances) this.#byId.set(i.id, i.port);
        } else {
          for (const id of f.removed) this.#byId.delete(id.slice(id.indexOf('/') + 1));
          for (const i of f.upserts) this.#byId.set(i.id, i.port);
        }
        this.ports = [...this.#byId.values()].sort((a, b) => a - b);
        this.#ws.send(JSON.stringify({ type: 'acks', acks: [{ service: f.service, version: f.version }] }));
      }
    });
    this.#ws.on('error', () => undefined);
  }

  get linked(): boolean | undefined {
    return this.datacenters?.peers.find((p) => p.name === 'dc1')?.linked;
  }

  close(): void {
    this.#ws.close();
  }
}

describe('federation repair', () => {
  const token = randomBytes(12).toString('hex');
  const peer = new ScriptedPeer();
  let proxy: FaultProxy;
  let dc2: Started;
  let watcher: Watcher;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    await peer.server.listen();
    proxy = await FaultProxy.start(peer.server.address);
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const tokenFile = path.join(dir, 'federation-token');
    await writeFile(tokenFile, randomBytes(16).toString('hex'));
    const session = await freePort();
    dc2 = await startMeshreg('server', {
      MESHREG_TOKEN: token,
      MESHREG_DATACENTER: 'dc2',
      MESHREG_SESSION_PORT: String(session),
      MESHREG_FEDERATION_PEERS: `dc1=ws://${proxy.address}`,
      MESHREG_FEDERATION_TOKEN_FILE: tokenFile,
      MESHREG_FEDERATION_DIGEST_MS: String(DIGEST_MS),
      MESHREG_LINK_RETRY_INITIAL_MS: '50',
      MESHREG_LINK_RETRY_MAX_MS: '300',
    });
    peer.set(100, [1, 2]);
    watcher = new Watcher(`ws://127.0.0.1:${session}/v1/agent-link`, token);
    await waitFor('the first copy', () => watcher.ports.join() === '1,2', 10_000);
    await waitFor('dc1 reported linked', () => watcher.linked === true, 5000);
  });

  after(async () => {
    watcher.close();
    await dc2.stop();
    await proxy.close();
    await peer.server.close();
    await Promise.all(cleanups.map((c) => c()));
  });

  test('repair - a change whose notice never came arrives with the next digest round', async () => {
    assert.equal(watcher.linked, true);
    const digests = peer.digests;
    const t0 = performance.now();
    peer.set(101, [1, 2, 3]); // no notice
    await waitFor('the repaired copy', () => watcher.ports.join() === '1,2,3', DIGEST_MS * 3);
    const ms = performance.now() - t0;
    assert.ok(peer.digests > digests, 'a digest round asked');
    assert.ok(
      ms <= DIGEST_MS + 500,
      `repaired after ${ms.toFixed(0)} ms, one digest interval is ${DIGEST_MS} ms`,
    );
    const health = await http(
      'GET',
      dc2.addresses['session']?.replace(/^ws/, 'http').replace(/\/v1.*$/, '/health') ?? '',
    );
    const fed = (health.body as { federation?: { name: string; repairs: number }[] }).federation ?? [];
    assert.ok((fed.find((p) => p.name === 'dc1')?.repairs ?? 0) >= 1, health.text);
  });

  test('repair - a notice of an older version than the copy is ignored; versions never go back', async () => {
    const newer = peer.set(103, [1, 2, 3, 4]);
    peer.notify();
    await waitFor('v103', () => watcher.ports.join() === '1,2,3,4', 5000);
    peer.notify({ ...newer, version: 102, instances: newer.instances.slice(0, 1) });
    await new Promise((r) => setTimeout(r, DIGEST_MS * 1.5));
    assert.equal(watcher.ports.join(), '1,2,3,4');
    const seen = watcher.versions;
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
      'pushed versions only grow',
    );
  });

  test('repair - a delta notice patches a copy at its base; at any other base the datum is fetched', async () => {
    const at103 = peer.datum;
    const six = makeInstance({ id: 'web-6', service: 'web', port: 6, nodeId: 'dc1-node' });
    peer.datum = {
      ...at103,
      version: 104,
      instances: [...at103.instances.filter((i) => i.port !== 1), six],
    };
    peer.notifyDelta({ base: 103, version: 104, upserts: [six], removed: ['dc1-node/web-1'] });
    await waitFor('the patched copy', () => watcher.ports.join() === '2,3,4,6', 5000);
    peer.set(106, [7]);
    const eight = makeInstance({ id: 'web-8', service: 'web', port: 8, nodeId: 'dc1-node' });
    peer.notifyDelta({ base: 105, version: 106, upserts: [eight], removed: [] });
    // Not applied to the copy at 104: dc2 fetches version 106 instead, long before a digest round.
    await waitFor('the fetched datum', () => watcher.ports.join() === '7', DIGEST_MS / 2);
  });

  test('repair - a blackholed link is noticed, the copy is kept and marked stale, and a change made meanwhile converges once healed', async () => {
    const held = watcher.ports.join();
    proxy.blackhole('both');
    await waitFor('dc1 reported down', () => watcher.linked === false, 15_000, 50);
    assert.equal(watcher.ports.join(), held, 'the copy is kept');
    peer.set(110, [1, 5]);
    peer.notify(); // lost in the partition, or late
    await new Promise((r) => setTimeout(r, DIGEST_MS));
    assert.equal(watcher.ports.join(), held);
    proxy.heal();
    const t0 = performance.now();
    await waitFor('the change after healing', () => watcher.ports.join() === '1,5', 15_000, 20);
    await waitFor('dc1 linked again', () => watcher.linked === true, 5000);
    const ms = performance.now() - t0;
    // Reconnecting takes up to the link retry (300 ms) after the cut; then the first digest applies it.
    assert.ok(ms <= DIGEST_MS + 3000, `converged ${ms.toFixed(0)} ms after healing`);
  });
});
