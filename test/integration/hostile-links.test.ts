/**
 * Hostile peers on every WebSocket link (the agent link on the session port, the meta link, the data
 * link): a huge frame before the hello is refused from its header (1009 with a reason) without the
 * server's memory growing, a failed connection that keeps sending costs a bounded number of log lines,
 * any other protocol version is 4002, and the paged answers between servers carry a migration of far
 * more publishers than one frame may hold.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { AGENT_LINK_PATH, PROTOCOL_VERSION } from '../../proto/agent-link.js';
import { DATA_LINK_PATH } from '../../proto/data-link.js';
import { FEDERATION_LINK_PATH } from '../../proto/federation-link.js';
import { META_LINK_PATH } from '../../proto/meta-link.js';
import { CLUSTER_PROTOCOL_VERSION } from '../../proto/rpc.js';
import { makeInstance } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startMeshreg, type Started } from '../support/process.js';
import { RawSubscriber } from '../support/raw-subscriber.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'hostile-links-token';
const MIB = 1024 * 1024;
/** The server's RSS may grow by less than this when sent a 64 MiB frame before the hello. */
const RSS_BOUND_BYTES = 16 * MIB;
/** Log lines one failed connection may cause, however many frames it sends after the failure. */
const LOG_LINE_BOUND = 10;

interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** Opens a raw WebSocket; `onOpen` sends; resolves `closed` with the close code and reason. */
function raw(url: string, onOpen: (ws: WebSocket) => void): { ws: WebSocket; closed: Promise<Closed> } {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('open', () => {
    onOpen(ws);
  });
  // Writes after the server closed may fail (EPIPE, ECONNRESET): expected here.
  ws.on('error', () => undefined);
  const closed = new Promise<Closed>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
    });
  });
  return { ws, closed };
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  assert.ok(kb !== undefined, 'VmRSS is readable');
  return Number(kb) * 1024;
}

const agentHello = (protocolVersion: unknown, nodeId = `n-${Math.random()}`): string =>
  JSON.stringify({ type: 'hello', protocolVersion, nodeId, nodeName: 'h', token: TOKEN });

const linkHello = (protocolVersion: unknown, id = 1): string =>
  JSON.stringify({
    t: 'req',
    id,
    method: 'hello',
    params: { role: 'session', id: `hostile-${Math.random()}`, url: '', protocolVersion, token: TOKEN },
  });

const healthOf = (wsUrl: string): string => wsUrl.replace('ws://', 'http://').replace(/\/v1\/.*$/, '/health');

