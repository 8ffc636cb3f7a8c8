/**
 * Federation between real data centers: three `meshreg server` processes (dc1, dc2, dc3), each a
 * whole control plane, linked session to session. dc1 exports `web` to dc2; dc2 exports `web` to
 * dc3; `secret` is exported to no one. Registrations come from real agents; what a peer sees is
 * read by protocol-level subscribers of qualified keys (`web@dc1`) and from the sessions' /health.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { http } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { RawSubscriber } from '../support/raw-subscriber.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'federation-agents';
const DIGEST_MS = 500;

interface PeerHealth {
  name: string;
  state: string;
  stale: boolean;
  services: number;
  instances: number;
  digests: number;
  repairs: number;
}

describe('federation link', () => {
  const procs: Started[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const subs: RawSubscriber[] = [];
  const ports = { dc1: 0, dc2: 0, dc3: 0 };
  let tokenFile = '';
  const servers = new Map<string, Started>();
  let agent1: Started;

  const url = (dc: keyof typeof ports): string => `ws://127.0.0.1:${ports[dc]}`;
  const agentLink = (dc: keyof typeof ports): string => `${url(dc)}/v1/agent-link`;

  const envOf = (dc: keyof typeof ports): Record<string, string> => {
    const peers = {
      dc1: `dc2=${url('dc2')}`,
      dc2: `dc1=${url('dc1')};dc3=${url('dc3')}`,
      dc3: `dc2=${url('dc2')}`,
    };
    const exports = { dc1: 'dc2=web', dc2: 'dc3=web', dc3: '' };
    return {
      MESHREG_TOKEN: TOKEN,
      MESHREG_DATACENTER: dc,
      MESHREG_SESSION_PORT: String(ports[dc]),
      MESHREG_FEDERATION_PEERS: peers[dc],
      MESHREG_FEDERATION_TOKEN_FILE: tokenFile,
      MESHREG_FEDERATION_EXPORTS: exports[dc],
      MESHREG_FEDERATION_DIGEST_MS: String(DIGEST_MS),
      MESHREG_LINK_RETRY_INITIAL_MS: '100',
      MESHREG_LINK_RETRY_MAX_MS: '500',
    };
  };

  const startServer = async (dc: keyof typeof ports): Promise<Started> => {
    const p = await startMeshreg('server', envOf(dc));
    procs.push(p);
    servers.set(dc, p);
    return p;
  };

  const startAgent = async (dc: keyof typeof ports, name: string): Promise<Started> => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const p = await startMeshreg('agent', {
      MESHREG_TOKEN: TOKEN,
      MESHREG_DATACENTER: dc,
      MESHREG_AGENT_UPSTREAM: agentLink(dc),
      MESHREG_NODE_NAME: name,
      MESHREG_AGENT_DATA_DIR: dir,
    });
    procs.push(p);
    return p;
  };

  const register = async (a: Started, name: string, port: number): Promise<void> => {
    const r = await http('PUT', `${a.addresses['agent'] ?? ''}/v1/agent/service/register`, {
      Name: name,
      ID: `${name}-${port}`,
      Port: port,
    });
    assert.equal(r.status, 200);
  };

  const peerHealth = async (dc: keyof typeof ports, peer: string): Promise<PeerHealth | undefined> => {
    const r = await http('GET', `http://127.0.0.1:${ports[dc]}/health`);
    return (r.body as { federation?: PeerHealth[] }).federation?.find((p) => p.name === peer);
  };

  const subscribe = (dc: keyof typeof ports, keys: string[]): RawSubscriber => {
    const s = new RawSubscriber(agentLink(dc), TOKEN, keys, 2);
    subs.push(s);
    return s;
  };

  const ports_ = (s: RawSubscriber, key: string): number[] =>
    s.view
      .instances(key)
      .map((i) => i.port)
      .sort();

  before(async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    tokenFile = path.join(dir, 'federation-token');
    await writeFile(tokenFile, 'pair-secret\n');
    ports.dc1 = await freePort();
    ports.dc2 = await freePort();
    ports.dc3 = await freePort();
    await Promise.all([startServer('dc1'), startServer('dc2'), startServer('dc3')]);
    agent1 = await startAgent('dc1', 'host-a');
    const agent2 = await startAgent('dc2', 'host-b');
    await register(agent2, 'web', 9001);
    await waitFor(
      'dc2 linked to dc1 and dc3 to dc2',
      async () => {
        const a = await peerHealth('dc2', 'dc1');
        const b = await peerHealth('dc3', 'dc2');
        return a?.state === 'linked' && b?.state === 'linked';
      },
      20_000,
    );
  });

  after(async () => {
    for (const s of subs) s.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    for (const c of cleanups) await c();
  });

  test('federation - an exported service reaches the peer within 2 s; an unexported one never', async () => {
    const web = subscribe('dc2', ['web@dc1']);
    const secret = subscribe('dc2', ['secret@dc1']);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await register(agent1, 'web', 8001);
    await register(agent1, 'secret', 8002);
    await waitFor('web@dc1 at dc2', () => ports_(web, 'web@dc1').join() === '8001', 5000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2000, `visible after ${elapsed} ms`);
    // Several digest rounds later the unexported service is still unseen.
    const digests = (await peerHealth('dc2', 'dc1'))?.digests ?? 0;
    await waitFor(
      'three more digest rounds',
      async () => ((await peerHealth('dc2', 'dc1'))?.digests ?? 0) >= digests + 3,
      10_000,
    );
    assert.equal(secret.count('secret@dc1'), 0);
    const h = await peerHealth('dc2', 'dc1');
    assert.equal(h?.services, 1, 'only web is imported');
    assert.equal(h?.instances, 1);
  });

  test('federation - no relay: dc3 sees dc2’s own web, never dc1’s, and cannot watch dc1', async () => {
    const s = subscribe('dc3', ['web@dc2']);
    await waitFor('web@dc2 at dc3', () => ports_(s, 'web@dc2').join() === '9001', 5000);
    // dc2 holds dc1's copy of web (web@dc1) all along; several digests later dc3 still has only 9001.
    const digests = (await peerHealth('dc3', 'dc2'))?.digests ?? 0;
    await waitFor(
      'three more digest rounds at dc3',
      async () => ((await peerHealth('dc3', 'dc2'))?.digests ?? 0) >= digests + 3,
      10_000,
    );
    assert.deepEqual(ports_(s, 'web@dc2'), [9001]);
    assert.ok(s.observations.every((o) => o.service === 'web@dc2'));
    const refused = await rawAgent(agentLink('dc3'), { datacenter: 'dc3', subscribe: ['web@dc1'] });
    assert.equal(refused.refused?.service, 'web@dc1');
    assert.equal(refused.refused?.error.code, 'not_found');
  });

  test('federation - a protocol-4 agent is told the peers; an agent of dc2 at dc1 is closed with 4015', async () => {
    const seen = await rawAgent(agentLink('dc2'), { datacenter: 'dc2', subscribe: [] });
    assert.equal(seen.datacenters?.local, 'dc2');
    const dc1 = seen.datacenters?.peers.find((p) => p.name === 'dc1');
    assert.equal(dc1?.linked, true);
    assert.deepEqual(dc1?.services, ['web']);
    const wrong = await rawAgent(agentLink('dc1'), { datacenter: 'dc2', subscribe: [] });
    assert.equal(wrong.closeCode, 4015);
    assert.match(wrong.closeReason, /dc2.*dc1/);
  });

  test('federation - kill -9 of dc1 keeps dc2’s copy (stale); after a restart a change converges', async () => {
    const s = subscribe('dc2', ['web@dc1']);
    await waitFor('web@dc1 at dc2', () => s.count('web@dc1') === 1, 5000);
    const dc1 = servers.get('dc1');
    assert.ok(dc1 !== undefined);
    await dc1.stop('SIGKILL');
    await waitFor(
      'dc2 marks dc1 down',
      async () => (await peerHealth('dc2', 'dc1'))?.state === 'down',
      10_000,
    );
    const down = await peerHealth('dc2', 'dc1');
    assert.equal(down?.stale, true);
    assert.equal(down?.instances, 1, 'the copy is kept');
    await new Promise((r) => setTimeout(r, 3 * DIGEST_MS));
    assert.equal(s.count('web@dc1'), 1, 'the subscriber keeps its list');
    await startServer('dc1');
    await waitFor(
      'dc2 linked to dc1 again',
      async () => (await peerHealth('dc2', 'dc1'))?.state === 'linked',
      20_000,
    );
    const started = Date.now();
    await register(agent1, 'web', 8003);
    await waitFor('the change at dc2', () => ports_(s, 'web@dc1').join() === '8001,8003', 10_000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2000 + DIGEST_MS, `converged after ${elapsed} ms`);
    assert.equal((await peerHealth('dc2', 'dc1'))?.stale, false);
  });
});

interface RawOutcome {
  datacenters?: { local: string; peers: { name: string; linked: boolean; services: string[] }[] } | undefined;
  refused?: { service: string; error: { code: string } } | undefined;
  closeCode?: number;
  closeReason: string;
}

/** Says a protocol-4 hello (with a data center), subscribes, and gathers what comes back for 1.5 s. */
async function rawAgent(url: string, o: { datacenter: string; subscribe: string[] }): Promise<RawOutcome> {
  const ws = new WebSocket(url);
  const out: RawOutcome = { closeReason: '' };
  ws.on('open', () => {
    ws.send(
      JSON.stringify({
        type: 'hello',
        protocolVersion: 4,
        nodeId: `raw-${Math.random().toString(36).slice(2)}`,
        nodeName: 'raw',
        token: TOKEN,
        datacenter: o.datacenter,
      }),
    );
  });
  ws.on('message', (data: Buffer) => {
    const f = JSON.parse(data.toString('utf8')) as { type: string };
    if (f.type === 'welcome' && o.subscribe.length > 0)
      ws.send(JSON.stringify({ type: 'subscribe', services: o.subscribe.map((service) => ({ service })) }));
    if (f.type === 'datacenters') out.datacenters = f as unknown as RawOutcome['datacenters'];
    if (f.type === 'refused') out.refused = f as unknown as RawOutcome['refused'];
  });
  ws.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => {
    ws.on('close', (code, reason) => {
      out.closeCode = code;
      out.closeReason = reason.toString();
      resolve();
    });
  });
  await Promise.race([closed, new Promise((r) => setTimeout(r, 1500))]);
  ws.close();
  return out;
}