describe('hostile links', () => {
  let server: Started;
  const links: Record<string, string> = {};

  before(async () => {
    server = await startMeshreg('server', { MESHREG_TOKEN: TOKEN, MESHREG_ROLES: 'meta,data,session' });
    const host = (u: string): string => new URL(u).host;
    links['agent link'] = server.addresses['session'] ?? '';
    links['meta link'] = `ws://${host(server.addresses['meta'] ?? '')}${META_LINK_PATH}`;
    links['data link'] = `ws://${host(server.addresses['data'] ?? '')}${DATA_LINK_PATH}`;
    links['federation link'] = `ws://${host(links['agent link'])}${FEDERATION_LINK_PATH}`;
    assert.ok(links['agent link']?.endsWith(AGENT_LINK_PATH));
    // Warm up each link's code paths once (and let the slot table settle), so that the RSS figures
    // below measure the 64 MiB frame and not the first connection.
    await waitFor('slots assigned', async () => {
      const h = (await http('GET', healthOf(links['data link'] ?? ''))).body as { epoch?: number };
      return (h.epoch ?? 0) > 0;
    });
    for (const url of Object.values(links)) {
      const c = await raw(url, (ws) => {
        ws.send(Buffer.alloc(128 * 1024, 0x20), { binary: false });
      }).closed;
      assert.equal(c.code, 1009);
    }
    await new Promise((r) => setTimeout(r, 500));
  });

  after(async () => {
    assert.equal(await server.stop(), 0, 'the server stops cleanly');
  });

  for (const name of ['agent link', 'meta link', 'data link', 'federation link']) {
    test(`${name} - a 64 MiB frame before the hello closes 1009 with a reason, RSS stays flat`, async () => {
      const url = links[name] ?? '';
      const pid = server.child.pid ?? 0;
      const before = await rssBytes(pid);
      const big = Buffer.alloc(64 * MIB, 0x20);
      const { closed } = raw(url, (ws) => {
        ws.send(big, { binary: false });
      });
      const c = await closed;
      assert.equal(c.code, 1009);
      assert.equal(c.reason, 'payload_too_large: frame over 65536 bytes');
      const grown = (await rssBytes(pid)) - before;
      process.stdout.write(`# ${name}: RSS before ${before} bytes, grew by ${grown} bytes\n`);
      assert.ok(grown < RSS_BOUND_BYTES, `RSS grew by ${grown} bytes`);
      const health = await http('GET', healthOf(url));
      assert.equal(health.status, 200, 'still serving');
    });
  }

  test('agent link - after the hello, frames above the hello limit are accepted', async () => {
    const pong = new Promise<unknown>((resolve, reject) => {
      const { ws, closed } = raw(links['agent link'] ?? '', (w) => {
        w.send(agentHello(PROTOCOL_VERSION));
      });
      ws.on('message', (d: Buffer) => {
        const f = JSON.parse(d.toString('utf8')) as { type: string };
        if (f.type === 'welcome')
          ws.send(JSON.stringify({ type: 'ping', sentAt: 7, pad: 'x'.repeat(200_000) }));
        if (f.type === 'pong') {
          resolve(f);
          ws.close();
        }
      });
      void closed.then((c) => {
        reject(new Error(`closed ${c.code} ${c.reason}`));
      });
    });
    assert.deepEqual(await pong, { type: 'pong', sentAt: 7 });
  });

  test('meta link - after the hello, frames above the hello limit are accepted', async () => {
    const answers: { t: string; id: number; ok: boolean; error?: { code: string } }[] = [];
    const { ws, closed } = raw(links['meta link'] ?? '', (w) => {
      w.send(linkHello(CLUSTER_PROTOCOL_VERSION));
    });
    ws.on('message', (d: Buffer) => {
      const f = JSON.parse(d.toString('utf8')) as (typeof answers)[number];
      // Meta also sends events (table, members) once the hello is accepted.
      if (f.t !== 'res') return;
      answers.push(f);
      if (f.id === 1)
        ws.send(JSON.stringify({ t: 'req', id: 2, method: 'nothing', params: 'x'.repeat(200_000) }));
      if (f.id === 2) ws.close();
    });
    await closed;
    assert.equal(answers[0]?.ok, true, 'hello accepted');
    assert.equal(answers[1]?.error?.code, 'not_found', 'the 200 kB request was read and answered');
  });

  for (const name of ['agent link', 'meta link', 'data link', 'federation link']) {
    test(`${name} - 5,000 frames after a failure write a bounded number of log lines`, async () => {
      const url = links[name] ?? '';
      const start = server.logs().length;
      const { closed } = raw(url, (ws) => {
        ws.send('this is not JSON');
        for (let i = 0; i < 5000; i++) ws.send('still not JSON');
      });
      const c = await closed;
      assert.equal(c.code, 4000);
      // Let the server finish reading what was sent.
      await new Promise((r) => setTimeout(r, 300));
      const lines = server
        .logs()
        .slice(start)
        .split('\n')
        .filter((l) => l.trim() !== '');
      assert.ok(
        lines.length <= LOG_LINE_BOUND,
        `${lines.length} log lines:\n${lines.slice(0, 20).join('\n')}`,
      );
    });
  }

  for (const version of [0, -1, 1.5, 2 ** 60, 1e300]) {
    test(`agent link - protocolVersion ${version} closes 4002`, async () => {
      const c = await raw(links['agent link'] ?? '', (ws) => {
        ws.send(agentHello(version));
      }).closed;
      assert.equal(c.code, 4002);
      assert.match(c.reason, /^unsupported_protocol: agent link protocol .* is not supported/);
    });
    test(`meta and data links - protocolVersion ${version} closes 4002`, async () => {
      for (const name of ['meta link', 'data link']) {
        const c = await raw(links[name] ?? '', (ws) => {
          ws.send(linkHello(version));
        }).closed;
        assert.equal(c.code, 4002, name);
        assert.match(c.reason, /^unsupported_protocol: cluster protocol/);
      }
    });
  }

  test('every link - a missing or non-number protocolVersion stays 4000', async () => {
    for (const version of [undefined, '1', null, [1]]) {
      const a = await raw(links['agent link'] ?? '', (ws) => {
        ws.send(agentHello(version));
      }).closed;
      assert.equal(a.code, 4000, `agent link, ${JSON.stringify(version)}`);
      const m = await raw(links['meta link'] ?? '', (ws) => {
        ws.send(linkHello(version));
      }).closed;
      assert.equal(m.code, 4000, `meta link, ${JSON.stringify(version)}`);
    }
  });

  test('federation link - only a configured peer with its token is admitted; members may not use it, nor it theirs', async () => {
    const hello = (role: string, id: string, token: string): string =>
      JSON.stringify({
        t: 'req',
        id: 1,
        method: 'hello',
        params: { role, id, url: '', protocolVersion: CLUSTER_PROTOCOL_VERSION, token },
      });
    // No peer is configured here: any data center name, any token, is refused alike.
    for (const [id, token] of [
      ['dc2', TOKEN],
      ['dc2', ''],
      ['nope', 'x'.repeat(4096)],
    ] as const) {
      const c = await raw(links['federation link'] ?? '', (ws) => {
        ws.send(hello('federation', id, token));
      }).closed;
      assert.equal(c.code, 4001, id);
      assert.match(c.reason, /unknown federation peer or wrong token/);
    }
    const own = await raw(links['federation link'] ?? '', (ws) => {
      ws.send(hello('federation', 'dc1', TOKEN));
    }).closed;
    assert.equal(own.code, 4015, 'a peer named like this data center');
    const member = await raw(links['federation link'] ?? '', (ws) => {
      ws.send(hello('session', 'hostile', TOKEN));
    }).closed;
    assert.equal(member.code, 4003, 'the cluster token opens no federation link');
    for (const name of ['meta link', 'data link']) {
      const c = await raw(links[name] ?? '', (ws) => {
        ws.send(hello('federation', 'dc2', TOKEN));
      }).closed;
      assert.equal(c.code, 4003, `${name}: a federation hello is no member's`);
    }
    const h = await http('GET', healthOf(links['federation link'] ?? ''));
    assert.equal(h.status, 200);
    assert.deepEqual((h.body as { federation?: unknown[] }).federation ?? [], [], 'no state left behind');
  });

  test('meta link - a request other than the hello first closes 4000', async () => {
    const c = await raw(links['meta link'] ?? '', (ws) => {
      ws.send(JSON.stringify({ t: 'req', id: 1, method: 'heartbeat', params: { id: 'x' } }));
    }).closed;
    assert.equal(c.code, 4000);
    assert.match(c.reason, /expected hello first/);
  });
});

const SERVICES = Array.from({ length: 8 }, (_, i) => `many-${i}`);
const PER_SERVICE = 500;
/** The post-hello limit of the server links in the migration test (a publisher takes about 300 bytes). */
const LINK_LIMIT_BYTES = 128 * 1024;

/** The JSON size of one collected publisher (its owner and registration ID included). */
const ITEM_BYTES = JSON.stringify({
  registrationId: 'node-b/many-0-0',
  instance: makeInstance({ id: 'many-0-0', service: 'many-0', nodeAddress: '127.0.0.1', port: 1000 }),
  version: 1,
  owner: 's1#000000:1',
}).length;

describe('paged migration', () => {
  const procs: Started[] = [];
  let meta: Started;
  let session: Started;
  const env = {
    MESHREG_TOKEN: TOKEN,
    MESHREG_SLOT_COUNT: '64',
    MESHREG_SLOT_FOLLOWERS: '1',
    // All moves in one round: one migration collects several services at once.
    MESHREG_SLOT_MAX_LEADER_MOVES: '64',
    MESHREG_META_WARMUP_MS: '500',
    MESHREG_META_LEASE_MS: '3000',
    // Far below what the migrated publishers take (4,000 × about 300 bytes): only pages get through.
    MESHREG_LINK_MAX_FRAME_BYTES: String(LINK_LIMIT_BYTES),
    MESHREG_LINK_MAX_HELLO_BYTES: '16384',
    // Below the link limit: one agent frame (250 registrations) becomes one publish call to data.
    MESHREG_SESSION_MAX_FRAME_BYTES: String(100 * 1024),
    // The raw publisher and monitor below do not ping.
    MESHREG_SESSION_IDLE_TIMEOUT_MS: '120000',
  };
  const startData = async (id: string): Promise<Started> => {
    const p = await startMeshreg('server', {
      ...env,
      MESHREG_ROLES: 'data',
      MESHREG_DATA_ID: id,
      MESHREG_META_URL: meta.addresses['meta'] ?? '',
    });
    procs.push(p);
    return p;
  };

  before(async () => {
    meta = await startMeshreg('server', { ...env, MESHREG_ROLES: 'meta' });
    procs.push(meta);
    await startData('data-1');
    session = await startMeshreg('server', {
      ...env,
      MESHREG_ROLES: 'session',
      MESHREG_SESSION_ID: 's1',
      MESHREG_META_URL: meta.addresses['meta'] ?? '',
    });
    procs.push(session);
  });

  after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
  });

  test('migration - slots with more publishers than one frame holds move and lose nothing', async () => {
    const url = session.addresses['session'] ?? '';
    const publisher = await publishMany(url);
    const monitor = new RawSubscriber(url, TOKEN, SERVICES);
    const all = (): boolean => SERVICES.every((s) => monitor.count(s) === PER_SERVICE);
    try {
      await waitFor('every publisher visible on data-1', () => Promise.resolve(all()), 20_000);
      // A second data server: slots move to it (collect, paged) and it follows data-1 (replicate, paged).
      const data2 = await startData('data-2');
      await waitFor(
        'data-2 migrated slots',
        () => Promise.resolve(/"msg":"slots migrated"/.test(data2.logs())),
        20_000,
      );
      // data-1 dies: data-2 serves every slot from its replicas and a new collect.
      await procs[1]?.stop('SIGKILL');
      await waitFor('every publisher visible after data-1 died', () => Promise.resolve(all()), 30_000);
      const collected = [...data2.logs().matchAll(/"msg":"slots migrated".*?"collected":(\d+)/g)].map((m) =>
        Number(m[1]),
      );
      assert.ok(
        collected.some((n) => n * ITEM_BYTES > LINK_LIMIT_BYTES),
        `one migration collected more than one frame holds: ${collected.join(', ')}`,
      );
      assert.doesNotMatch(data2.logs() + session.logs(), /payload_too_large/);
    } finally {
      monitor.close();
      publisher.close();
    }
  });
});

/** Publishes PER_SERVICE instances of each service over a raw agent link; resolves once all are confirmed. */
async function publishMany(url: string): Promise<WebSocket> {
  const regs = SERVICES.flatMap((service) =>
    Array.from({ length: PER_SERVICE }, (_, i) => ({
      instance: makeInstance({ id: `${service}-${i}`, service, nodeAddress: '127.0.0.1', port: 1000 + i }),
      version: 1,
    })),
  );
  const ws = new WebSocket(url, { perMessageDeflate: false });
  let confirmed = 0;
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => {
      // The instances' node (makeInstance's default): a session accepts only its own node's instances.
      ws.send(agentHello(PROTOCOL_VERSION, 'node-b'));
    });
    ws.on('message', (d: Buffer) => {
      const f = JSON.parse(d.toString('utf8')) as { type: string; results?: { error?: unknown }[] };
      if (f.type === 'welcome') {
        for (let i = 0; i < regs.length; i += 250)
          ws.send(JSON.stringify({ type: 'publish', registrations: regs.slice(i, i + 250) }));
      } else if (f.type === 'confirm') {
        confirmed += (f.results ?? []).filter((r) => r.error === undefined).length;
        if (confirmed >= regs.length) resolve();
      }
    });
    ws.on('close', (code, reason) => {
      reject(new Error(`publisher closed ${code} ${reason.toString()}`));
    });
    setTimeout(() => {
      reject(new Error(`only ${confirmed} of ${regs.length} confirmed`));
    }, 20_000).unref();
  });
  return ws;
}
